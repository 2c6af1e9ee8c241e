import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createLogger, type StartGatewayReturnType, startGateway } from '../src/index.ts';
import {
  createApiKey,
  dropTestSchema,
  ensureTestTokenizerFile,
  MODEL,
  roles,
  startTestGrid,
  type TestGrid,
  testGatewayOptions,
} from './helpers/grid.ts';
import { ScriptedWorker } from './helpers/worker.ts';

// Whatever a client sends, its mistake is a 4xx in OpenAI's error shape, never a 5xx, never blamed on
// a worker; and no prompt text reaches the logs at any level. The gateway logs at `trace` here, into
// memory, and every request carries a marker string the logs must never contain.

const MARKER = 'zq-secret-prompt-7f3a';
let grid: TestGrid;
let gw: StartGatewayReturnType;
let key: string;
let worker: ScriptedWorker;
const logs: string[] = [];

beforeAll(async () => {
  grid = await startTestGrid();
  const options = testGatewayOptions(grid, {
    'rateLimit.requestsPerMinute': 1_000_000,
    'rateLimit.burst': 1_000_000,
    'rateLimit.anonymousRequestsPerMinute': 1_000_000,
    'rateLimit.payerRequestsPerMinute': 1_000_000,
    'rateLimit.payerBurst': 1_000_000,
  });
  await ensureTestTokenizerFile();
  gw = await startGateway(
    { ...options, log: { ...options.log, level: 'trace' } },
    { logger: createLogger('trace', { write: (line: string) => logs.push(line) }) },
  );
  key = await createApiKey(gw, roles.payer.privateKey);
  worker = new ScriptedWorker({
    url: gw.workerUrl,
    operatorKey: roles.operatorA.privateKey,
    owner: roles.workerA.address,
    models: [MODEL],
  });
  await worker.connect();
}, 120_000);

afterAll(async () => {
  await worker?.close();
  await gw?.stop();
  if (gw) await dropTestSchema(gw.common.options);
  await grid?.stop();
});

const post = (path: string, body: string, headers: Record<string, string> = {}) =>
  gw.app.request(path, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body,
  });

describe('text the gateway cannot tokenize or store', () => {
  const nul = `${MARKER} a\u0000b`;
  const highAlone = `${MARKER} \uD83D end`;
  const lowAlone = `${MARKER} \uDE00 end`;
  const cases: [string, Record<string, unknown>, string][] = [
    ['/v1/chat/completions', { messages: [{ role: 'user', content: nul }] }, 'messages.0.content'],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: highAlone }] }, 'messages.0.content'],
    [
      '/v1/chat/completions',
      {
        messages: [
          { role: 'system', content: lowAlone },
          { role: 'user', content: 'hi' },
        ],
      },
      'messages.0.content',
    ],
    [
      '/v1/chat/completions',
      { messages: [{ role: 'user', content: [{ type: 'text', text: nul }] }] },
      'messages.0.content',
    ],
    ['/v1/chat/completions', { messages: [{ role: 'user', content: 'hi' }], stop: highAlone }, 'stop'],
    ['/v1/completions', { prompt: nul }, 'prompt'],
    ['/v1/completions', { prompt: [lowAlone] }, 'prompt'],
  ];

  test.each(cases)('%s with %j: 400 naming the field, nothing dispatched', async (path, extra, param) => {
    const jobs = worker.jobs.length;
    const res = await post(path, JSON.stringify({ model: MODEL.name, max_tokens: 4, ...extra }));
    expect(res.status).toBe(400);
    const body = (await res.json()) as { error: { code: string; param: string | null; message: string } };
    expect(body.error.code).toBe('invalid_request');
    expect(body.error.param ?? '').toContain(param.split('.')[0]!);
    expect(body.error.message).toMatch(/NUL|surrogate/);
    expect(body.error.message).not.toContain(MARKER);
    expect(worker.jobs.length).toBe(jobs);
  });

  test('a well-formed pair (an emoji) is text like any other', async () => {
    const res = await post(
      '/v1/chat/completions',
      JSON.stringify({ model: MODEL.name, max_tokens: 4, messages: [{ role: 'user', content: 'hi 😀' }] }),
    );
    expect(res.status).toBe(200);
  });
});

describe('a fuzz of 10,000 malformed requests', () => {
  /** Deterministic pseudo-random numbers (mulberry32). */
  function prng(seed: number) {
    let a = seed >>> 0;
    return () => {
      a = (a + 0x6d2b79f5) >>> 0;
      let t = a;
      t = Math.imul(t ^ (t >>> 15), t | 1);
      t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
      return ((t ^ (t >>> 14)) >>> 0) / 4_294_967_296;
    };
  }
  const rand = prng(0xf022);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
  const weird: unknown[] = [
    null,
    true,
    -1,
    0,
    1.5,
    1e308,
    -1e308,
    Number.MAX_SAFE_INTEGER + 2,
    '',
    'x'.repeat(5_000),
    `${MARKER}\u0000`,
    `${MARKER}\uD800`,
    `${MARKER}\uDFFF`,
    '\u202e\u200b',
    [],
    [1, 2],
    {},
    { a: { b: { c: [] } } },
    '0x',
    '-0',
    'NaN',
    `${MARKER} {{ bos_token }} </s><|user|>`,
  ];
  const base = () => ({
    model: MODEL.name,
    max_tokens: 4,
    messages: [{ role: 'user', content: `${MARKER} hello` }],
    temperature: 0.7,
    top_p: 0.9,
    seed: 3,
    stop: ['\n'],
    stream: false,
    grid: { workers: [roles.workerA.address], max_price: { input_per_m: '10', output_per_m: '10' } },
  });
  const fields = [
    'model',
    'max_tokens',
    'messages',
    'temperature',
    'top_p',
    'seed',
    'stop',
    'stream',
    'grid',
    'n',
    'prompt',
    'logit_bias',
    'tools',
    'response_format',
    'stream_options',
    'user',
  ];

  function mutate(): { path: string; body: string; headers?: Record<string, string> } {
    const path = pick(['/v1/chat/completions', '/v1/completions', '/v1/jobs', '/v1/keys']);
    const r = rand();
    if (r < 0.1) {
      // not JSON, truncated JSON, or deep nesting
      const b = JSON.stringify(base());
      return {
        path,
        body: pick([
          b.slice(0, Math.floor(rand() * b.length)),
          `${b}}`,
          '[',
          '"',
          '\u0000',
          '{"a":'.repeat(500),
          `${MARKER}`,
        ]),
      };
    }
    const body: Record<string, unknown> = base();
    const n = 1 + Math.floor(rand() * 3);
    for (let i = 0; i < n; i++) {
      const f = pick(fields);
      const roll = rand();
      if (roll < 0.2) delete body[f];
      else if (roll < 0.7) body[f] = pick(weird);
      else if (f === 'messages')
        body.messages = [
          { role: pick(['user', 'system', 'tool', 'x', 1]), content: pick(weird), name: pick(weird) },
        ];
      else if (f === 'grid') body.grid = { workers: pick(weird), max_price: pick(weird) };
      else body[f] = [pick(weird)];
    }
    if (path === '/v1/jobs')
      return {
        path,
        body: JSON.stringify({
          type: pick(['chat.completion', 'x']),
          request: body,
          webhook_url: pick(weird),
        }),
      };
    return {
      path,
      body: JSON.stringify(body),
      headers: rand() < 0.1 ? { 'content-type': 'text/plain' } : {},
    };
  }

  test('no 5xx for any of them; every answer is an OpenAI-shaped error or a success', async () => {
    const statuses = new Map<number, number>();
    const fivexx: string[] = [];
    for (let i = 0; i < 10_000; i++) {
      const m = mutate();
      const res = await post(m.path, m.body, m.headers);
      statuses.set(res.status, (statuses.get(res.status) ?? 0) + 1);
      const text = await res.text();
      if (res.status >= 500)
        fivexx.push(`${res.status} ${m.path} ${m.body.slice(0, 200)} → ${text.slice(0, 200)}`);
      else if (res.status >= 400) {
        const e = JSON.parse(text) as { error?: { message?: unknown; type?: unknown; code?: unknown } };
        expect(typeof e.error?.message).toBe('string');
        expect(typeof e.error?.type).toBe('string');
      }
    }
    console.log(
      `fuzz: ${[...statuses]
        .sort((a, b) => a[0] - b[0])
        .map(([s, n]) => `${s}×${n}`)
        .join(', ')}`,
    );
    expect(fivexx).toEqual([]);
    // some were well-formed enough to be served, most were refused
    expect(statuses.get(400) ?? 0).toBeGreaterThan(1_000);
  }, 600_000);

  test('no prompt text in the logs, at any level', () => {
    expect(logs.length).toBeGreaterThan(0);
    expect(logs.filter((l) => l.includes(MARKER))).toEqual([]);
  });
});
