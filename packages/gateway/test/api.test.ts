import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { CANONICAL_SAMPLER, receiptFromJson, verifyReceiptProof } from '@aipg/core';
import { type Hex, recoverMessageAddress } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import {
  AUDIT_HEADERS,
  apiKeyMessage,
  auditRequestMessage,
  createLogger,
  type StartGatewayReturnType,
  startGateway,
} from '../src/index.ts';
import {
  createApiKey,
  dropTestSchema,
  loadTestTokenizer,
  MODEL,
  MODEL_ID,
  roles,
  startTestGrid,
  type TestGrid,
  testGatewayOptions,
} from './helpers/grid.ts';
import { defaultTokens, ScriptedWorker } from './helpers/worker.ts';

let grid: TestGrid;
let gw: StartGatewayReturnType;
let worker: ScriptedWorker;
let key: string;
const logLines: string[] = [];

beforeAll(async () => {
  grid = await startTestGrid();
  const options = testGatewayOptions(grid, {
    'webhooks.retryBaseMs': 50,
    // The webhook receiver below listens on 127.0.0.1: a devnet-only allowance (refused by default).
    'webhooks.allowPrivate': true,
    logLevel: 'debug',
    'rateLimit.anonymousRequestsPerMinute': 600,
  });
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  gw = await startGateway(options, { logger: createLogger('debug', sink) });
  worker = new ScriptedWorker({
    url: gw.workerUrl,
    operatorKey: roles.operatorA.privateKey,
    owner: roles.workerA.address,
    models: [MODEL],
  });
  await worker.connect();
  key = await createApiKey(gw, roles.payer.privateKey);
});

afterAll(async () => {
  await worker?.close();
  const options = gw?.common.options;
  await gw?.stop();
  if (options) await dropTestSchema(options);
  await grid?.stop();
});

const chatBody = (extra: Record<string, unknown> = {}) =>
  JSON.stringify({
    model: MODEL.name,
    messages: [{ role: 'user', content: 'Say hello' }],
    max_tokens: 8,
    ...extra,
  });

function post(path: string, body: string, headers: Record<string, string> = {}) {
  return gw.app.request(path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body,
  });
}

async function expectError(res: Response, status: number, code: string, param?: string | null) {
  const body = (await res.json()) as {
    error: { message: string; type: string; param: string | null; code: string };
  };
  expect({ status: res.status, code: body.error?.code }).toEqual({ status, code });
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  expect(typeof body.error.message).toBe('string');
  if (param !== undefined) expect(body.error.param).toBe(param);
  return body.error;
}

describe('models', () => {
  test('GET /v1/models lists the registry with rates and workers online', async () => {
    const res = await gw.app.request('/v1/models');
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      object: string;
      data: { id: string; object: string; grid: Record<string, unknown> }[];
    };
    expect(body.object).toBe('list');
    const m = body.data.find((d) => d.id === MODEL.name);
    expect(m?.object).toBe('model');
    expect(m?.grid).toMatchObject({
      model_id: MODEL_ID,
      weights_hash: MODEL.weightsHash,
      rates: { input_per_m: '1', output_per_m: '2', input_per_m_wei: MODEL.rates.inputPerMTokens.toString() },
      confidential_premium_bps: 2500,
      workers_online: 1,
    });
    expect((await gw.app.request(`/v1/models/${MODEL.name}`)).status).toBe(200);
    await expectError(await gw.app.request('/v1/models/nope'), 404, 'model_not_found');
  });
});

describe('validation and error shapes', () => {
  test.each([
    ['invalid JSON', '{"model":', 400, 'invalid_json', null],
    ['an empty body', '', 400, 'invalid_json', null],
    ['no messages', JSON.stringify({ model: MODEL.name }), 400, 'invalid_request', 'messages'],
    [
      'empty messages',
      JSON.stringify({ model: MODEL.name, messages: [] }),
      400,
      'invalid_request',
      'messages',
    ],
    [
      'a tool role',
      chatBody({ messages: [{ role: 'tool', content: 'x' }] }),
      400,
      'invalid_request',
      'messages.0.role',
    ],
    ['n = 2', chatBody({ n: 2 }), 400, 'unsupported_parameter', 'n'],
    ['tools', chatBody({ tools: [{ type: 'function' }] }), 400, 'unsupported_parameter', 'tools'],
    ['temperature 3', chatBody({ temperature: 3 }), 400, 'invalid_request', 'temperature'],
    ['top_p 0', chatBody({ top_p: 0 }), 400, 'invalid_request', 'top_p'],
    ['a negative seed', chatBody({ seed: -1 }), 400, 'invalid_request', 'seed'],
    ['five stop sequences', chatBody({ stop: ['a', 'b', 'c', 'd', 'e'] }), 400, 'invalid_request', 'stop'],
    ['max_tokens 0', chatBody({ max_tokens: 0 }), 400, 'invalid_request', 'max_tokens'],
    [
      'max_tokens above the limit',
      chatBody({ max_tokens: 10_000_000 }),
      400,
      'invalid_request',
      'max_tokens',
    ],
    [
      'a bad pinned worker',
      chatBody({ grid: { workers: ['nope'] } }),
      400,
      'invalid_request',
      'grid.workers.0',
    ],
    ['an unknown grid field', chatBody({ grid: { speed: 'max' } }), 400, 'invalid_request', 'grid'],
    [
      'a non-string model',
      JSON.stringify({ model: 5, messages: [{ role: 'user', content: 'x' }] }),
      400,
      'invalid_request',
      'model',
    ],
    ['an array body', '[]', 400, 'invalid_request', null],
  ])('chat with %s → %i %s', async (_name, body, status, code, param) => {
    await expectError(await post('/v1/chat/completions', body), status, code, param);
  });

  test('completions validate too', async () => {
    await expectError(
      await post('/v1/completions', JSON.stringify({ model: MODEL.name })),
      400,
      'invalid_request',
      'prompt',
    );
    await expectError(
      await post('/v1/completions', JSON.stringify({ model: MODEL.name, prompt: 'x', echo: true })),
      400,
      'unsupported_parameter',
      'echo',
    );
  });

  test('401 without a key or with a bad one', async () => {
    const res = await gw.app.request('/v1/chat/completions', { method: 'POST', body: chatBody() });
    await expectError(res, 401, 'missing_api_key');
    await expectError(
      await post('/v1/chat/completions', chatBody(), { authorization: 'Bearer sk-nope' }),
      401,
      'invalid_api_key',
    );
    const fake = key.replace(/.$/, key.endsWith('A') ? 'B' : 'A');
    await expectError(
      await post('/v1/chat/completions', chatBody(), { authorization: `Bearer ${fake}` }),
      401,
      'invalid_api_key',
    );
  });

  test('404 for an unknown model and an unknown route', async () => {
    await expectError(
      await post('/v1/chat/completions', chatBody({ model: 'gpt-9' })),
      404,
      'model_not_found',
      'model',
    );
    await expectError(await gw.app.request('/v1/nothing'), 404, 'not_found');
  });

  test('413 for a body over the limit', async () => {
    const big = chatBody({ messages: [{ role: 'user', content: 'x'.repeat(1024 * 1024 + 10) }] });
    await expectError(await post('/v1/chat/completions', big), 413, 'body_too_large');
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: big,
    });
    await expectError(res, 413, 'body_too_large');
    // Sent in chunks, without a length: counted as it is read. A small chunked body is read as usual.
    const chunked = (text: string) =>
      fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: new ReadableStream({
          start(c) {
            for (let i = 0; i < text.length; i += 65_536)
              c.enqueue(new TextEncoder().encode(text.slice(i, i + 65_536)));
            c.close();
          },
        }),
        duplex: 'half',
      } as RequestInit);
    await expectError(await chunked(big), 413, 'body_too_large');
    const ok = await chunked(chatBody());
    expect(ok.status).toBe(200);
    expect(((await ok.json()) as { object: string }).object).toBe('chat.completion');
  });

  test('402 when the payer cannot cover the maximum fee, before any work', async () => {
    const poorKey = await createApiKey(gw, roles.poorPayer.privateKey);
    const jobsBefore = worker.jobs.length;
    const e = await expectError(
      await post('/v1/chat/completions', chatBody(), { authorization: `Bearer ${poorKey}` }),
      402,
      'insufficient_balance',
    );
    expect(e.message).toMatch(/may cost up to/);
    expect(worker.jobs.length).toBe(jobsBefore);
  });

  test('503 when no worker fits the pin; 400 (the client is to fix it) below the rate card', async () => {
    await expectError(
      await post('/v1/chat/completions', chatBody({ grid: { workers: [roles.workerB.address] } })),
      503,
      'no_worker_available',
      'grid.workers',
    );
    const jobsBefore = worker.jobs.length;
    const e = await expectError(
      await post(
        '/v1/chat/completions',
        chatBody({ grid: { max_price: { input_per_m: '0.5', output_per_m: '10' } } }),
      ),
      400,
      'max_price_too_low',
      'grid.max_price',
    );
    expect(e.message).toMatch(/rate card/);
    expect(worker.jobs.length).toBe(jobsBefore);
  });

  test("prompt + max_tokens beyond the model's context: 400 before dispatch, never a worker failure", async () => {
    const jobsBefore = worker.jobs.length;
    const statsBefore = gw.workerStats(roles.workerA.address);
    // the test model's context (its tokenizer file's llama.context_length)
    const context = 2048;
    const e = await expectError(
      await post('/v1/chat/completions', chatBody({ max_tokens: context })),
      400,
      'context_length_exceeded',
      'messages',
    );
    expect(e.message).toMatch(new RegExp(`maximum context length is ${context} tokens`));
    const c = await expectError(
      await post(
        '/v1/completions',
        JSON.stringify({ model: MODEL.name, prompt: 'hello', max_tokens: context }),
      ),
      400,
      'context_length_exceeded',
      'prompt',
    );
    expect(c.message).toMatch(/in the prompt/);
    expect(worker.jobs.length).toBe(jobsBefore);
    expect(gw.workerStats(roles.workerA.address)).toEqual(statsBefore);
    // just fitting is served
    const fits = await post('/v1/chat/completions', chatBody({ max_tokens: 16 }));
    expect(fits.status).toBe(200);
  });

  test('no max_tokens with a long prompt: the default leaves room for the prompt instead of failing', async () => {
    const tokenizer = await loadTestTokenizer();
    const context = 2048;
    // a prompt ~1,800 tokens long: the 512-token default would not fit
    let n = 100;
    const messages = (k: number) => [{ role: 'user' as const, content: 'grid '.repeat(k) }];
    while (tokenizer.chatPromptTokenIds(messages(n)).length < 1_800) n += 50;
    const promptLength = tokenizer.chatPromptTokenIds(messages(n)).length;
    expect(promptLength + 512).toBeGreaterThan(context);
    const res = await post(
      '/v1/chat/completions',
      JSON.stringify({ model: MODEL.name, messages: messages(n) }),
    );
    expect(res.status).toBe(200);
    expect(worker.jobs.at(-1)!.params.maxTokens).toBe(context - promptLength);
  });

  test('429 with retry-after once a rate limit is spent', async () => {
    let last: Response | undefined;
    for (let i = 0; i < 40; i++) {
      last = await gw.app.request('/v1/keys', { method: 'POST', body: '{}' });
      if (last.status === 429) break;
    }
    expect(last?.headers.get('retry-after')).toMatch(/^\d+$/);
    await expectError(last!, 429, 'rate_limit_exceeded');
  });
});

describe('API keys', () => {
  const payer = privateKeyToAccount(roles.payer.privateKey);
  const message = (over: Partial<Parameters<typeof apiKeyMessage>[0]> = {}) =>
    apiKeyMessage({
      gateway: gw.gateway,
      chainId: gw.chainId,
      payer: payer.address,
      nonce: randomBytes(8).toString('hex'),
      expires: new Date(Date.now() + 300_000),
      ...over,
    });
  const create = async (m: string, signature?: Hex) =>
    fetch(`${gw.url}/v1/keys`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({
        payer: payer.address,
        message: m,
        signature: signature ?? (await payer.signMessage({ message: m })),
      }),
    });

  test('a signed message creates a key shown once; the exact same request is refused (single use)', async () => {
    const m = message({ name: 'ci' });
    const signature = await payer.signMessage({ message: m });
    const first = await create(m, signature);
    expect(first.status).toBe(201);
    const body = (await first.json()) as { key: string; id: string; payer: string; name: string };
    expect(body.key).toMatch(/^aipg-k/);
    expect(body.payer).toBe(payer.address);
    expect(body.name).toBe('ci');
    const again = await create(m, signature);
    await expectError(again, 409, 'nonce_already_used');
    // The key works, is listed (without its secret), and stops working once revoked.
    const list = await gw.app.request('/v1/keys', { headers: { authorization: `Bearer ${body.key}` } });
    const listed = (await list.json()) as { data: { id: string }[] };
    expect(listed.data.some((k) => k.id === body.id)).toBe(true);
    expect(JSON.stringify(listed)).not.toContain(body.key);
    const del = await gw.app.request(`/v1/keys/${body.id}`, {
      method: 'DELETE',
      headers: { authorization: `Bearer ${body.key}` },
    });
    expect(del.status).toBe(200);
    await expectError(
      await gw.app.request('/v1/balance', { headers: { authorization: `Bearer ${body.key}` } }),
      401,
      'invalid_api_key',
    );
  });

  test('refused: bad signature, another gateway, another chain, expired, too far ahead, reused nonce', async () => {
    const m = message();
    const other = privateKeyToAccount(roles.poorPayer.privateKey);
    await expectError(
      await create(m, await other.signMessage({ message: m })),
      400,
      'invalid_signature',
      'signature',
    );
    await expectError(
      await create(message({ gateway: roles.payer.address })),
      400,
      'invalid_request',
      'message',
    );
    await expectError(await create(message({ chainId: 1 })), 400, 'invalid_request', 'message');
    await expectError(
      await create(message({ expires: new Date(Date.now() - 1000) })),
      400,
      'invalid_request',
      'message',
    );
    await expectError(
      await create(message({ expires: new Date(Date.now() + 86_400_000 * 2) })),
      400,
      'invalid_request',
      'message',
    );
    const nonce = randomBytes(8).toString('hex');
    expect((await create(message({ nonce }))).status).toBe(201);
    await expectError(await create(message({ nonce, name: 'other' })), 409, 'nonce_already_used');
  });
});

describe('completions, balance, idempotency', () => {
  test('a chat completion returns usage and grid, and holds its fee until settlement', async () => {
    const before = (await (
      await gw.app.request('/v1/balance', { headers: { authorization: `Bearer ${key}` } })
    ).json()) as {
      available: { wei: string };
      unsettled: { wei: string };
    };
    const res = await post('/v1/chat/completions', chatBody({ temperature: 0, seed: 3, stop: 'zz' }));
    expect(res.status).toBe(200);
    const body = (await res.json()) as {
      usage: { prompt_tokens: number; completion_tokens: number };
      grid: { fee_wei: string; worker: string; receipt_signature: string; job_id: string };
    };
    expect(body.usage.completion_tokens).toBe(6);
    expect(body.grid.worker).toBe(roles.workerA.address);
    expect(body.grid.receipt_signature).toMatch(/^0x[0-9a-f]{130}$/);
    const job = worker.jobs.at(-1)!;
    expect(job.params).toEqual({ maxTokens: 8, temperature: 0, topP: 1, seed: 3, stop: ['zz'] });
    const after = (await (
      await gw.app.request('/v1/balance', { headers: { authorization: `Bearer ${key}` } })
    ).json()) as {
      available: { wei: string };
      unsettled: { wei: string };
    };
    expect(BigInt(after.unsettled.wei) - BigInt(before.unsettled.wei)).toBe(BigInt(body.grid.fee_wei));
    expect(BigInt(before.available.wei) - BigInt(after.available.wei)).toBe(BigInt(body.grid.fee_wei));
  });

  test('a retried request with an Idempotency-Key returns the first response, run and charged once', async () => {
    const idem = `idem-${randomBytes(6).toString('hex')}`;
    const n = worker.jobs.length;
    const first = await post('/v1/chat/completions', chatBody(), { 'idempotency-key': idem });
    const second = await post('/v1/chat/completions', chatBody(), { 'idempotency-key': idem });
    expect(first.status).toBe(200);
    expect(second.status).toBe(200);
    expect(second.headers.get('idempotent-replayed')).toBe('true');
    expect(await second.text()).toBe(await first.text());
    expect(worker.jobs.length).toBe(n + 1);
    await expectError(
      await post('/v1/chat/completions', chatBody({ max_tokens: 3 }), { 'idempotency-key': idem }),
      422,
      'idempotency_key_reused',
    );
  });

  test('concurrent duplicates run once', async () => {
    const idem = `idem-${randomBytes(6).toString('hex')}`;
    const n = worker.jobs.length;
    const slow = new ScriptedWorker({
      url: gw.workerUrl,
      operatorKey: roles.operatorB.privateKey,
      owner: roles.workerB.address,
      models: [MODEL],
    });
    await slow.connect();
    try {
      const responses = await Promise.all(
        Array.from({ length: 4 }, () =>
          post('/v1/chat/completions', chatBody({ grid: { workers: [roles.workerA.address] } }), {
            'idempotency-key': idem,
          }),
        ),
      );
      const bodies = await Promise.all(responses.map((r) => r.json() as Promise<{ id: string }>));
      expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(new Set(bodies.map((b) => b.id)).size).toBe(1);
      expect(worker.jobs.length + slow.jobs.length).toBe(n + 1);
    } finally {
      await slow.close();
    }
  });

  test('a streamed request replays as a stream', async () => {
    const idem = `idem-${randomBytes(6).toString('hex')}`;
    const first = await (
      await post('/v1/chat/completions', chatBody({ stream: true }), { 'idempotency-key': idem })
    ).text();
    const again = await post('/v1/chat/completions', chatBody({ stream: true }), { 'idempotency-key': idem });
    expect(again.headers.get('content-type')).toMatch(/text\/event-stream/);
    const text = await again.text();
    const content = (s: string) =>
      s
        .split('\n\n')
        .filter((l) => l.startsWith('data: {'))
        .map((l) => JSON.parse(l.slice(6)) as { choices: { delta?: { content?: string } }[] })
        .map((c) => c.choices[0]?.delta?.content ?? '')
        .join('');
    expect(content(text)).toBe(content(first));
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
  });
});

describe('async jobs and webhooks', () => {
  let server: Server;
  const received: { body: string; signature: string; gateway: string }[] = [];
  let failFirst = true;

  beforeAll(async () => {
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', () => {
        if (failFirst) {
          failFirst = false;
          res.writeHead(500).end();
          return;
        }
        received.push({
          body,
          signature: String(req.headers['x-aipg-signature']),
          gateway: String(req.headers['x-aipg-gateway']),
        });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  });
  afterAll(async () => {
    await new Promise<void>((r) => server.close(() => r()));
  });

  test('POST /v1/jobs answers 202, runs in the background, GET shows the result, the webhook is retried and signed', async () => {
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    const res = await post(
      '/v1/jobs',
      JSON.stringify({ type: 'chat.completion', request: JSON.parse(chatBody()), webhook_url: url }),
    );
    expect(res.status).toBe(202);
    const submitted = (await res.json()) as { id: string; status: string; object: string };
    expect(submitted.object).toBe('job');
    let job:
      | {
          status: string;
          result: { choices: { message: { content: string } }[]; grid: { job_id: string } } | null;
        }
      | undefined;
    for (let i = 0; i < 100; i++) {
      const r = await gw.app.request(`/v1/jobs/${submitted.id}`, {
        headers: { authorization: `Bearer ${key}` },
      });
      job = (await r.json()) as typeof job;
      if (job?.status === 'succeeded' || job?.status === 'failed') break;
      await new Promise((r) => setTimeout(r, 50));
    }
    expect(job?.status).toBe('succeeded');
    expect(job?.result?.choices[0]?.message.content).toBe('the grid serves you.');
    expect(job?.result?.grid.job_id).toBe(submitted.id);
    for (let i = 0; i < 100 && received.length === 0; i++) await new Promise((r) => setTimeout(r, 50));
    expect(received.length).toBe(1);
    const hook = received[0]!;
    expect((JSON.parse(hook.body) as { id: string }).id).toBe(submitted.id);
    expect(await recoverMessageAddress({ message: hook.body, signature: hook.signature as Hex })).toBe(
      gw.gateway,
    );
    // The delivery is recorded just after the receiver answered.
    let webhook: { status: string; attempts: number } | undefined;
    for (let i = 0; i < 50 && webhook?.status !== 'delivered'; i++) {
      const r = await gw.app.request(`/v1/jobs/${submitted.id}`, {
        headers: { authorization: `Bearer ${key}` },
      });
      webhook = ((await r.json()) as { webhook: typeof webhook }).webhook;
      if (webhook?.status !== 'delivered') await new Promise((r) => setTimeout(r, 20));
    }
    expect(webhook).toMatchObject({ status: 'delivered', attempts: 2 });
  });

  test('async requests are validated at submit; other payers cannot read a job', async () => {
    await expectError(
      await post('/v1/jobs', JSON.stringify({ type: 'chat.completion', request: { model: MODEL.name } })),
      400,
      'invalid_request',
      'request.messages',
    );
    await expectError(
      await post(
        '/v1/jobs',
        JSON.stringify({ type: 'completion', request: { model: MODEL.name, prompt: 'x', stream: true } }),
      ),
      400,
      'invalid_request',
      'request.stream',
    );
    await expectError(
      await post('/v1/jobs', JSON.stringify({ type: 'image', request: {} })),
      400,
      'invalid_request',
      'type',
    );
    const res = await post(
      '/v1/jobs',
      JSON.stringify({ type: 'completion', request: { model: MODEL.name, prompt: 'x', max_tokens: 2 } }),
    );
    const { id } = (await res.json()) as { id: string };
    const otherKey = await createApiKey(gw, roles.poorPayer.privateKey);
    await expectError(
      await gw.app.request(`/v1/jobs/${id}`, { headers: { authorization: `Bearer ${otherKey}` } }),
      404,
      'job_not_found',
    );
  });
});

describe('audit API', () => {
  const validator = privateKeyToAccount(roles.validatorOperator.privateKey);
  async function signed(path: string, account = validator, timestamp = Math.floor(Date.now() / 1000)) {
    const signature = await account.signMessage({
      message: auditRequestMessage({ method: 'GET', path, timestamp, gateway: gw.gateway }),
    });
    return {
      [AUDIT_HEADERS.validator]: account.address,
      [AUDIT_HEADERS.timestamp]: String(timestamp),
      [AUDIT_HEADERS.signature]: signature,
    };
  }

  test('a bonded validator gets the job, its token ids, receipt, batch root and a valid proof', async () => {
    const res = await post(
      '/v1/completions',
      JSON.stringify({ model: MODEL.name, prompt: 'audit me', max_tokens: 4, seed: 1 }),
    );
    const { grid: info } = (await res.json()) as { grid: { job_id: string } };
    await gw.settleNow();
    const path = `/v1/audit/jobs/${info.job_id}`;
    const headers = await signed(path);
    const audit = await gw.app.request(path, { headers });
    expect(audit.status).toBe(200);
    const body = (await audit.json()) as {
      prompt_token_ids: number[];
      output_token_ids: number[];
      output_text: string;
      sampler: string;
      request: { params: { maxTokens: number; seed: number } };
      receipt: Parameters<typeof receiptFromJson>[0];
      signature: string;
      batch: { root: Hex; proof: Hex[]; status: string };
    };
    // The evidence is what the gateway tokenized, what the worker signed, and what the user received.
    expect(body.prompt_token_ids).toEqual((await loadTestTokenizer()).promptTokenIds('audit me'));
    expect(body.output_token_ids).toEqual(defaultTokens.slice(0, 4));
    expect(body.output_text).toBe('the grid serves you');
    expect(body.sampler).toBe(CANONICAL_SAMPLER);
    expect(body.request.params).toMatchObject({ maxTokens: 4, seed: 1 });
    expect(body.batch.status).toBe('settled');
    expect(verifyReceiptProof(body.batch.root, receiptFromJson(body.receipt), body.batch.proof)).toBe(true);
    // The same signed request cannot be replayed.
    await expectError(await gw.app.request(path, { headers }), 401, 'invalid_validator_signature');
  });

  test('unsigned, stale, forged or non-validator requests are refused', async () => {
    const path = `/v1/audit/jobs/0x${'00'.repeat(32)}`;
    await expectError(await gw.app.request(path), 401, 'invalid_validator_signature');
    await expectError(
      await gw.app.request(path, {
        headers: await signed(path, validator, Math.floor(Date.now() / 1000) - 3600),
      }),
      401,
      'invalid_validator_signature',
    );
    const forged = { ...(await signed(path)), [AUDIT_HEADERS.validator]: roles.payer.address };
    await expectError(await gw.app.request(path, { headers: forged }), 401, 'invalid_validator_signature');
    const payer = privateKeyToAccount(roles.payer.privateKey);
    await expectError(
      await gw.app.request(path, { headers: await signed(path, payer) }),
      403,
      'not_a_validator',
    );
    await expectError(await gw.app.request(path, { headers: await signed(path) }), 404, 'job_not_found');
  });
});

describe('operations', () => {
  test('/healthz and /metrics', async () => {
    const h = await gw.app.request('/healthz');
    expect(h.status).toBe(200);
    expect(await h.json()).toMatchObject({ status: 'ok', gateway: gw.gateway, workers_online: 1 });
    const m = await (await gw.app.request('/metrics')).text();
    expect(m).toContain('aipg_gateway_http_requests_total');
    expect(m).toMatch(/aipg_gateway_jobs_by_status\{status="succeeded"\} [1-9]/);
    expect(m).toContain('aipg_gateway_workers_online 1');
    expect(m).toContain('aipg_gateway_http_request_duration_seconds_bucket');
    expect(m).toMatch(/aipg_gateway_settlement_batches_total\{status="settled"\} [1-9]/);
  });

  test("a flood of /metrics (it takes no key) reads the database's figures once per interval, not once per scrape", async () => {
    const scans = (spy: { mock: { calls: unknown[][] } }) =>
      spy.mock.calls.filter(([text]) => String(text).includes('FROM jobs GROUP BY status')).length;
    await gw.app.request('/metrics');
    const spy = vi.spyOn(gw.db, 'query');
    try {
      const all = await Promise.all(Array.from({ length: 50 }, () => gw.app.request('/metrics')));
      expect(all.every((r) => r.status === 200)).toBe(true);
      // The interval is 5 s: a very slow machine may cross one boundary during the flood, never more.
      expect(scans(spy)).toBeLessThanOrEqual(1);
      // Once the interval has passed, the next scrape reads them afresh (the clock moved, not waited for).
      vi.useFakeTimers({ toFake: ['Date'], now: Date.now() + 6_000 });
      const before = scans(spy);
      expect((await gw.app.request('/metrics')).status).toBe(200);
      expect(scans(spy)).toBe(before + 1);
    } finally {
      vi.useRealTimers();
      spy.mockRestore();
    }
  });

  test('logs never hold API keys, bearer headers or signatures', () => {
    const all = logLines.join('');
    expect(all.length).toBeGreaterThan(0);
    expect(all).not.toContain(key);
    expect(all).not.toMatch(/Bearer /);
    const logger = createLogger(
      'info',
      new Writable({
        write(c, _e, cb) {
          logLines.push(c.toString());
          cb();
        },
      }),
    );
    logger.info({ msg: 'x', headers: { authorization: 'Bearer secret' }, signature: '0xdead' });
    expect(logLines.at(-1)).toContain('[redacted]');
    expect(logLines.at(-1)).not.toContain('secret');
    expect(logLines.at(-1)).not.toContain('0xdead');
  });
});
