import {
  IMAGE_CHECK_OPS,
  type ImageCheckMessage,
  type ImageCheckResultMessage,
  JobErrorCode,
  latentBytes,
  latentsFromBytes,
} from '@aipg/core';
import { type Address, getAddress, type Hex } from 'viem';
import { z } from 'zod';
import type { Common } from '../common.ts';
import { GatewayError } from '../errors.ts';
import type { Hub, WorkerSession } from '../hub/index.ts';
import { newJobId } from '../jobs/id.ts';
import type { Storage } from '../storage/index.ts';

/** How long a check waits, at most, before asking a checker that refused for capacity again. */
const REFUSAL_BACKOFF_MS = 250;

/** `POST /v1/audit/image-check` body. */
export const imageCheckRequestSchema = z.object({
  /** The audited image job (completed here). */
  job_id: z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected 32-byte hex'),
  /** The checker the validator drew (bond owner): only it answers; never the audited job's worker. */
  worker: z.string().regex(/^0x[0-9a-fA-F]{40}$/, 'expected an address'),
  image: z.number().int().min(0).max(9),
  op: z.enum(IMAGE_CHECK_OPS),
  /** `step`: the step to run from the committed latent `step` (0 ≤ step < steps). */
  step: z.number().int().min(0).max(1000),
});
export type ImageCheckRequest = z.infer<typeof imageCheckRequestSchema>;

export type ImageCheckResponse = {
  worker: Address;
  operator: Address;
  check_job_id: Hex;
  /** The latent computed (`noise`, `step`): float32 LE, base64. */
  latent: string | null;
  /** The decoded image's keccak256 (`decode`). */
  image_hash: Hex | null;
  /** The checker's EIP-712 `ImageCheck` signature, passed through as it came. */
  signature: Hex;
};

/**
 * Image cross-checks for validators without the weights: one computation of an audited image job
 * (its seed's noise, one denoising step from the latent the worker committed to, or the decode of
 * its final latent) run by the worker the validator drew among those serving the model, never the
 * audited worker. The gateway takes the prompt, parameters and latents from the job as it stored
 * them (what the audited worker signed), and passes the checker's signed answer through.
 */
export function createImageChecker({
  common,
  storage,
  hub,
}: {
  common: Pick<Common, 'options' | 'logger' | 'metrics'>;
  storage: Pick<Storage, 'jobs' | 'images'>;
  hub: Pick<Hub, 'workers' | 'dispatchCheck' | 'waitForCapacity'>;
}) {
  const { options, metrics } = common;
  const checks = metrics.counter(
    'aipg_gateway_audit_image_checks_total',
    'Image cross-checks asked by validators, by computation and outcome.',
  );
  const inFlight = new Map<Address, number>();
  return {
    /** Runs one check for `ctx.validator` (at most `audit.maxScoresPerValidator` of its at once, with scores' bound). */
    async check(req: ImageCheckRequest, ctx: { validator: Address }): Promise<ImageCheckResponse> {
      const running = inFlight.get(ctx.validator) ?? 0;
      if (running >= options.audit.maxScoresPerValidator) {
        checks.inc({ op: req.op, outcome: 'rate_limited' });
        throw new GatewayError(
          'rate_limit_exceeded',
          `at most ${options.audit.maxScoresPerValidator} image checks of one validator run at once`,
          { headers: { 'retry-after': '1' } },
        );
      }
      inFlight.set(ctx.validator, running + 1);
      try {
        return await checkOnce(req);
      } finally {
        const left = (inFlight.get(ctx.validator) ?? 1) - 1;
        if (left > 0) inFlight.set(ctx.validator, left);
        else inFlight.delete(ctx.validator);
      }
    },
  };

  async function checkOnce(req: ImageCheckRequest): Promise<ImageCheckResponse> {
    const job = await storage.jobs.get(req.job_id.toLowerCase());
    const out = job?.image?.outputs?.[req.image];
    if (!job?.image || job.status !== 'succeeded' || !out)
      throw new GatewayError(
        'job_not_found',
        `no image ${req.image} of a completed image job ${req.job_id}`,
        {
          param: 'job_id',
        },
      );
    const p = job.image.params;
    const named = getAddress(req.worker);
    if (job.worker && named === getAddress(job.worker))
      throw new GatewayError('invalid_request', 'the audited worker cannot check its own job', {
        param: 'worker',
      });
    let latent: Float32Array | undefined;
    if (req.op !== 'noise') {
      if (req.op === 'step' && req.step >= p.steps)
        throw new GatewayError('invalid_request', `step must be below the job's ${p.steps} steps`, {
          param: 'step',
        });
      const stored = await storage.images.getTrajectory(job.id, req.image);
      const latents = stored && latentsFromBytes(stored, p.steps + 1);
      if (!latents)
        throw new GatewayError('job_not_found', 'the latents of that image are not held (any more)', {
          param: 'job_id',
        });
      latent = latents[req.op === 'step' ? req.step : p.steps];
    }
    const frame: Omit<ImageCheckMessage, 'jobId'> = {
      type: 'image-check',
      auditedJobId: job.id,
      modelId: job.modelId,
      promptTokenIds: job.promptTokenIds ?? [],
      negativeTokenIds: job.image.negativeTokenIds,
      params: p,
      op: req.op,
      image: req.image,
      step: req.op === 'step' ? req.step : req.op === 'decode' ? p.steps : 0,
      ...(latent ? { latent: Buffer.from(latentBytes(latent)).toString('base64') } : {}),
    };
    // The drawn checker busy with its own jobs (or another validator's check) is not a failure: the
    // check waits for one of its slots, and a refusal for capacity is tried again, all within the
    // check's timeout. Only its own fault (an error, silence past the deadline) fails the check.
    const deadline = Date.now() + options.audit.scoreTimeoutMs;
    const online = () =>
      hub
        .workers()
        .filter(
          (w) => w.owner === named && !w.draining && w.models.get(job.modelId)?.image?.trajectory === true,
        );
    const free = (candidates: WorkerSession[]) =>
      candidates.find((c) => {
        const m = c.models.get(job.modelId)!;
        return m.inFlight < m.maxConcurrency;
      });
    for (;;) {
      let candidates = online();
      let w = free(candidates);
      while (!w && candidates.length > 0 && Date.now() < deadline) {
        await hub.waitForCapacity(Math.min(1_000, deadline - Date.now()));
        candidates = online();
        w = free(candidates);
      }
      if (candidates.length === 0) {
        checks.inc({ op: req.op, outcome: 'no_worker' });
        throw new GatewayError('no_worker_available', `worker ${named} is not online with ${job.modelName}`, {
          param: 'worker',
          retryable: true,
        });
      }
      if (!w) {
        checks.inc({ op: req.op, outcome: 'busy' });
        throw new GatewayError(
          'no_worker_available',
          `worker ${named} stayed busy for ${options.audit.scoreTimeoutMs} ms; retry later`,
          { param: 'worker', retryable: true },
        );
      }
      const sent: ImageCheckMessage = { ...frame, jobId: newJobId() };
      const answer = await ask(w, sent, deadline);
      if (answer === 'busy') {
        // Full with work the gateway does not see (another gateway's): not asked again before a slot
        // frees here or a quarter second passes, so a worker that keeps refusing is never hammered.
        await hub.waitForCapacity(Math.min(REFUSAL_BACKOFF_MS, Math.max(0, deadline - Date.now())));
        continue;
      }
      return {
        worker: w.owner,
        operator: w.operator,
        check_job_id: sent.jobId,
        latent: answer.latent ?? null,
        image_hash: answer.imageHash ?? null,
        signature: answer.signature,
      };
    }

    /** One try on `w`: its signed answer, or 'busy' when it refused for capacity (tried again). */
    function ask(w: WorkerSession, sent: ImageCheckMessage, deadline: number) {
      return new Promise<ImageCheckResultMessage | 'busy'>((resolve, reject) => {
        const failed = (e: GatewayError) => {
          checks.inc({ op: req.op, outcome: 'failed' });
          reject(e);
        };
        const handle = hub.dispatchCheck(w, sent, {
          onCheck: (f) => {
            clearTimeout(timer);
            checks.inc({ op: req.op, outcome: 'answered' });
            resolve(f);
          },
          onError: (e) => {
            clearTimeout(timer);
            if (e.code === JobErrorCode.busy && Date.now() < deadline) return resolve('busy');
            failed(
              new GatewayError('worker_failed', `the checker failed: ${e.code}: ${e.message}`, {
                retryable: true,
              }),
            );
          },
        });
        const timer = setTimeout(
          () => {
            handle.cancel('check timeout');
            failed(
              new GatewayError('worker_failed', `no answer within ${options.audit.scoreTimeoutMs} ms`, {
                retryable: true,
              }),
            );
          },
          Math.max(0, deadline - Date.now()),
        );
      });
    }
  }
}

export type ImageChecker = ReturnType<typeof createImageChecker>;
