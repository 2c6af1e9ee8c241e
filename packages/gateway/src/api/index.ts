import type { IncomingMessage } from 'node:http';
import { computeImageFee } from '@aipg/core';
import { type Context, Hono, type MiddlewareHandler } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import type { Hex } from 'viem';
import type { Audit } from '../audit/index.ts';
import type { Auth } from '../auth/index.ts';
import { bearerToken } from '../auth/keys.ts';
import { aipg, type Billing } from '../billing/index.ts';
import type { Chain } from '../chain/index.ts';
import type { Common } from '../common.ts';
import { GatewayError } from '../errors.ts';
import type { Hub } from '../hub/index.ts';
import type { JobSpec, Jobs } from '../jobs/index.ts';
import {
  createChunker,
  gridInfo,
  renderCompletion,
  renderJob,
  responseId,
  SYSTEM_FINGERPRINT,
  sealedUsage,
  usageOf,
} from '../jobs/render.ts';
import {
  type ApiKeyRecord,
  type JobRecord,
  type Storage,
  type StoredReceipt,
  sealedChunksOf,
  sealedOf,
} from '../storage/index.ts';
import type { Tee } from '../tee/index.ts';
import { assertWebhookUrl } from '../webhooks/index.ts';
import type { Env } from './env.ts';
import { parseOr400, toGatewayError } from './errors.ts';
import { idempotency } from './idempotency.ts';
import { registerImageRoutes, replayImages } from './images.ts';
import {
  chatCompletionRequest,
  chatSpec,
  completionRequest,
  completionSpec,
  confidentialChatRequest,
  confidentialSpec,
  createKeyRequest,
  imageGenerationRequest,
  imageSpec,
  isConfidentialBody,
  jobSubmitRequest,
} from './schemas.ts';
import { openStream, sseResponse } from './sse.ts';

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
 * The HTTP API (Hono): OpenAI-compatible completions, async jobs, API keys, balance, models, audit,
 * metrics and health. Every error leaves through `app.onError` in OpenAI's shape.
 */
export function createApi({
  common,
  storage,
  chain,
  auth,
  billing,
  hub,
  jobs,
  audit,
  tee,
}: {
  common: Common;
  storage: Storage;
  chain: Chain;
  auth: Auth;
  billing: Billing;
  hub: Hub;
  jobs: Jobs;
  audit: Audit;
  tee?: Tee | undefined;
}) {
  const { options, logger, metrics, shutdown } = common;
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

  // ── completions ────────────────────────────────────────────────────────────────────────────
  function checkMaxTokens(spec: JobSpec) {
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

  async function runCompletion(c: Context<Env>, spec: JobSpec, stream: boolean): Promise<Response> {
    checkMaxTokens(spec);
    const job = await jobs.prepare(spec, c.get('key'), {
      mode: stream ? 'stream' : 'sync',
      idempotency: c.get('idem'),
    });
    await started(c, job);
    if (!stream) {
      // A client that goes away does not stop the job: it completes, is charged, and stays retrievable
      // (GET /v1/jobs/:id, or the same Idempotency-Key).
      const outcome = await jobs.execute(job);
      if (!outcome.ok) throw outcome.error;
      return c.json(renderCompletion(outcome.job, outcome.receipt));
    }
    return streamJob(c, job);
  }

  /** Streams a chat or text completion: a chunk per text delta, then the finish, usage and receipt. */
  async function streamJob(c: Context<Env>, job: JobRecord): Promise<Response> {
    const { events, abort } = await openStream(c, (signal) => jobs.stream(job, signal));
    const chunker = createChunker(job);
    return sseResponse(
      async (sink) => {
        let streamedText = '';
        const send = (t: string) => {
          streamedText += t;
          sink.send(chunker.delta(t));
        };
        const start = chunker.start();
        if (start) sink.send(start);
        let next = await events.next();
        for (; !next.done; next = await events.next()) if (next.value.type === 'text') send(next.value.text);
        const outcome = next.value;
        if (!outcome.ok) {
          sink.error(outcome.error.toJSON());
          return;
        }
        const done = outcome.job;
        // Text the worker did not stream (a trailing piece without token ids, or no streaming at all).
        const full = done.outputText ?? '';
        if (full.length > streamedText.length && full.startsWith(streamedText))
          send(full.slice(streamedText.length));
        const grid = gridInfo(done, outcome.receipt);
        sink.send(chunker.finish(done.finishReason ?? 'stop', usageOf(done), grid));
        const usage = chunker.usage(usageOf(done), grid);
        if (usage) sink.send(usage);
        sink.done();
      },
      abort,
      jobIdHeaders(job.id),
    );
  }

  // ── confidential ───────────────────────────────────────────────────────────────────────────
  /** One sealed chunk as a `chat.completion.chunk` event (docs/confidential.md). */
  function sealedChunkEvent(job: JobRecord, chunk: { seq: number; final: boolean; ciphertext: string }) {
    return {
      id: responseId(job),
      object: 'chat.completion.chunk' as const,
      created: job.request.created,
      model: job.request.model,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices: [],
      encrypted: chunk,
    };
  }

  /** The plain last event of a confidential stream: the signed counts and the `grid` object. */
  function sealedTailEvent(job: JobRecord, receipt: StoredReceipt | undefined) {
    return {
      id: responseId(job),
      object: 'chat.completion.chunk' as const,
      created: job.request.created,
      model: job.request.model,
      system_fingerprint: SYSTEM_FINGERPRINT,
      choices: [],
      usage: sealedUsage(receipt),
      grid: { ...gridInfo(job, receipt), confidential: true },
    };
  }

  /**
   * A confidential chat request: routed, priced and billed like any other, its content and answer
   * ciphertext end to end. Streamed, each sealed chunk is relayed as it arrives.
   */
  async function runConfidential(c: Context<Env>, body: unknown): Promise<Response> {
    for (const field of ['messages', 'prompt'])
      if (typeof body === 'object' && body !== null && field in body)
        throw new GatewayError(
          'invalid_request',
          `${field} must not be sent in clear with "confidential": true: seal it into encrypted.ciphertext (docs/confidential.md)`,
          { param: field },
        );
    const spec = confidentialSpec(parseOr400(confidentialChatRequest, body));
    if (spec.maxTokens !== undefined && spec.maxTokens > options.jobs.maxMaxTokens)
      throw new GatewayError('invalid_request', `max_tokens may be at most ${options.jobs.maxMaxTokens}`, {
        param: 'max_tokens',
      });
    const job = await jobs.prepareConfidential(spec, c.get('key'), {
      mode: spec.stream ? 'stream' : 'sync',
      idempotency: c.get('idem'),
    });
    await started(c, job);
    if (!spec.stream) {
      const outcome = await jobs.execute(job);
      if (!outcome.ok) throw outcome.error;
      return c.json(renderCompletion(outcome.job, outcome.receipt));
    }
    const { events, abort } = await openStream(c, (signal) => jobs.stream(job, signal));
    return sseResponse(
      async (sink) => {
        let next = await events.next();
        for (; !next.done; next = await events.next())
          if (next.value.type === 'sealed') {
            const { seq, final, ciphertext } = next.value.chunk;
            sink.send(sealedChunkEvent(job, { seq, final, ciphertext }));
          }
        const outcome = next.value;
        if (!outcome.ok) {
          sink.error(outcome.error.toJSON());
          return;
        }
        sink.send(sealedTailEvent(outcome.job, outcome.receipt));
        sink.done();
      },
      abort,
      jobIdHeaders(job.id),
    );
  }

  /**
   * The attested workers (docs/confidential.md). With `model` and `nonce` (authenticated: it makes each
   * worker attest), fresh evidence for the client's own nonce; otherwise what the gateway last verified.
   */
  app.get(
    '/v1/attestation',
    anonymousLimit,
    async (c, next) => {
      if (c.req.query('nonce') !== undefined) return requireKey(c, next);
      await next();
    },
    async (c) => {
      if (!tee) throw new GatewayError('not_found', 'this gateway runs no confidential tier');
      const name = c.req.query('model');
      const nonce = c.req.query('nonce');
      const worker = c.req.query('worker');
      if (nonce !== undefined && !/^0x[0-9a-fA-F]{64}$/.test(nonce))
        throw new GatewayError('invalid_request', 'nonce must be 32 bytes of 0x-hex', { param: 'nonce' });
      if (worker !== undefined && !/^0x[0-9a-fA-F]{40}$/.test(worker))
        throw new GatewayError('invalid_request', 'worker must be an address', { param: 'worker' });
      if (nonce !== undefined && name === undefined)
        throw new GatewayError('invalid_request', 'a challenge (nonce) needs a model', { param: 'model' });
      const model = name === undefined ? undefined : await jobs.modelFor(name, 'text');
      const premium = await chain.confidentialPremiumBps().catch(() => null);
      const data =
        nonce !== undefined && model
          ? await tee.challengeFor(model.id, nonce.toLowerCase() as Hex, worker as Hex | undefined)
          : tee
              .list({
                modelId: model?.id,
                evidence: c.req.query('evidence') !== 'false' && model !== undefined,
              })
              .filter((w) => !worker || w.worker.toLowerCase() === worker.toLowerCase());
      return c.json({
        object: 'list',
        confidential_premium_bps: premium,
        trust_anchors: options.tee.anchorsSource,
        data,
      });
    },
  );

  app.post('/v1/chat/completions', requireKey, authedIdempotency, async (c) => {
    const body = await jsonBody(c);
    if (isConfidentialBody(body)) return runConfidential(c, body);
    const req = parseOr400(chatCompletionRequest, body);
    return runCompletion(c, chatSpec(req), req.stream === true);
  });

  app.post('/v1/completions', requireKey, authedIdempotency, async (c) => {
    const req = parseOr400(completionRequest, await jsonBody(c));
    return runCompletion(c, completionSpec(req), req.stream === true);
  });

  // ── images ─────────────────────────────────────────────────────────────────────────────────
  registerImageRoutes(app, {
    jobs,
    storage,
    auth: requireKey,
    idempotency: authedIdempotency,
    jsonBody,
    started,
    headersOf: jobIdHeaders,
  });

  // ── async jobs ─────────────────────────────────────────────────────────────────────────────
  app.post('/v1/jobs', requireKey, authedIdempotency, async (c) => {
    const body = parseOr400(jobSubmitRequest, await jsonBody(c));
    if (body.request.stream === true) {
      throw new GatewayError('invalid_request', 'async jobs cannot stream: drop request.stream', {
        param: 'request.stream',
      });
    }
    if (isConfidentialBody(body.request))
      throw new GatewayError(
        'invalid_request',
        'confidential jobs run synchronously: send them to POST /v1/chat/completions (docs/confidential.md)',
        { param: 'request.confidential' },
      );
    if (body.webhook_url !== undefined)
      assertWebhookUrl(body.webhook_url, { allowPrivate: options.webhooks.allowPrivate });
    const idem = c.get('idem');
    const opts = { mode: 'async' as const, idempotency: idem, webhookUrl: body.webhook_url };
    let job: JobRecord;
    if (body.type === 'image.generation') {
      // Async image results link their images (GET /v1/images/files/…): no base64 in job records.
      const spec = imageSpec(parseOr400(imageGenerationRequest, body.request, 'request'));
      job = await jobs.prepareImage({ ...spec, responseFormat: 'url', partialImages: 0 }, c.get('key'), opts);
    } else {
      const spec =
        body.type === 'chat.completion'
          ? chatSpec(parseOr400(chatCompletionRequest, body.request, 'request'))
          : completionSpec(parseOr400(completionRequest, body.request, 'request'));
      checkMaxTokens(spec);
      job = await jobs.prepare(spec, c.get('key'), opts);
    }
    setJobId(c, job.id);
    if (idem) await storage.idempotency.setJob(idem.scope, idem.key, job.id);
    jobs.kick();
    return c.json(renderJob(job, undefined), 202, { location: `/v1/jobs/${job.id}` });
  });

  app.get('/v1/jobs/:id', requireKey, async (c) => {
    const id = c.req.param('id').toLowerCase();
    const job = /^0x[0-9a-f]{64}$/.test(id) ? await storage.jobs.get(id) : undefined;
    if (!job || job.payer !== c.get('key').payer)
      throw new GatewayError('job_not_found', `no job ${c.req.param('id')}`, { param: 'id' });
    return c.json(
      renderJob(job, job.status === 'succeeded' ? await storage.receipts.getByJob(job.id) : undefined, {
        origin: new URL(c.req.url).origin,
        progress: jobs.progressOf(job.id),
      }),
    );
  });

  // ── keys and balance ───────────────────────────────────────────────────────────────────────
  app.post(
    '/v1/keys',
    anonymousLimit,
    idempotency({
      common,
      storage,
      mode: 'rerun',
      scope: (c) => `keys:${clientIp(c)}`,
      replayJob,
      owner: jobs.instanceId,
    }),
    async (c) => {
      const req = parseOr400(createKeyRequest, await jsonBody(c));
      const { key, record, created } = await auth.createKey(req);
      return c.json(
        {
          object: 'api_key',
          id: record.id,
          key,
          payer: record.payer,
          name: record.name,
          created_at: Math.floor(record.createdAt.getTime() / 1000),
        },
        created ? 201 : 200,
      );
    },
  );

  app.get('/v1/keys', requireKey, async (c) => {
    const keys = await storage.keys.listByPayer(c.get('key').payer);
    return c.json({
      object: 'list',
      data: keys.map((k) => ({
        object: 'api_key',
        id: k.id,
        payer: k.payer,
        name: k.name,
        created_at: Math.floor(k.createdAt.getTime() / 1000),
        revoked_at: k.revokedAt ? Math.floor(k.revokedAt.getTime() / 1000) : null,
      })),
    });
  });

  app.delete('/v1/keys/:id', requireKey, async (c) => {
    const ok = await storage.keys.revoke(c.req.param('id'), c.get('key').payer);
    if (ok) auth.forgetKey(c.req.param('id'));
    if (!ok)
      throw new GatewayError('not_found', `no live key ${c.req.param('id')} of this payer`, { param: 'id' });
    return c.json({ object: 'api_key', id: c.req.param('id'), deleted: true });
  });

  app.get('/v1/balance', requireKey, async (c) => {
    const b = await billing.balance(c.get('key').payer);
    const both = (wei: bigint) => ({ aipg: aipg(wei), wei: wei.toString() });
    return c.json({
      object: 'balance',
      payer: b.payer,
      gateway: chain.gateway,
      deposit: both(b.deposit),
      withdraw_requested: both(b.withdrawRequested),
      allowance: both(b.allowance),
      unsettled: both(b.unsettled),
      reserved: both(b.reserved),
      available: both(b.available),
    });
  });

  // ── models ─────────────────────────────────────────────────────────────────────────────────
  /**
   * What the workers online for an image model accept, together (sizes, steps, count, schedulers),
   * and an example price: the first size at the default steps (20, within range), one image.
   */
  function imageOffer(modelId: Hex, rate: bigint) {
    const offers = hub
      .workers()
      .flatMap((w) => (w.models.get(modelId)?.image ? [w.models.get(modelId)!.image!] : []));
    if (offers.length === 0) return null;
    const sizes = [...new Set(offers.flatMap((o) => o.sizes.map(([w, h]) => `${w}x${h}`)))];
    const minSteps = Math.min(...offers.map((o) => o.minSteps));
    const maxSteps = Math.max(...offers.map((o) => o.maxSteps));
    const steps = Math.max(minSteps, Math.min(maxSteps, 20));
    const [w, h] = sizes[0]!.split('x').map(Number) as [number, number];
    const example = computeImageFee({
      params: { width: w, height: h, steps, n: 1 },
      rates: { perMegapixelStep: rate },
    });
    return {
      sizes,
      min_steps: minSteps,
      max_steps: maxSteps,
      max_n: Math.max(...offers.map((o) => o.maxN)),
      schedulers: [...new Set(offers.flatMap((o) => o.schedulers))],
      trajectory: offers.every((o) => o.trajectory),
      example: { size: sizes[0], steps, price: aipg(example), price_wei: example.toString() },
    };
  }

  async function modelList() {
    let models: Awaited<ReturnType<Chain['models']>>;
    let premium: number;
    try {
      [models, premium] = await Promise.all([chain.models(), chain.confidentialPremiumBps()]);
    } catch (error) {
      throw new GatewayError('chain_unavailable', 'the model registry could not be read; try again shortly', {
        cause: error,
      });
    }
    const active = models.filter((m) => m.active);
    return active.map((m, i) => {
      // Two registrations of one name: the newest answers to the name, older ones to their id.
      const newest = active.findLastIndex((x) => x.name === m.name) === i;
      return {
        id: newest ? m.name : m.id,
        object: 'model' as const,
        created: 0,
        owned_by: 'aipg-grid',
        grid: {
          model_id: m.id,
          name: m.name,
          kind: m.kind,
          weights_hash: m.weightsHash,
          parameter_count: m.parameterCount.toString(),
          min_vram_mb: m.minVramMb,
          rates:
            m.kind === 'image'
              ? {
                  per_megapixel_step: aipg(m.rates.perMegapixelStep),
                  per_megapixel_step_wei: m.rates.perMegapixelStep.toString(),
                }
              : {
                  input_per_m: aipg(m.rates.inputPerMTokens),
                  output_per_m: aipg(m.rates.outputPerMTokens),
                  input_per_m_wei: m.rates.inputPerMTokens.toString(),
                  output_per_m_wei: m.rates.outputPerMTokens.toString(),
                },
          confidential_premium_bps: premium,
          workers_online: hub.onlineCount(m.id),
          ...(m.kind === 'image' ? { image: imageOffer(m.id, m.rates.perMegapixelStep) } : {}),
        },
      };
    });
  }

  app.get('/v1/models', async (c) => c.json({ object: 'list', data: await modelList() }));

  app.get('/v1/models/:model{.+}', async (c) => {
    const name = c.req.param('model');
    const m = (await modelList()).find(
      (x) => x.id === name || x.grid.model_id.toLowerCase() === name.toLowerCase(),
    );
    if (!m)
      throw new GatewayError('model_not_found', `the model "${name}" does not exist`, { param: 'model' });
    return c.json(m);
  });

  // ── audit ──────────────────────────────────────────────────────────────────────────────────
  app.get('/v1/audit/jobs/:id', async (c) => {
    await audit.authenticate({ method: c.req.method, path: c.req.path, header: (n) => c.req.header(n) });
    return c.json(await audit.evidence(c.req.param('id')));
  });

  app.get('/v1/audit/jobs/:id/images/:index{[0-9]}', async (c) => {
    await audit.authenticate({ method: c.req.method, path: c.req.path, header: (n) => c.req.header(n) });
    return c.json(await audit.imageEvidence(c.req.param('id'), Number(c.req.param('index'))));
  });

  // ── operations ─────────────────────────────────────────────────────────────────────────────
  metrics.addCollector(async () => {
    const byStatus = await storage.jobs.countByStatus().catch(() => ({}) as Record<string, number>);
    for (const status of ['queued', 'running', 'succeeded', 'failed'])
      metrics.jobsByStatus.set({ status }, byStatus[status] ?? 0);
    const batches = await storage.db
      .query<{ status: string; n: number }>('SELECT status, count(*)::int AS n FROM batches GROUP BY status')
      .catch(() => []);
    for (const status of ['pending', 'settled', 'failed']) {
      metrics.batchesByStatus.set({ status }, Number(batches.find((b) => b.status === status)?.n ?? 0));
    }
    metrics.unsettledReceipts.set(undefined, await storage.receipts.countUnsettled().catch(() => 0));
    metrics.workersOnline.set(undefined, hub.workers().length);
  });

  app.get('/metrics', async (c) =>
    c.text(await metrics.render(), 200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }),
  );

  app.get('/healthz', async (c) => {
    let db = 'ok';
    try {
      await storage.db.query('SELECT 1');
    } catch {
      db = 'down';
    }
    const healthy = db === 'ok' && !shutdown.isShuttingDown();
    return c.json(
      {
        status: healthy ? 'ok' : shutdown.isShuttingDown() ? 'shutting_down' : 'degraded',
        gateway: chain.gateway,
        chain_id: chain.chainId,
        grid: chain.grid,
        database: { kind: storage.db.kind, status: db },
        workers_online: hub.workers().length,
        jobs_in_flight: jobs.inFlight(),
      },
      healthy ? 200 : 503,
    );
  });

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
