import type { IncomingMessage } from 'node:http';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { bearerToken } from '../auth/keys.ts';
import { GatewayError } from '../errors.ts';
import type { JobSpec } from '../jobs/index.ts';
import {
  createChunker,
  gridInfo,
  renderCompletion,
  renderJob,
  sealedChunkEvent,
  sealedTailEvent,
  usageOf,
} from '../jobs/render.ts';
import { type ApiKeyRecord, type JobRecord, sealedChunksOf, sealedOf } from '../storage/index.ts';
import type { ApiFeatures, Env, RouteDeps } from './env.ts';
import { toGatewayError } from './errors.ts';
import { idempotency } from './idempotency.ts';
import { registerAuditEvidenceRoutes } from './routes/audit.ts';
import { registerCompletionRoutes } from './routes/completions.ts';
import { registerImageRoutes, replayImages } from './routes/images.ts';
import { registerJobRoutes } from './routes/jobs.ts';
import { registerKeyRoutes } from './routes/keys.ts';
import { registerModelRoutes } from './routes/models.ts';
import { registerOperationRoutes } from './routes/operations.ts';
import { sseResponse } from './sse.ts';

/** The response header naming the job a request created (also sent as `x-request-id`). */
export const JOB_ID_HEADER = 'x-grid-job-id';
const jobIdHeaders = (id: string) => ({ [JOB_ID_HEADER]: id, 'x-request-id': id });

export type Api = ReturnType<typeof createApi>;

function clientIp(c: Context): string {
  const incoming = (c.env as { incoming?: IncomingMessage } | undefined)?.incoming;
  return incoming?.socket?.remoteAddress ?? 'unknown';
}

async function jsonBody(c: Context): Promise<unknown> {
  const text = await c.req.text();
  if (text.trim() === '')
    throw new GatewayError('invalid_json', 'the request body is empty; send a JSON object');
  return JSON.parse(text);
}

/**
 * The HTTP API (Hono): what every request goes through (metrics, body limit, the bearer key and rate
 * limits, idempotency), the endpoint families (routes/: completions, images, async jobs, keys and
 * balance, models, audit evidence, operations) and the one error handler: every error leaves through
 * `app.onError` in OpenAI's shape.
 */
export function createApi({ common, storage, chain, auth, billing, hub, jobs, audit, tee }: ApiFeatures) {
  const { options, logger, metrics } = common;
  const app = new Hono<Env>();

  // ── cross-cutting ──────────────────────────────────────────────────────────────────────────
  app.use('*', async function observe(c, next) {
    const start = performance.now();
    c.set('requestStart', start);
    await next();
    const route = c.req.routePath || 'unmatched';
    const seconds = (performance.now() - start) / 1000;
    metrics.httpRequests.inc({ route, method: c.req.method, status: c.res.status });
    metrics.httpDuration.observe({ route, method: c.req.method }, seconds);
    const quiet = c.req.path === '/healthz' || c.req.path === '/metrics';
    logger[quiet ? 'debug' : 'info']({
      msg: 'request',
      method: c.req.method,
      path: c.req.path,
      status: c.res.status,
      ms: Math.round(seconds * 1000),
      key_id: c.get('key')?.id,
    });
  });

  const tooLarge = (): never => {
    throw new GatewayError('body_too_large', `the request body exceeds ${options.http.bodyLimitBytes} bytes`);
  };
  // A body sent in chunks (no length) is counted while it is read.
  const limitChunked = bodyLimit({ maxSize: options.http.bodyLimitBytes, onError: tooLarge });
  app.use('*', async function bodySize(c, next) {
    // Node's parser reads exactly Content-Length bytes, so the header decides; asking for the web
    // Request's body instead would build a ReadableStream for every request.
    const length = c.req.header('content-length');
    if (c.req.header('transfer-encoding') === undefined) {
      if (length !== undefined) return Number(length) > options.http.bodyLimitBytes ? tooLarge() : next();
      if (c.req.method === 'GET' || c.req.method === 'HEAD') return next();
    }
    return limitChunked(c, next);
  });

  const requireKey: MiddlewareHandler<Env> = async function requireKey(c, next) {
    const key = await auth.authenticate(bearerToken(c.req.header('authorization')));
    c.set('key', key);
    // The key's own bucket and its payer's (shared by all the payer's keys): minting keys adds nothing.
    const rl = auth.takeRequest(key);
    if (!rl.ok) {
      metrics.rateLimited.inc({ scope: rl.scope });
      throw new GatewayError(
        'rate_limit_exceeded',
        `rate limit reached (${rl.limit} requests per minute${rl.scope === 'payer' ? " for all of this payer's keys" : ''}); retry after ${Math.ceil(rl.retryAfterMs / 1000)} s`,
        {
          headers: {
            'retry-after': String(Math.ceil(rl.retryAfterMs / 1000)),
            'x-ratelimit-limit-requests': String(rl.limit),
            'x-ratelimit-remaining-requests': '0',
          },
        },
      );
    }
    c.header('x-ratelimit-limit-requests', String(rl.limit));
    c.header('x-ratelimit-remaining-requests', String(rl.remaining));
    await next();
  };

  const anonymousLimit: MiddlewareHandler<Env> = async function anonymousLimit(c, next) {
    const rl = auth.anonymousLimiter.take(clientIp(c));
    if (!rl.ok) {
      metrics.rateLimited.inc({ scope: 'ip' });
      throw new GatewayError('rate_limit_exceeded', 'too many requests from this address; retry later', {
        headers: { 'retry-after': String(Math.ceil(rl.retryAfterMs / 1000)) },
      });
    }
    await next();
  };

  async function replayJob(c: Context, job: JobRecord): Promise<Response> {
    for (const [k, v] of Object.entries(jobIdHeaders(job.id))) c.header(k, v);
    if (job.mode === 'async') return c.json(renderJob(job, await storage.receipts.getByJob(job.id)), 202);
    if (job.status === 'failed') {
      const e = job.error ?? { code: 'worker_failed', message: 'the job failed', status: 502 };
      return c.json(
        { error: { message: e.message, type: 'server_error', param: null, code: e.code } },
        e.status as 502,
      );
    }
    if (job.status !== 'succeeded')
      throw new GatewayError('idempotency_key_in_use', 'the first request is still running');
    const receipt = await storage.receipts.getByJob(job.id);
    if (job.image) return replayImages(c, job, receipt, storage);
    if (sealedOf(job) && job.mode === 'stream') {
      const chunks = sealedChunksOf(job);
      return sseResponse(
        async (sink) => {
          for (const [seq, ciphertext] of chunks.entries())
            sink.send(sealedChunkEvent(job, { seq, final: seq === chunks.length - 1, ciphertext }));
          sink.send(sealedTailEvent(job, receipt));
          sink.done();
        },
        () => {},
        jobIdHeaders(job.id),
      );
    }
    if (job.mode !== 'stream') return c.json(renderCompletion(job, receipt));
    const chunker = createChunker(job);
    return sseResponse(
      async (sink) => {
        const start = chunker.start();
        if (start) sink.send(start);
        if (job.outputText) sink.send(chunker.delta(job.outputText));
        sink.send(chunker.finish(job.finishReason ?? 'stop', usageOf(job), gridInfo(job, receipt)));
        const usage = chunker.usage(usageOf(job), gridInfo(job, receipt));
        if (usage) sink.send(usage);
        sink.done();
      },
      () => {},
      jobIdHeaders(job.id),
    );
  }

  const authedIdempotency = idempotency({
    common,
    storage,
    scope: (c) => `payer:${(c.get('key') as ApiKeyRecord).payer}`,
    replayJob,
    owner: jobs.instanceId,
  });

  function checkMaxTokens(spec: Pick<JobSpec, 'maxTokens'>) {
    if (spec.maxTokens !== undefined && spec.maxTokens > options.jobs.maxMaxTokens) {
      throw new GatewayError('invalid_request', `max_tokens may be at most ${options.jobs.maxMaxTokens}`, {
        param: 'max_tokens',
      });
    }
  }

  /**
   * The job's id in the answer's headers, before its body (streamed or not, success or error): a
   * client without an Idempotency-Key can always recover what it paid for (`GET /v1/jobs/{id}`).
   * `x-request-id` is what the official OpenAI clients expose as `_request_id`.
   */
  function setJobId(c: Context<Env>, id: string) {
    c.set('jobId', id);
    for (const [k, v] of Object.entries(jobIdHeaders(id))) c.header(k, v);
  }

  /** A prepared job is under way: its id in the headers, its Idempotency-Key pointed at it. */
  async function started(c: Context<Env>, job: JobRecord): Promise<void> {
    setJobId(c, job.id);
    const idem = c.get('idem');
    if (idem) {
      try {
        await storage.idempotency.setJob(idem.scope, idem.key, job.id);
      } catch (error) {
        jobs.discard(job);
        throw error;
      }
    }
  }

  // ── the endpoint families, one file each (routes/) ───────────────────────────────────────────
  const deps: RouteDeps = {
    common,
    storage,
    chain,
    auth,
    billing,
    hub,
    jobs,
    audit,
    tee,
    requireKey,
    anonymousLimit,
    idempotent: authedIdempotency,
    replayJob,
    jsonBody,
    clientIp,
    setJobId,
    started,
    checkMaxTokens,
    jobIdHeaders,
  };
  registerCompletionRoutes(app, deps);
  registerImageRoutes(app, deps);
  registerJobRoutes(app, deps);
  registerKeyRoutes(app, deps);
  registerModelRoutes(app, deps);
  registerAuditEvidenceRoutes(app, deps);
  registerOperationRoutes(app, deps);

  app.notFound(() => {
    throw new GatewayError('not_found', 'no such endpoint');
  });

  app.onError((error, c) => {
    const e = toGatewayError(error);
    // A job that failed still names itself (set before the job ran; c.header survives to here).
    const jobId = c.get('jobId' as never) as string | undefined;
    if (jobId) for (const [k, v] of Object.entries(jobIdHeaders(jobId))) c.header(k, v);
    if (e.code === 'internal_error') logger.error({ msg: 'unhandled error', path: c.req.path, error });
    for (const [k, v] of Object.entries(e.headers)) c.header(k, v);
    // The client may still be sending the oversized body: do not reuse this connection.
    if (e.code === 'body_too_large') c.header('connection', 'close');
    return c.json(e.toJSON(), e.status as 400);
  });

  return app;
}
