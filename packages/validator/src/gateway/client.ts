/**
 * The gateway's audit API, as a validator calls it. Every request is signed by the validator's
 * operator key (EIP-191 over `auditRequestMessage`: gateway address, method, path, timestamp) and
 * sent with the `x-aipg-validator`, `x-aipg-timestamp` and `x-aipg-signature` headers; the gateway
 * accepts each signature once, only from the operator of an active validator bond.
 *
 *   GET  /v1/audit/batches/:root   the receipts of a settled batch, with their Merkle proofs
 *   GET  /v1/audit/jobs/:id        everything about one job (input, params, sampler, token ids, receipt)
 *   GET  /v1/audit/scorers         the workers online for a model (a cross-check draws its scorer among them)
 *   POST /v1/audit/score           a cross-check: the drawn worker re-scores a claimed output, signed
 */
import {
  AUDIT_HEADERS,
  auditRequestMessage,
  type ChatMessage,
  chatMessageSchema,
  type ImageCheckOp,
  imageParamsSchema,
  type Receipt,
  receiptFromJson,
  receiptJsonSchema,
  SAMPLER_NAME,
  samplingParamsSchema,
  type TeeEvidence,
} from '@aipg/core';
import type { Address, Hex, LocalAccount } from 'viem';
import { z } from 'zod';
import { ValidatorError, ValidatorErrorCode } from '../errors.ts';

export { AUDIT_HEADERS, auditRequestMessage } from '@aipg/core';

const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/) as unknown as z.ZodType<Hex>;
const hexBytes = z.string().regex(/^0x([0-9a-fA-F]{2})*$/) as unknown as z.ZodType<Hex>;
const address = z.string().regex(/^0x[0-9a-fA-F]{40}$/) as unknown as z.ZodType<Address>;
const tokenIds = z.array(z.number().int().min(0).max(0xffffffff));
const uint = z.union([z.number().int().min(0), z.string().regex(/^\d{1,78}$/)]).transform((v) => BigInt(v));

const jobEvidenceSchema = z.object({
  job_id: hex32,
  status: z.string(),
  kind: z.enum(['chat', 'completion']),
  model: z.object({ id: hex32, name: z.string() }),
  request: z.object({
    input: z.union([
      z.object({ messages: z.array(chatMessageSchema).min(1) }),
      z.object({ prompt: z.string() }),
    ]),
    params: samplingParamsSchema,
    pricing: z
      .object({
        inputPerMTokens: z.string(),
        outputPerMTokens: z.string(),
        confidentialPremiumBps: z.number().int(),
      })
      .nullish(),
  }),
  sampler: z.string().regex(SAMPLER_NAME),
  prompt_token_ids: tokenIds,
  output_token_ids: tokenIds,
  finish_reason: z.enum(['stop', 'length']),
  receipt: receiptJsonSchema,
  signature: hexBytes,
  signer: address.nullish(),
  leaf_hash: hex32.nullish(),
  batch: z
    .object({ batch_id: uint.nullish(), root: hex32, proof: z.array(hex32) })
    .passthrough()
    .nullish(),
  chain: z.object({ chain_id: z.number().int(), grid: address }).nullish(),
});

/**
 * A confidential job's audit evidence: no tokens (the gateway never saw them), the evidence its receipt
 * commits to (stored by the gateway when it verified it) and the hash of the sealed request it relayed.
 */
const confidentialJobEvidenceSchema = z.object({
  job_id: hex32,
  receipt: receiptJsonSchema,
  signature: hexBytes,
  // Null when the gateway serves none for the job (its fault: the receipt it settled is confidential).
  confidential: z
    .object({
      attestation: hex32,
      sealed_request_hash: hex32,
      // Checked by the judge (`verifyEvidence` parses it): malformed evidence is the judge's to refuse.
      evidence: z.unknown().nullable(),
    })
    .nullish(),
});

export type AuditConfidentialJobEvidence = {
  jobId: Hex;
  receipt: Receipt;
  signature: Hex;
  /** What the receipt commits to, as the gateway serves it; null when it serves nothing. */
  confidential: { attestation: Hex; sealedRequestHash: Hex; evidence: TeeEvidence | unknown | null } | null;
};

const imageJobEvidenceSchema = z.object({
  job_id: hex32,
  kind: z.literal('image'),
  prompt_token_ids: z.array(z.number().int().min(0).max(255)),
  receipt: receiptJsonSchema,
  signature: hexBytes,
  image: z.object({
    params: imageParamsSchema,
    negative_token_ids: z.array(z.number().int().min(0).max(255)),
    pipeline: z.string(),
    outputs: z.array(z.object({ hash: hex32, trajectory_root: hex32 })).max(10),
  }),
});
const auditImageSchema = z.object({
  hash: hex32,
  trajectory_root: hex32,
  data: z.string().nullable(),
  latents: z.string().nullable(),
});

const imageCheckSchema = z.object({
  worker: address,
  operator: address,
  check_job_id: hex32,
  latent: z.string().nullable(),
  image_hash: hex32.nullable(),
  signature: hexBytes,
});

/** One audited image job as the gateway serves it, parsed (each image fetched with `getImage`). */
export type AuditImageJobEvidence = {
  jobId: Hex;
  promptTokenIds: number[];
  negativeTokenIds: number[];
  params: z.infer<typeof imageParamsSchema>;
  pipeline: string;
  outputs: { hash: Hex; trajectoryRoot: Hex }[];
  receipt: Receipt;
  signature: Hex;
};

/** One audited job as the gateway serves it, parsed. */
export type AuditJobEvidence = {
  jobId: Hex;
  status: string;
  kind: 'chat' | 'completion';
  model: { id: Hex; name: string };
  input: { messages: ChatMessage[] } | { prompt: string };
  params: z.infer<typeof samplingParamsSchema>;
  pricing: { inputPerMTokens: string; outputPerMTokens: string; confidentialPremiumBps: number } | null;
  /**
   * The sampler the worker ran, as it signed it into the receipt's `requestHash`: `CANONICAL_SAMPLER`
   * (replayable) or an engine's own (`ollama`, `vllm`).
   */
  sampler: string;
  promptTokenIds: number[];
  outputTokenIds: number[];
  finishReason: 'stop' | 'length';
  receipt: Receipt;
  signature: Hex;
  signer: Address | null;
  /** The batch it settled in: the Grid's batch id (null until the gateway has linked it), root, proof. */
  batch: { batchId: bigint | null; root: Hex; proof: Hex[] } | null;
};

const batchSchema = z.object({
  root: hex32,
  batch_id: uint.nullable(),
  receipts: z.array(
    z.object({
      job_id: hex32,
      leaf: hex32,
      receipt: receiptJsonSchema,
      signature: hexBytes,
      proof: z.array(hex32),
    }),
  ),
});

export type AuditBatchReceipt = { jobId: Hex; leaf: Hex; receipt: Receipt; signature: Hex; proof: Hex[] };
/** A settled batch's receipts; `batchId` is null until the gateway has linked the root to the Grid's id. */
export type AuditBatch = { root: Hex; batchId: bigint | null; receipts: AuditBatchReceipt[] };

export type ScoreRequest = {
  jobId: Hex;
  modelId: Hex;
  promptTokenIds: readonly number[];
  outputTokenIds: readonly number[];
  topK: number;
  /** The audited worker (bond owner): never the scorer. */
  excludeWorker: Address;
  /** The scorer this validator drew (bond owner): the gateway routes to it or fails. */
  worker?: Address | undefined;
};

const scorersSchema = z.object({
  data: z.array(z.object({ worker: address, operator: address })).max(10_000),
});

/** `POST /v1/audit/score` answer, as the gateway serves it. */
export const scoreResponseSchema = z.object({
  worker: address,
  operator: address,
  score_job_id: hex32,
  signature: hexBytes,
  positions: z.array(
    z.object({
      token_id: z.number().int().min(0),
      probability: z.number().min(0).max(1.0001),
      rank: z.number().int().min(0),
      top: z.array(
        z.object({ token_id: z.number().int().min(0), probability: z.number().min(0).max(1.0001) }),
      ),
    }),
  ),
});

export type ScoreResponse = {
  /** The scorer's bond owner and operator key, as the gateway says (the signature decides). */
  worker: Address;
  operator: Address;
  /** The score job's id, signed into the scores. */
  scoreJobId: Hex;
  /** The scorer's EIP-712 signature of `scoreAttestation(…)` (`@aipg/core`). */
  signature: Hex;
  positions: {
    tokenId: number;
    probability: number;
    rank: number;
    top: { tokenId: number; probability: number }[];
  }[];
};

/** How far ahead of the clock a timestamp may run to keep signatures unique (the gateway allows 60 s). */
const SKEW_BUDGET_S = 20;

export type AuditClientOptions = {
  /** The gateway's base URL (`https://gateway.example.org`). */
  url: string;
  /** The gateway's address (the account that settles its batches): part of what is signed. */
  gateway: Address;
  /** The validator's operator key. */
  account: LocalAccount;
  /** Per-request timeout. Default 30 s (a cross-check scores a whole output). */
  timeoutMs?: number | undefined;
  /** Injectable clock (unix ms), for tests. */
  now?: (() => number) | undefined;
};

export type AuditClient = {
  readonly url: string;
  readonly gateway: Address;
  getBatch(root: Hex, signal?: AbortSignal): Promise<AuditBatch>;
  getJob(jobId: Hex, signal?: AbortSignal): Promise<AuditJobEvidence>;
  getImageJob(jobId: Hex, signal?: AbortSignal): Promise<AuditImageJobEvidence>;
  /** A confidential job's evidence (`GET /v1/audit/jobs/{id}`: its `confidential` part). */
  getConfidentialJob(jobId: Hex, signal?: AbortSignal): Promise<AuditConfidentialJobEvidence>;
  /** Image `index` of an image job: its bytes and the latents of its trajectory (undefined when gone). */
  getImage(
    jobId: Hex,
    index: number,
    signal?: AbortSignal,
  ): Promise<{ bytes: Uint8Array | undefined; latents: Uint8Array | undefined }>;
  /** One computation of an audited image job by the drawn worker `worker` (`POST /v1/audit/image-check`). */
  imageCheck(
    request: { jobId: Hex; worker: Address; image: number; op: ImageCheckOp; step: number },
    signal?: AbortSignal,
  ): Promise<{
    checkJobId: Hex;
    operator: Address;
    latent: Uint8Array | undefined;
    imageHash: Hex | undefined;
    signature: Hex;
  }>;
  /** The workers online at this gateway that can score `modelId` (the audited one included). */
  listScorers(modelId: Hex, signal?: AbortSignal): Promise<{ worker: Address; operator: Address }[]>;
  score(request: ScoreRequest, signal?: AbortSignal): Promise<ScoreResponse>;
};

export function createAuditClient(options: AuditClientOptions): AuditClient {
  const base = options.url.replace(/\/+$/, '');
  const timeoutMs = options.timeoutMs ?? 30_000;
  const now = options.now ?? Date.now;
  // The signature covers method, path and timestamp only (ECDSA signing is deterministic) and the
  // gateway accepts each signature once: two identical requests in the same second would collide.
  // Each (method, path) gets a strictly increasing timestamp, at most SKEW_BUDGET_S ahead of now.
  const lastTimestamp = new Map<string, number>();

  async function timestampFor(key: string): Promise<number> {
    for (;;) {
      const current = Math.floor(now() / 1000);
      const t = Math.max(current, (lastTimestamp.get(key) ?? 0) + 1);
      if (t - current <= SKEW_BUDGET_S) {
        lastTimestamp.set(key, t);
        return t;
      }
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }

  async function request(method: 'GET' | 'POST', path: string, body: unknown, signal?: AbortSignal) {
    const url = new URL(`${base}${path}`);
    const timestamp = await timestampFor(`${method} ${url.pathname}`);
    const signature = await options.account.signMessage({
      message: auditRequestMessage({ method, path: url.pathname, timestamp, gateway: options.gateway }),
    });
    const headers: Record<string, string> = {
      [AUDIT_HEADERS.validator]: options.account.address,
      [AUDIT_HEADERS.timestamp]: String(timestamp),
      [AUDIT_HEADERS.signature]: signature,
      accept: 'application/json',
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    const timeout = AbortSignal.timeout(timeoutMs);
    let res: Response;
    try {
      res = await fetch(url, {
        method,
        headers,
        body: body === undefined ? undefined : JSON.stringify(body),
        signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
      });
    } catch (cause) {
      throw new ValidatorError(`The gateway ${base} did not answer ${method} ${path}`, {
        code: ValidatorErrorCode.gatewayError,
        cause,
        retryable: true,
      });
    }
    const text = await res.text();
    if (!res.ok) {
      let message = text.slice(0, 500);
      try {
        const e = JSON.parse(text) as { error?: { message?: string; code?: string } };
        if (e.error?.message) message = `${e.error.code ?? res.status}: ${e.error.message}`;
      } catch {}
      throw new ValidatorError(`The gateway answered ${res.status} to ${method} ${path}`, {
        code: ValidatorErrorCode.gatewayError,
        details: message,
        retryable: res.status === 429 || res.status >= 500,
      });
    }
    try {
      return JSON.parse(text) as unknown;
    } catch (cause) {
      throw new ValidatorError(`The gateway's answer to ${method} ${path} is not JSON`, {
        code: ValidatorErrorCode.gatewayError,
        cause,
      });
    }
  }

  function parse<T>(schema: z.ZodType<T>, json: unknown, what: string): T {
    const r = schema.safeParse(json);
    if (!r.success) {
      const issue = r.error.issues[0];
      throw new ValidatorError(`The gateway's ${what} is malformed`, {
        code: ValidatorErrorCode.gatewayError,
        details: `${issue?.path.join('.') || '(top level)'}: ${issue?.message ?? 'invalid'}`,
      });
    }
    return r.data;
  }

  return {
    url: base,
    gateway: options.gateway,
    async getBatch(root, signal) {
      const b = parse(
        batchSchema,
        await request('GET', `/v1/audit/batches/${root}`, undefined, signal),
        'batch',
      );
      return {
        root: b.root,
        batchId: b.batch_id,
        receipts: b.receipts.map((r) => ({
          jobId: r.job_id,
          leaf: r.leaf,
          receipt: receiptFromJson(r.receipt),
          signature: r.signature,
          proof: r.proof,
        })),
      };
    },
    async getConfidentialJob(jobId, signal) {
      const j = parse(
        confidentialJobEvidenceSchema,
        await request('GET', `/v1/audit/jobs/${jobId}`, undefined, signal),
        'confidential job',
      );
      return {
        jobId: j.job_id,
        receipt: receiptFromJson(j.receipt),
        signature: j.signature,
        confidential: j.confidential
          ? {
              attestation: j.confidential.attestation,
              sealedRequestHash: j.confidential.sealed_request_hash,
              evidence: j.confidential.evidence ?? null,
            }
          : null,
      };
    },
    async getJob(jobId, signal) {
      const j = parse(
        jobEvidenceSchema,
        await request('GET', `/v1/audit/jobs/${jobId}`, undefined, signal),
        'job',
      );
      return {
        jobId: j.job_id,
        status: j.status,
        kind: j.kind,
        model: j.model,
        input: j.request.input,
        params: j.request.params,
        pricing: j.request.pricing ?? null,
        sampler: j.sampler,
        promptTokenIds: j.prompt_token_ids,
        outputTokenIds: j.output_token_ids,
        finishReason: j.finish_reason,
        receipt: receiptFromJson(j.receipt),
        signature: j.signature,
        signer: j.signer ?? null,
        batch: j.batch
          ? { batchId: j.batch.batch_id ?? null, root: j.batch.root, proof: j.batch.proof }
          : null,
      };
    },
    async getImageJob(jobId, signal) {
      const j = parse(
        imageJobEvidenceSchema,
        await request('GET', `/v1/audit/jobs/${jobId}`, undefined, signal),
        'image job',
      );
      return {
        jobId: j.job_id,
        promptTokenIds: j.prompt_token_ids,
        negativeTokenIds: j.image.negative_token_ids,
        params: j.image.params,
        pipeline: j.image.pipeline,
        outputs: j.image.outputs.map((o) => ({ hash: o.hash, trajectoryRoot: o.trajectory_root })),
        receipt: receiptFromJson(j.receipt),
        signature: j.signature,
      };
    },
    async getImage(jobId, index, signal) {
      const i = parse(
        auditImageSchema,
        await request('GET', `/v1/audit/jobs/${jobId}/images/${index}`, undefined, signal),
        'image',
      );
      return {
        bytes: i.data === null ? undefined : new Uint8Array(Buffer.from(i.data, 'base64')),
        latents: i.latents === null ? undefined : new Uint8Array(Buffer.from(i.latents, 'base64')),
      };
    },
    async imageCheck(req, signal) {
      const r = parse(
        imageCheckSchema,
        await request(
          'POST',
          '/v1/audit/image-check',
          { job_id: req.jobId, worker: req.worker, image: req.image, op: req.op, step: req.step },
          signal,
        ),
        'image check',
      );
      return {
        checkJobId: r.check_job_id,
        operator: r.operator,
        latent: r.latent === null ? undefined : new Uint8Array(Buffer.from(r.latent, 'base64')),
        imageHash: r.image_hash ?? undefined,
        signature: r.signature,
      };
    },
    async listScorers(modelId, signal) {
      const l = parse(
        scorersSchema,
        await request('GET', `/v1/audit/scorers?model_id=${modelId}`, undefined, signal),
        'scorer list',
      );
      return l.data;
    },
    async score(req, signal) {
      const body = {
        job_id: req.jobId,
        model_id: req.modelId,
        prompt_token_ids: req.promptTokenIds,
        output_token_ids: req.outputTokenIds,
        top_k: req.topK,
        exclude_worker: req.excludeWorker,
        ...(req.worker ? { worker: req.worker } : {}),
      };
      const s = parse(scoreResponseSchema, await request('POST', '/v1/audit/score', body, signal), 'score');
      return {
        worker: s.worker,
        operator: s.operator,
        scoreJobId: s.score_job_id,
        signature: s.signature,
        positions: s.positions.map((p) => ({
          tokenId: p.token_id,
          probability: p.probability,
          rank: p.rank,
          top: p.top.map((t) => ({ tokenId: t.token_id, probability: t.probability })),
        })),
      };
    },
  };
}
