import type { Context, Hono } from 'hono';
import type { Hex } from 'viem';
import { GatewayError } from '../../errors.ts';
import type { JobSpec } from '../../jobs/index.ts';
import {
  createChunker,
  gridInfo,
  renderCompletion,
  sealedChunkEvent,
  sealedTailEvent,
  usageOf,
} from '../../jobs/render.ts';
import type { JobRecord } from '../../storage/index.ts';
import type { Env, RouteDeps } from '../env.ts';
import { parseOr400 } from '../errors.ts';
import {
  chatCompletionRequest,
  chatSpec,
  completionRequest,
  completionSpec,
  confidentialChatRequest,
  confidentialSpec,
  isConfidentialBody,
} from '../schemas.ts';
import { openStream, sseResponse } from '../sse.ts';

/**
 * OpenAI's completions: `POST /v1/chat/completions` (plain or confidential, streamed or not) and
 * `POST /v1/completions`; and `GET /v1/attestation`, the attested workers confidential requests go to.
 */
export function registerCompletionRoutes(app: Hono<Env>, deps: RouteDeps): void {
  const {
    common,
    jobs,
    tee,
    chain,
    requireKey,
    anonymousLimit,
    idempotent,
    jsonBody,
    started,
    checkMaxTokens,
    jobIdHeaders,
  } = deps;
  const { options } = common;

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
    checkMaxTokens(spec);
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

  app.post('/v1/chat/completions', requireKey, idempotent, async (c) => {
    const body = await jsonBody(c);
    if (isConfidentialBody(body)) return runConfidential(c, body);
    const req = parseOr400(chatCompletionRequest, body);
    return runCompletion(c, chatSpec(req), req.stream === true);
  });

  app.post('/v1/completions', requireKey, idempotent, async (c) => {
    const req = parseOr400(completionRequest, await jsonBody(c));
    return runCompletion(c, completionSpec(req), req.stream === true);
  });
}
