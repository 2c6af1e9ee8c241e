import { buildReceiptTree, receiptLeafValues, receiptToJson } from '@aipg/core';
import { type Address, getAddress, type Hex, isAddress, isHex, keccak256, recoverMessageAddress } from 'viem';
import type { Chain } from '../chain/index.ts';
import { chainFailure } from '../chain/index.ts';
import type { Common } from '../common.ts';
import { GatewayError } from '../errors.ts';
import type { Storage } from '../storage/index.ts';

/** Headers of a validator's signed audit request. */
export const AUDIT_HEADERS = {
  validator: 'x-aipg-validator',
  timestamp: 'x-aipg-timestamp',
  signature: 'x-aipg-signature',
} as const;

/**
 * The EIP-191 message a validator's operator key signs for one audit request. It names the gateway,
 * so a signed request is useless at any other gateway; the timestamp bounds it in time, and the
 * gateway refuses a signature it has seen before.
 */
export function auditRequestMessage(r: {
  method: string;
  path: string;
  timestamp: number;
  gateway: Address;
}): string {
  return [
    'AIPG audit request',
    `gateway: ${getAddress(r.gateway)}`,
    `method: ${r.method.toUpperCase()}`,
    `path: ${r.path}`,
    `timestamp: ${r.timestamp}`,
  ].join('\n');
}

export type Audit = ReturnType<typeof createAudit>;

/** Audit data for bonded validators: everything needed to re-score a job and prove its receipt. */
export function createAudit({ common, storage, chain }: { common: Common; storage: Storage; chain: Chain }) {
  const { options } = common;

  return {
    /** Checks a signed request; returns the validator's operator and owner, or throws 401/403. */
    async authenticate(req: { method: string; path: string; header(name: string): string | undefined }) {
      const validator = req.header(AUDIT_HEADERS.validator);
      const ts = req.header(AUDIT_HEADERS.timestamp);
      const signature = req.header(AUDIT_HEADERS.signature);
      if (!validator || !ts || !signature) {
        throw new GatewayError(
          'invalid_validator_signature',
          `audit requests must be signed: send ${Object.values(AUDIT_HEADERS).join(', ')}`,
        );
      }
      if (!isAddress(validator, { strict: false }))
        throw new GatewayError('invalid_validator_signature', `${AUDIT_HEADERS.validator} is not an address`);
      if (!/^\d{1,12}$/.test(ts))
        throw new GatewayError(
          'invalid_validator_signature',
          `${AUDIT_HEADERS.timestamp} must be unix seconds`,
        );
      if (!isHex(signature) || signature.length > 1000)
        throw new GatewayError('invalid_validator_signature', 'malformed signature');
      const timestamp = Number(ts);
      const now = Math.floor(Date.now() / 1000);
      if (Math.abs(now - timestamp) > options.audit.maxSkewSec) {
        throw new GatewayError(
          'invalid_validator_signature',
          `stale timestamp: must be within ${options.audit.maxSkewSec} s of the gateway clock`,
        );
      }
      const message = auditRequestMessage({
        method: req.method,
        path: req.path,
        timestamp,
        gateway: chain.gateway,
      });
      let signer: Address;
      try {
        signer = await recoverMessageAddress({ message, signature });
      } catch {
        throw new GatewayError('invalid_validator_signature', 'malformed signature');
      }
      if (signer.toLowerCase() !== validator.toLowerCase()) {
        throw new GatewayError(
          'invalid_validator_signature',
          'the signature does not match the validator and request',
        );
      }
      let owner: Address | undefined;
      try {
        owner = await chain.validatorOwner(getAddress(validator));
        if (owner && !(await chain.isActiveValidator(owner))) owner = undefined;
      } catch (error) {
        throw chainFailure(error, 'validator bond');
      }
      if (!owner)
        throw new GatewayError(
          'not_a_validator',
          `${validator} is not the operator of an active validator bond`,
        );
      // Last, so that junk cannot fill the table: a valid signature is used once.
      const fresh = await storage.auditNonces.use(
        keccak256(signature),
        new Date((timestamp + options.audit.maxSkewSec + 1) * 1000),
      );
      if (!fresh)
        throw new GatewayError(
          'invalid_validator_signature',
          'this signed request was already used (replay)',
        );
      return { operator: getAddress(validator), owner };
    },

    /** Everything about one job a validator needs: request, token ids, params, receipt, batch and proof. */
    async evidence(jobId: string) {
      const job = /^0x[0-9a-fA-F]{64}$/.test(jobId) ? await storage.jobs.get(jobId.toLowerCase()) : undefined;
      const stored = job ? await storage.receipts.getByJob(job.id) : undefined;
      if (!job || !stored)
        throw new GatewayError('job_not_found', `no completed job ${jobId} on this gateway`, { param: 'id' });
      let batch = null;
      if (stored.batchId !== null) {
        const b = await storage.receipts.getBatch(stored.batchId);
        if (b) {
          const receipts = await storage.receipts.listByBatch(b.id);
          const tree = buildReceiptTree(receipts.map((r) => r.receipt));
          const proof = tree.getProof([...receiptLeafValues(stored.receipt)]) as Hex[];
          batch = {
            id: b.id,
            root: b.root,
            status: b.status,
            tx_hash: b.txHash,
            settled_block: b.settledBlock === null ? null : b.settledBlock.toString(),
            receipt_count: b.receiptCount,
            proof,
          };
        }
      }
      return {
        job_id: job.id,
        object: 'audit.job' as const,
        status: job.status,
        kind: job.kind,
        model: { id: job.modelId, name: job.modelName },
        request: { input: job.request.input, params: job.params, pricing: job.pricing },
        prompt_token_ids: job.promptTokenIds,
        output_token_ids: job.outputTokenIds,
        output_text: job.outputText,
        finish_reason: job.finishReason,
        receipt: receiptToJson(stored.receipt),
        signature: stored.signature,
        signer: stored.signer,
        leaf_hash: stored.leafHash,
        batch,
        chain: { chain_id: chain.chainId, grid: chain.grid },
      };
    },
  };
}
