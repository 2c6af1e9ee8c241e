import {
  AUDIT_HEADERS,
  auditRequestMessage,
  buildReceiptTree,
  receiptLeafHash,
  receiptLeafValues,
  receiptToJson,
  sealedRequestHash,
} from '@aipg/core';
import {
  type Address,
  concat,
  getAddress,
  type Hex,
  hashMessage,
  hexToBigInt,
  isAddress,
  isHex,
  keccak256,
  recoverMessageAddress,
} from 'viem';
import { spendAnonymousChainRead } from '../auth/index.ts';
import type { Chain } from '../chain/index.ts';
import { chainFailure } from '../chain/index.ts';
import type { Common } from '../common.ts';
import { GatewayError } from '../errors.ts';
import { type BatchRecord, type Storage, sealedOf } from '../storage/index.ts';
import { findSettledBatchId } from './batch-id.ts';

export { AUDIT_HEADERS, auditRequestMessage } from '@aipg/core';

export type Audit = ReturnType<typeof createAudit>;

/** secp256k1's group order n, and n/2: a canonical signature has s ≤ n/2 (EIP-2). */
const SECP256K1_N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const HALF_N = SECP256K1_N / 2n;

/**
 * Why an audit signature is not in the one encoding accepted — 65 bytes r ‖ s ‖ v with v 27 or 28 and a
 * low s — or undefined when it is. Every valid signature has exactly one such form, so a re-encoded copy
 * (v 0/1, s ↔ n − s, the 64-byte compact form) is refused instead of counting as a fresh request.
 */
export function nonCanonicalSignature(signature: Hex): string | undefined {
  if (signature.length !== 2 + 65 * 2) return 'expected a 65-byte signature (r, s, v)';
  const r = hexToBigInt(`0x${signature.slice(2, 66)}`);
  const s = hexToBigInt(`0x${signature.slice(66, 130)}`);
  const v = Number.parseInt(signature.slice(130, 132), 16);
  if (v !== 27 && v !== 28) return 'v must be 27 or 28';
  if (r === 0n || r >= SECP256K1_N || s === 0n) return 'r or s out of range';
  if (s > HALF_N) return 'high s: use the canonical (low s) form';
  return undefined;
}

/** Cached answer to "is this operator key an active validator's", for `chain.registryCacheMs`. */
type ValidatorEntry = { owner: Address | undefined; at: number };
const VALIDATOR_CACHE_MAX = 10_000;

/** Audit data for bonded validators: everything needed to re-score a job and prove its receipt. */
export function createAudit({ common, storage, chain }: { common: Common; storage: Storage; chain: Chain }) {
  const { options, logger } = common;
  const validators = new Map<string, ValidatorEntry>();

  /** Whether the dashboard's indexer (`network_bonds`, no RPC) knows `operator` as a bonded validator's key. */
  async function indexedValidator(operator: string): Promise<boolean> {
    try {
      const rows = await storage.db.query(
        `SELECT 1 FROM network_bonds WHERE role = 'validator' AND operator = $1 AND amount > 0 LIMIT 1`,
        [operator],
      );
      return rows.length > 0;
    } catch {
      return false; // the network tables are not there (an embedding without the network feature)
    }
  }

  /**
   * The active validator bond behind an operator key (undefined: none), from a cache kept for
   * `chain.registryCacheMs`. A miss costs chain reads that any signer can cause (a fresh key signs for
   * free), so a miss for a key the indexer does not know as a validator's spends the gateway-wide budget
   * for unauthenticated chain reads; while that is spent, a known operator's older answer (up to a
   * minute, or 6 cache periods) is used, and anyone else gets 429.
   */
  async function validatorOwnerOf(operator: Address): Promise<Address | undefined> {
    const key = operator.toLowerCase();
    const now = Date.now();
    const hit = validators.get(key);
    const ttl = options.chain.registryCacheMs;
    if (hit && now - hit.at < ttl) return hit.owner;
    if (!(await indexedValidator(key))) {
      try {
        spendAnonymousChainRead(common, 'validator bond');
      } catch (error) {
        if (hit && now - hit.at < Math.max(60_000, ttl * 6)) return hit.owner;
        throw error;
      }
    }
    let owner: Address | undefined;
    try {
      owner = await chain.validatorOwner(operator);
      if (owner && !(await chain.isActiveValidator(owner))) owner = undefined;
    } catch (error) {
      throw chainFailure(error, 'validator bond');
    }
    validators.delete(key);
    validators.set(key, { owner, at: Date.now() });
    if (validators.size > VALIDATOR_CACHE_MAX) validators.delete(validators.keys().next().value!);
    return owner;
  }

  /**
   * The Grid's id of a settled batch. Recorded from the settle transaction; a batch found settled
   * after a crash (or settled by another replica) has none yet: it is looked up once and stored.
   */
  async function chainBatchId(b: BatchRecord): Promise<bigint | null> {
    if (b.chainBatchId !== null || b.status !== 'settled') return b.chainBatchId;
    let found: { batchId: bigint; settledBlock: bigint } | undefined;
    try {
      found = await findSettledBatchId(chain.publicClient, { grid: chain.grid, root: b.root });
    } catch (error) {
      throw chainFailure(error, 'batch id');
    }
    if (!found) {
      logger.warn({ msg: 'settled batch not found among the Grid batches', batch_id: b.id, root: b.root });
      return null;
    }
    await storage.receipts.setChainBatchId(b.id, found.batchId, found.settledBlock);
    return found.batchId;
  }

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
      const nonCanonical = nonCanonicalSignature(signature);
      if (nonCanonical)
        throw new GatewayError('invalid_validator_signature', `non-canonical signature: ${nonCanonical}`);
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
      const owner = await validatorOwnerOf(getAddress(validator));
      if (!owner)
        throw new GatewayError(
          'not_a_validator',
          `${validator} is not the operator of an active validator bond`,
        );
      // Last, so that junk cannot fill the table: a signed request is used once. The nonce is what was
      // signed and who signed it, not the signature's bytes: another encoding of the same signature is
      // the same request (and is refused above anyway).
      const fresh = await storage.auditNonces.use(
        keccak256(concat([hashMessage(message), signer])),
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
          const onchain = await chainBatchId(b);
          batch = {
            id: b.id,
            batch_id: onchain === null ? null : onchain.toString(),
            root: b.root,
            status: b.status,
            tx_hash: b.txHash,
            settled_block: b.settledBlock === null ? null : b.settledBlock.toString(),
            receipt_count: b.receiptCount,
            // The range of receipt numbers the batch settled (`settle`'s firstSeq and receiptCount).
            first_seq: b.firstSeq === null ? null : b.firstSeq.toString(),
            seq_count: b.seqCount === null ? null : b.seqCount.toString(),
            proof,
          };
        }
      }
      // A confidential job: what its receipt commits to instead of token ids (docs/confidential.md).
      const sealed = sealedOf(job);
      const confidential = sealed
        ? {
            attestation: sealed.attestation,
            sealed_request_hash: sealedRequestHash(
              new Uint8Array(Buffer.from(sealed.enc, 'base64')),
              new Uint8Array(Buffer.from(sealed.ciphertext, 'base64')),
            ),
            evidence: (await storage.attestations.get(sealed.attestation))?.evidence ?? null,
          }
        : null;
      return {
        job_id: job.id,
        object: 'audit.job' as const,
        confidential,
        status: job.status,
        kind: job.kind,
        model: { id: job.modelId, name: job.modelName },
        request: { input: job.request.input, params: job.params, pricing: job.pricing },
        prompt_token_ids: job.promptTokenIds,
        output_token_ids: job.outputTokenIds,
        output_text: job.outputText,
        sampler: job.sampler,
        finish_reason: job.finishReason,
        receipt: receiptToJson(stored.receipt),
        signature: stored.signature,
        signer: stored.signer,
        leaf_hash: stored.leafHash,
        // Image jobs: what ran and what was delivered (the prompt is `prompt_token_ids`, its bytes);
        // each image's bytes and committed latents at /v1/audit/jobs/{id}/images/{i}.
        image: job.image
          ? {
              params: job.image.params,
              negative_token_ids: job.image.negativeTokenIds,
              pipeline: job.sampler,
              outputs: (job.image.outputs ?? []).map((o) => ({
                hash: o.hash,
                trajectory_root: o.trajectoryRoot,
                format: o.format,
              })),
            }
          : null,
        batch,
        chain: { chain_id: chain.chainId, grid: chain.grid },
      };
    },

    /**
     * One image of a completed image job: its bytes as delivered and the latents its trajectory root
     * commits to (float32 little-endian, `steps + 1`), both base64, while the gateway keeps them.
     */
    async imageEvidence(jobId: string, index: number) {
      const job = /^0x[0-9a-fA-F]{64}$/.test(jobId) ? await storage.jobs.get(jobId.toLowerCase()) : undefined;
      const out = job?.image?.outputs?.[index];
      if (!job || !out || job.status !== 'succeeded')
        throw new GatewayError('job_not_found', `no image ${index} of a completed job ${jobId}`, {
          param: 'id',
        });
      const [image, latents] = await Promise.all([
        storage.images.get(out.hash),
        storage.images.getTrajectory(job.id, index),
      ]);
      return {
        job_id: job.id,
        object: 'audit.image' as const,
        index,
        hash: out.hash,
        trajectory_root: out.trajectoryRoot,
        data: image ? Buffer.from(image.bytes).toString('base64') : null,
        latents: latents ? Buffer.from(latents).toString('base64') : null,
      };
    },

    /**
     * Every receipt of one batch, in the order it was settled, each with its leaf and Merkle proof
     * (over exactly these receipts: `verifyReceiptProof(root, receipt, proof)` holds for each). A
     * batch that failed to settle is unknown: its receipts went back to the pool and into later batches.
     */
    async batch(root: string) {
      const b = /^0x[0-9a-fA-F]{64}$/.test(root)
        ? await storage.receipts.getBatchByRoot(root as Hex)
        : undefined;
      if (!b || b.status === 'failed')
        throw new GatewayError('batch_not_found', `no batch with root ${root} on this gateway`, {
          param: 'root',
        });
      const receipts = await storage.receipts.listByBatch(b.id);
      if (receipts.length === 0)
        throw new GatewayError('batch_not_found', `no batch with root ${root} on this gateway`, {
          param: 'root',
        });
      const tree = buildReceiptTree(receipts.map((r) => r.receipt));
      if (tree.root.toLowerCase() !== b.root.toLowerCase()) {
        // Only an edited database gets here: never hand out proofs that do not verify.
        throw new GatewayError('internal_error', 'the stored receipts do not rebuild the batch root', {
          details: `batch ${b.id}: rebuilt ${tree.root}, recorded ${b.root}`,
        });
      }
      const batchId = await chainBatchId(b);
      return {
        object: 'audit.batch' as const,
        root: b.root,
        batch_id: batchId === null ? null : batchId.toString(),
        status: b.status,
        tx_hash: b.txHash,
        settled_block: b.settledBlock === null ? null : b.settledBlock.toString(),
        receipt_count: receipts.length,
        first_seq: b.firstSeq === null ? null : b.firstSeq.toString(),
        seq_count: b.seqCount === null ? null : b.seqCount.toString(),
        receipts: receipts.map((r, i) => ({
          job_id: r.receipt.jobId,
          leaf: receiptLeafHash(r.receipt),
          receipt: receiptToJson(r.receipt),
          signature: r.signature,
          signer: r.signer,
          // Index i is the i-th value given to the tree (StandardMerkleTree keeps that order).
          proof: tree.getProof(i) as Hex[],
        })),
        chain: { chain_id: chain.chainId, grid: chain.grid },
      };
    },
  };
}
