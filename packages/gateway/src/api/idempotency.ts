import { createHash } from 'node:crypto';
import type { Context, MiddlewareHandler } from 'hono';
import { type Common, sleep } from '../common.ts';
import { GatewayError } from '../errors.ts';
import type { JobRecord, Storage } from '../storage/index.ts';

export type IdempotencyVariables = {
  idem: { scope: string; key: string } | undefined;
  /** Set by handlers that started a job: a replay renders the job's stored result. */
  jobId: string | undefined;
  /** The response streams: store nothing, replay from the job. */
  streamed: boolean | undefined;
};

/** Statuses worth replaying: anything but "try again" outcomes (no balance, rate limited, no worker…). */
function storable(status: number): boolean {
  return status < 500 && ![402, 408, 409, 429, 499].includes(status);
}

const KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * `Idempotency-Key` on POST: the first request with a key runs; a retry with the same key and body gets
 * the first response back (a job's result is re-rendered from the database, never run or charged
 * twice); a concurrent duplicate waits for the first to finish. The same key with another body is 422.
 *
 * `mode: 'rerun'` is for handlers that are idempotent by themselves and whose response must not be
 * stored (API key creation: the key is never written down): a replay runs the handler again.
 */
export function idempotency({
  common,
  storage,
  scope,
  mode = 'store',
  replayJob,
  owner,
}: {
  common: Common;
  storage: Storage;
  scope: (c: Context) => string;
  mode?: 'store' | 'rerun';
  /** This process (`Jobs.instanceId`): its locks are taken over at once if it dies. */
  owner: string;
  replayJob: (c: Context, job: JobRecord) => Promise<Response>;
}): MiddlewareHandler<{ Variables: IdempotencyVariables }> {
  const { options } = common;
  const lockMs = options.jobs.jobTimeoutMs + options.jobs.queueTimeoutMs + 30_000;
  return async function idempotencyMiddleware(c, next) {
    const key = c.req.header('idempotency-key');
    if (c.req.method !== 'POST' || key === undefined) return next();
    if (!KEY.test(key)) {
      throw new GatewayError('invalid_request', 'Idempotency-Key must be 1-255 printable ASCII characters', {
        param: 'Idempotency-Key',
      });
    }
    const body = await c.req.text();
    const fingerprint = createHash('sha256').update(`${c.req.method} ${c.req.path}\n${body}`).digest('hex');
    const s = scope(c);
    const deadline = Date.now() + options.idempotency.waitMs;
    for (;;) {
      const claim = await storage.idempotency.claim(
        s,
        key,
        fingerprint,
        lockMs,
        options.idempotency.ttlSec,
        owner,
      );
      if (claim.state === 'new') break;
      if (claim.state === 'mismatch') {
        throw new GatewayError(
          'idempotency_key_reused',
          'this Idempotency-Key was used with a different request',
          {
            param: 'Idempotency-Key',
          },
        );
      }
      if (claim.state === 'done') {
        if (claim.response) {
          return new Response(claim.response.body, {
            status: claim.response.status,
            headers: { ...claim.response.headers, 'idempotent-replayed': 'true' },
          });
        }
        if (claim.jobId) {
          const job = await storage.jobs.get(claim.jobId);
          if (job?.status === 'failed' && job.mode !== 'async') {
            // The first try failed mid-stream or was cancelled: nothing was charged, so run again.
            await storage.idempotency.release(s, key, { onlyIfDone: true });
            continue;
          }
          if (job) return withReplayHeader(await replayJob(c, job));
        }
        if (mode === 'rerun') {
          await next();
          c.res.headers.set('idempotent-replayed', 'true');
          return;
        }
      }
      if (claim.state === 'in_progress' && claim.jobId && claim.stale) {
        // The first request's process died: the job's record decides, now (not when a lease runs out).
        let job = await storage.jobs.get(claim.jobId);
        if (job && (job.status === 'running' || job.status === 'queued')) {
          // Its job died with it: a sync or streamed one fails (nothing was charged), an async one goes
          // back to the queue. A job whose process still lives is left alone.
          await storage.jobs.recoverExpired(job.id);
          job = await storage.jobs.get(claim.jobId);
        }
        if (job?.mode === 'async') {
          await storage.idempotency.complete(s, key, null);
          return withReplayHeader(await replayJob(c, job));
        }
        if (job?.status === 'succeeded') {
          await storage.idempotency.complete(s, key, null);
          return withReplayHeader(await replayJob(c, job));
        }
        if (job?.status === 'failed') {
          // Nothing was charged: give the key up and run this request instead.
          await storage.idempotency.release(s, key);
          continue;
        }
      }
      if (Date.now() >= deadline) {
        throw new GatewayError(
          'idempotency_key_in_use',
          'a request with this Idempotency-Key is still running; retry later',
          {
            param: 'Idempotency-Key',
            headers: { 'retry-after': '1' },
          },
        );
      }
      await sleep(100);
    }

    c.set('idem', { scope: s, key });
    try {
      await next();
    } catch (error) {
      await storage.idempotency.release(s, key).catch(() => {});
      throw error;
    }
    const status = c.res.status;
    const jobId = c.get('jobId');
    try {
      if (c.get('streamed') && jobId) {
        await storage.idempotency.complete(s, key, null);
      } else if (!storable(status) && !jobId) {
        await storage.idempotency.release(s, key);
      } else if (mode === 'rerun') {
        await storage.idempotency.complete(s, key, null);
      } else if (!storable(status) && jobId) {
        // The job ran and failed (no worker, worker error): nothing was charged; let a retry run again.
        await storage.idempotency.release(s, key);
      } else {
        const text = await c.res.clone().text();
        const contentType = c.res.headers.get('content-type') ?? 'application/json';
        await storage.idempotency.complete(s, key, {
          status,
          headers: { 'content-type': contentType },
          body: text,
        });
      }
    } catch (error) {
      common.logger.error({ msg: 'storing an idempotent response failed', error });
    }
  };
}

function withReplayHeader(res: Response): Response {
  const headers = new Headers(res.headers);
  headers.set('idempotent-replayed', 'true');
  return new Response(res.body, { status: res.status, headers });
}
