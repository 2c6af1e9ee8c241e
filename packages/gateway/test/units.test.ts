import {
  CANONICAL_SAMPLER,
  computeOutputHash,
  computeRequestHash,
  computeTextFee,
  type Receipt,
  type ResultMessage,
  receiptToJson,
  receiptTypedData,
} from '@aipg/core';
import { OutputText, type Tokenizer } from '@aipg/inference';
import type { Address, Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { beforeAll, describe, expect, test } from 'vitest';
import { deriveApiKey, hashApiKey, looksLikeApiKey, newKeyId } from '../src/auth/keys.ts';
import { createRateLimiter } from '../src/auth/rate-limit.ts';
import { parseFlags } from '../src/bin/flags.ts';
import {
  aggregate,
  apiKeyMessage,
  ConfigError,
  createGatewayOptions,
  createMetrics,
  createRouting,
  GatewayError,
  loadGatewayOptions,
  maxFee,
  parseApiKeyMessage,
  type ReceiptExpectation,
  verifyResult,
} from '../src/index.ts';
import { createOutputStream, renderOutput } from '../src/jobs/output.ts';
import type { StoredReceipt } from '../src/storage/index.ts';
import { loadTestTokenizer } from './helpers/grid.ts';
import { EOS, WORD } from './helpers/worker.ts';

// anvil's PUBLIC test key #5 (test only).
const operatorKey = '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba' as Hex;
const operator = privateKeyToAccount(operatorKey);

describe('createGatewayOptions', () => {
  const required = {
    rpcUrl: 'http://127.0.0.1:8545',
    grid: '0x0000000000000000000000000000000000000001',
    privateKey: `0x${'11'.repeat(32)}`,
  };

  test('flags beat environment beat defaults', () => {
    const o = createGatewayOptions(
      { ...required, port: '9000' },
      { AIPG_GATEWAY_PORT: '7000', AIPG_GATEWAY_HOST: '0.0.0.0' },
    );
    expect(o.port).toBe(9000);
    expect(o.host).toBe('0.0.0.0');
    expect(o.database.dir).toBe('.aipg/gateway-db');
    expect(o.http.bodyLimitBytes).toBe(1024 * 1024);
    expect(o.gateway).toBe(privateKeyToAccount(required.privateKey as Hex).address);
  });

  test('environment only, nested options by dotted flags', () => {
    const o = createGatewayOptions(
      { 'settlement.intervalMs': 5000, 'settlement.enabled': 'false' },
      {
        AIPG_RPC_URL: required.rpcUrl,
        AIPG_GRID_ADDRESS: required.grid,
        AIPG_GATEWAY_PRIVATE_KEY: required.privateKey,
        DATABASE_URL: 'postgres://u@h/db',
      },
    );
    expect(o.settlement.intervalMs).toBe(5000);
    expect(o.settlement.enabled).toBe(false);
    expect(o.database.url).toBe('postgres://u@h/db');
    expect(o.grid).toBe(required.grid);
    // The earlier names still work, each with a one-line deprecation notice.
    expect(o.deprecations).toEqual([
      'AIPG_GRID_ADDRESS is deprecated: rename it AIPG_GRID',
      'AIPG_GATEWAY_PRIVATE_KEY is deprecated: rename it AIPG_OPERATOR_KEY',
    ]);
  });

  test('invalid and missing values name the variable', () => {
    expect(() => createGatewayOptions({ port: 'x' }, {})).toThrow(ConfigError);
    try {
      createGatewayOptions({ ...required, privateKey: '0x12' }, {});
    } catch (e) {
      expect((e as ConfigError).details).toContain('AIPG_OPERATOR_KEY');
    }
  });

  test('the gateway key from a keystore (the entry point’s loadGatewayOptions), a metrics port', async () => {
    const { encryptKeystore } = await import('@aipg/chain');
    const { mkdtemp, rm, writeFile } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const dir = await mkdtemp(join(tmpdir(), 'aipg-gateway-keystore-'));
    try {
      const keystore = join(dir, 'gateway.json');
      await writeFile(keystore, JSON.stringify(await encryptKeystore(operatorKey, 'pw', { n: 1024 })));
      const env = {
        AIPG_RPC_URL: required.rpcUrl,
        AIPG_GRID_ADDRESS: required.grid,
        AIPG_KEYSTORE: keystore,
        AIPG_KEYSTORE_PASSWORD: 'pw',
        AIPG_METRICS_PORT: '9466',
      };
      const o = await loadGatewayOptions({}, env);
      expect(o.privateKey).toBe(operatorKey);
      expect(o.gateway).toBe(operator.address);
      expect(o.metrics).toEqual({ port: 9466, host: '127.0.0.1' });
      expect(o.deprecations).toEqual(['AIPG_GRID_ADDRESS is deprecated: rename it AIPG_GRID']);
      // The synchronous builder cannot decrypt: it says which to use instead of "required".
      expect(() => createGatewayOptions({}, env)).toThrow(ConfigError);
      await expect(loadGatewayOptions({}, { ...env, AIPG_KEYSTORE_PASSWORD: undefined })).rejects.toThrow(
        'the keystore needs a password: set AIPG_KEYSTORE_PASSWORD or pass --password-file',
      );
      expect(() => createGatewayOptions(required, { AIPG_METRICS_PORT: 'x' })).toThrow(ConfigError);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('CLI flags parse kebab-case, inline values and --set', () => {
    expect(parseFlags(['--rpc-url', 'http://x', '--port=0', '--set', 'jobs.maxAttempts=2'])).toEqual({
      rpcUrl: 'http://x',
      port: '0',
      'jobs.maxAttempts': '2',
    });
    expect(() => parseFlags(['--port'])).toThrow(ConfigError);
  });
});

describe('API key messages and keys', () => {
  const m = {
    gateway: '0xa0Ee7A142d267C1f36714E4a8F75612F20a79720' as Address,
    chainId: 31337,
    payer: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' as Address,
    nonce: 'abcdef0123',
    name: 'laptop',
    expires: new Date('2030-01-01T00:00:00Z'),
  };

  test('format and parse round-trip', () => {
    const text = apiKeyMessage(m);
    expect(text).toBe(
      [
        'AIPG gateway API key',
        'gateway: 0xa0Ee7A142d267C1f36714E4a8F75612F20a79720',
        'chain: 31337',
        'payer: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
        'name: laptop',
        'nonce: abcdef0123',
        'expires: 2030-01-01T00:00:00Z',
      ].join('\n'),
    );
    expect(parseApiKeyMessage(text)).toEqual(m);
  });

  test('malformed messages are explained', () => {
    expect(parseApiKeyMessage('hello')).toMatch(/first line/);
    expect(parseApiKeyMessage(apiKeyMessage(m).replace('nonce: abcdef0123', 'nonce: x'))).toMatch(/nonce/);
    expect(parseApiKeyMessage(`${apiKeyMessage(m)}\nextra: 1`)).toMatch(/unknown field/);
    expect(parseApiKeyMessage(apiKeyMessage(m).replace(/\nchain: 31337/, ''))).toMatch(
      /missing field "chain"/,
    );
  });

  test('keys are derived, recognisable, and only their hash is needed', () => {
    const id = newKeyId();
    const key = deriveApiKey(`0x${'22'.repeat(32)}`, id);
    expect(looksLikeApiKey(key)).toBe(true);
    expect(deriveApiKey(`0x${'22'.repeat(32)}`, id)).toBe(key);
    expect(deriveApiKey(`0x${'23'.repeat(32)}`, id)).not.toBe(key);
    expect(hashApiKey(key)).toMatch(/^[0-9a-f]{64}$/);
    expect(looksLikeApiKey('sk-openai')).toBe(false);
  });
});

test('token bucket: burst, then refill at the configured rate', () => {
  const rl = createRateLimiter({ perMinute: 60, burst: 2 });
  expect(rl.take('k', 0).ok).toBe(true);
  expect(rl.take('k', 0).ok).toBe(true);
  const refused = rl.take('k', 0);
  expect(refused.ok).toBe(false);
  expect(refused.retryAfterMs).toBe(1000);
  expect(rl.take('k', 1000).ok).toBe(true);
  expect(rl.take('other', 0).ok).toBe(true);
});

test('metrics render Prometheus text', async () => {
  const m = createMetrics();
  m.httpRequests.inc({ route: '/v1/models', method: 'GET', status: 200 });
  m.httpDuration.observe({ route: '/v1/models', method: 'GET' }, 0.02);
  const text = await m.render();
  expect(text).toContain('# TYPE aipg_gateway_http_requests_total counter');
  expect(text).toContain('aipg_gateway_http_requests_total{route="/v1/models",method="GET",status="200"} 1');
  expect(text).toContain(
    'aipg_gateway_http_request_duration_seconds_bucket{route="/v1/models",method="GET",le="0.025"} 1',
  );
  expect(text).toContain(
    'aipg_gateway_http_request_duration_seconds_count{route="/v1/models",method="GET"} 1',
  );
});

test('errors serialise in OpenAI shape with stable codes', () => {
  const e = new GatewayError('insufficient_balance', 'not enough', { param: 'max_tokens' });
  expect(e.status).toBe(402);
  expect(e.toJSON()).toEqual({
    error: {
      message: 'not enough',
      type: 'insufficient_balance_error',
      param: 'max_tokens',
      code: 'insufficient_balance',
    },
  });
});

test('a job is reserved at its exact prompt count plus max_tokens of output', () => {
  const rates = { inputPerMTokens: 10n ** 18n, outputPerMTokens: 2n * 10n ** 18n };
  expect(maxFee({ inputTokens: 10, maxTokens: 5, rates, confidential: false, premiumBps: 0 })).toBe(
    computeTextFee({ inputTokens: 10, outputTokens: 5, rates }),
  );
});

test('settlement aggregates debits per payer and gross per worker, summing equal', () => {
  const r = (payer: string, worker: string, fee: bigint) =>
    ({ receipt: { payer, worker, fee } as unknown as Receipt }) as StoredReceipt;
  const a = aggregate([r('0xB', '0x1', 5n), r('0xA', '0x1', 7n), r('0xB', '0x2', 1n)]);
  expect(a.debits).toEqual([
    { payer: '0xA', amount: 7n },
    { payer: '0xB', amount: 6n },
  ]);
  expect(a.credits).toEqual([
    { worker: '0x1', gross: 12n },
    { worker: '0x2', gross: 1n },
  ]);
  expect(a.total).toBe(13n);
});

describe('routing', () => {
  const storage = { workers: { get: async () => undefined, save: async () => {} } };
  const routing = createRouting({ common: { logger: { warn() {} } as never }, storage });
  const model = `0x${'aa'.repeat(32)}` as Hex;
  const w = (id: string, bondAipg: bigint, inFlight = 0) => ({
    id,
    owner: `0x${id.padStart(40, '0')}` as Address,
    operator: `0x${id.padStart(40, '1')}` as Address,
    bond: bondAipg * 10n ** 18n,
    models: new Map([[model, { maxConcurrency: 2, inFlight }]]),
  });

  test('prefers stake when speed is unknown, skips full and excluded workers', () => {
    const small = w('a', 1000n);
    const big = w('b', 16000n);
    expect(routing.pick([small, big], model, { exclude: new Set(), expectedTokens: 16 })?.id).toBe('b');
    expect(
      routing.pick([small, w('c', 16000n, 2)], model, { exclude: new Set(), expectedTokens: 16 })?.id,
    ).toBe('a');
    expect(routing.pick([small, big], model, { exclude: new Set(['b']), expectedTokens: 16 })?.id).toBe('a');
  });

  test('measured speed and bad receipts move the choice', () => {
    const fast = w('d', 1000n);
    const slow = w('e', 1000n);
    routing.recordSuccess(fast, { ttftMs: 50, tokensPerSecond: 200 });
    routing.recordSuccess(slow, { ttftMs: 2000, tokensPerSecond: 5 });
    expect(routing.pick([slow, fast], model, { exclude: new Set(), expectedTokens: 64 })?.id).toBe('d');
    routing.recordInvalidReceipt(fast);
    expect(routing.pick([slow, fast], model, { exclude: new Set(), expectedTokens: 64 })?.id).toBe('e');
  });

  test('pins filter by owner or operator', () => {
    const a = w('f', 1000n);
    const b = w('g', 1000n);
    expect(routing.eligible([a, b], model, [b.owner]).map((x) => x.id)).toEqual(['g']);
    expect(routing.eligible([a, b], model, [a.operator]).map((x) => x.id)).toEqual(['f']);
  });
});

describe('receipt verification', () => {
  const chainId = 31337;
  const grid = '0x5FbDB2315678afecb367f032d93F642f64180aa3' as Address;
  const params = { maxTokens: 4, temperature: 0, topP: 1, seed: 7, stop: [] as string[] };
  const pricing = {
    inputPerMTokens: '1000000000000000000',
    outputPerMTokens: '2000000000000000000',
    confidentialPremiumBps: 2500,
  };
  const owner = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' as Address;
  const payer = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' as Address;
  const gateway = '0xa0Ee7A142d267C1f36714E4a8F75612F20a79720' as Address;
  const jobId = `0x${'01'.repeat(32)}` as Hex;
  const modelId = `0x${'02'.repeat(32)}` as Hex;
  const prompt = [1, 2, 3];
  const output = [WORD.grid, EOS];
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    tokenizer = await loadTestTokenizer();
  });

  type Claim = {
    prompt?: number[];
    output?: number[];
    finishReason?: 'stop' | 'length';
    sampler?: string;
    params?: typeof params;
  };
  async function result(
    tamper: (r: Receipt) => Receipt = (r) => r,
    signer = operator,
    claim: Claim = {},
  ): Promise<ResultMessage> {
    const p = claim.prompt ?? prompt;
    const o = claim.output ?? output;
    const finishReason = claim.finishReason ?? 'stop';
    const r = tamper({
      jobId,
      gateway,
      payer,
      worker: owner,
      modelId,
      requestHash: computeRequestHash(p, claim.params ?? params, claim.sampler ?? CANONICAL_SAMPLER),
      outputHash: computeOutputHash(o, finishReason),
      inputUnits: BigInt(p.length),
      outputUnits: BigInt(o.length),
      fee: computeTextFee({
        inputTokens: p.length,
        outputTokens: o.length,
        rates: { inputPerMTokens: 10n ** 18n, outputPerMTokens: 2n * 10n ** 18n },
      }),
      completedAt: BigInt(Math.floor(Date.now() / 1000)),
      confidential: false,
      seq: 41n,
    });
    return {
      type: 'result',
      jobId,
      promptTokenIds: p,
      outputTokenIds: o,
      finishReason,
      timings: { ttftMs: 1, totalMs: 2 },
      receipt: receiptToJson(r),
      signature: await signer.signTypedData(receiptTypedData(r, chainId, grid)),
    };
  }
  const expectation = (): ReceiptExpectation => ({
    jobId,
    seq: 41n,
    gateway,
    payer,
    worker: owner,
    operator: operator.address,
    modelId,
    promptTokenIds: prompt,
    sampler: CANONICAL_SAMPLER,
    tokenizer,
    params,
    pricing,
    confidential: false,
    chainId,
    grid,
    dispatchedAt: Date.now() - 1000,
    now: Date.now(),
    clockSkewSec: 30,
    streamedTokenIds: output,
  });

  test('an honest receipt verifies, and the text is rendered from its ids', async () => {
    const v = await verifyResult(await result(), expectation());
    expect(v.ok).toBe(true);
    if (v.ok) expect(v.text).toBe(tokenizer.detokenize([WORD.grid]));
    expect(v.ok && v.text).toBe('grid');
  });

  test.each([
    ['fee', (r: Receipt) => ({ ...r, fee: r.fee + 1n })],
    ['payer', (r: Receipt) => ({ ...r, payer: gateway })],
    ['worker', (r: Receipt) => ({ ...r, worker: payer })],
    ['gateway', (r: Receipt) => ({ ...r, gateway: payer })],
    ['modelId', (r: Receipt) => ({ ...r, modelId: jobId })],
    ['inputUnits', (r: Receipt) => ({ ...r, inputUnits: 2n })],
    ['outputUnits', (r: Receipt) => ({ ...r, outputUnits: 5n })],
    [
      'requestHash',
      (r: Receipt) => ({
        ...r,
        requestHash: computeRequestHash(prompt, { ...params, seed: 8 }, CANONICAL_SAMPLER),
      }),
    ],
    ['outputHash', (r: Receipt) => ({ ...r, outputHash: computeOutputHash(output, 'length') })],
    ['completedAt', (r: Receipt) => ({ ...r, completedAt: 1n })],
    ['confidential', (r: Receipt) => ({ ...r, confidential: true })],
    ['seq', (r: Receipt) => ({ ...r, seq: 40n })],
  ])('a wrong %s is rejected', async (field, tamper) => {
    const v = await verifyResult(await result(tamper), expectation());
    expect(v.ok).toBe(false);
    if (!v.ok) expect(v.field).toBe(field);
  });

  test('a worker billing more prompt tokens than the gateway sent is refused, however consistent its receipt', async () => {
    // The prompt-overbiller: the gateway's 3 ids plus 150 more, with inputUnits, requestHash and fee all
    // computed from the longer list and validly signed.
    const padded = [...prompt, ...Array.from({ length: 150 }, () => WORD.the)];
    const v = await verifyResult(await result(undefined, operator, { prompt: padded }), expectation());
    expect(v.ok || v.field).toBe('promptTokenIds');
    // Another prompt of the same length (ran something else, or claims another) is refused too.
    const other = await verifyResult(await result(undefined, operator, { prompt: [1, 2, 4] }), expectation());
    expect(other.ok || other.field).toBe('promptTokenIds');
  });

  test('streamed tokens must be where the output starts: a prefix passes (the rest comes with the result), anything else is refused', async () => {
    const longer = [WORD.the, WORD.grid, WORD.serves, EOS];
    const claim = { output: longer, finishReason: 'stop' as const };
    const streamed = async (ids: number[]) =>
      verifyResult(await result(undefined, operator, claim), { ...expectation(), streamedTokenIds: ids });
    // Nothing, part, or all of it streamed before the result: each is what the result says.
    for (const ids of [[], [WORD.the], [WORD.the, WORD.grid], longer])
      expect((await streamed(ids)).ok).toBe(true);
    // A worker that streamed one text and signed another is caught, however long each is.
    for (const ids of [
      [WORD.grid],
      [WORD.the, WORD.serves],
      [...longer, WORD.you],
      [WORD.the, WORD.grid, WORD.you],
    ]) {
      const v = await streamed(ids);
      expect(v.ok || v.field).toBe('outputTokenIds');
    }
  });

  test('the requestHash must commit to the sampler the worker advertised', async () => {
    const v = await verifyResult(await result(undefined, operator, { sampler: 'ollama' }), expectation());
    expect(v.ok || v.field).toBe('requestHash');
    const advertised = await verifyResult(await result(undefined, operator, { sampler: 'ollama' }), {
      ...expectation(),
      sampler: 'ollama',
    });
    expect(advertised.ok).toBe(true);
  });

  test.each([
    ['tokens after the end token', [WORD.grid, EOS, WORD.you], 'stop', 'outputTokenIds'],
    ['a stop finish without an end token (truncated)', [WORD.grid, WORD.you], 'stop', 'finishReason'],
    ['a length finish on the end token', [WORD.the, WORD.grid, WORD.serves, EOS], 'length', 'outputTokenIds'],
    ['an id outside the vocabulary', [WORD.grid, 99_999, EOS], 'stop', 'outputTokenIds'],
  ] as const)('an output with %s is refused', async (_, ids, finishReason, field) => {
    const v = await verifyResult(await result(undefined, operator, { output: [...ids], finishReason }), {
      ...expectation(),
      streamedTokenIds: null,
    });
    expect(v.ok || v.field).toBe(field);
  });

  test('stop strings: the text ends before the first one, and nothing may follow the token completing it', async () => {
    const stopAt = { ...params, stop: [' serves'] };
    const ids = [WORD.the, WORD.grid, WORD.serves];
    const ok = await verifyResult(await result(undefined, operator, { output: ids, params: stopAt }), {
      ...expectation(),
      params: stopAt,
      streamedTokenIds: null,
    });
    expect(ok.ok && ok.text).toBe('the grid');
    // The same output without the stop string in the parameters is a truncated "stop": refused.
    const truncated = await verifyResult(await result(undefined, operator, { output: ids }), {
      ...expectation(),
      streamedTokenIds: null,
    });
    expect(truncated.ok || truncated.field).toBe('finishReason');
  });

  test("a stop string on the first token counts as the worker's engine decodes it (vLLM keeps the leading space)", async () => {
    const stopAt = { ...params, stop: [' the'] };
    const claim = { output: [WORD.the], params: stopAt, prompt: [1, WORD.grid] };
    const expect_ = {
      ...expectation(),
      params: stopAt,
      promptTokenIds: [1, WORD.grid],
      streamedTokenIds: null,
    };
    // The canonical engine decodes the output alone ("the"): no stop string there, a truncation.
    const canonical = await verifyResult(await result(undefined, operator, claim), expect_);
    expect(canonical.ok || canonical.field).toBe('finishReason');
    // vLLM decodes it as a continuation of the prompt (" the"): its stop is genuine.
    const vllm = await verifyResult(await result(undefined, operator, { ...claim, sampler: 'vllm' }), {
      ...expect_,
      sampler: 'vllm',
    });
    expect(vllm.ok).toBe(true);
  });

  test('a signature by another key, or streamed tokens that differ, are rejected', async () => {
    const other = privateKeyToAccount('0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e');
    const bySomeoneElse = await verifyResult(await result(undefined, other), expectation());
    expect(bySomeoneElse.ok || bySomeoneElse.field).toBe('signature');
    const streamed = await verifyResult(await result(), {
      ...expectation(),
      streamedTokenIds: [WORD.you, EOS],
    });
    expect(streamed.ok || streamed.field).toBe('outputTokenIds');
  });
});

describe('rendering streamed token ids', () => {
  let tokenizer: Tokenizer;
  beforeAll(async () => {
    tokenizer = await loadTestTokenizer();
  });

  test('deltas concatenate to the final text; stop strings are held back, then cut', () => {
    const ids = [WORD.the, WORD.grid, WORD.serves, WORD.you, EOS];
    const stream = createOutputStream(tokenizer, [' serves']);
    const deltas = ids.map((id) => stream.push([id]));
    expect(deltas.join('')).toBe('the grid');
    const final = renderOutput(
      tokenizer,
      {
        outputTokenIds: ids.slice(0, 3),
        finishReason: 'stop',
        promptTokenIds: [1],
        sampler: CANONICAL_SAMPLER,
      },
      { stop: [' serves'], maxTokens: 8 },
    );
    expect(final.ok && final.text).toBe('the grid');
  });

  test('windowed streaming shows exactly what the engine decodes: a prefix of the final text, equal to it at the end', () => {
    // Random outputs over the whole vocabulary (words, characters, byte tokens that split UTF-8
    // characters), with and without stop strings, against the engine's own OutputText.
    let seed = 7;
    const rand = (n: number) => {
      seed = (seed * 1_103_515_245 + 12_345) % 2 ** 31;
      return seed % n;
    };
    const stops = [[], [' the'], ['.', 'e g'], ['é']];
    for (let round = 0; round < 300; round++) {
      const ids = Array.from({ length: 1 + rand(40) }, () => 3 + rand(tokenizer.vocabSize - 3)).filter(
        (id) => !tokenizer.isEndToken(id),
      );
      if (round % 3 === 0)
        ids.splice(rand(ids.length), 0, ...tokenizer.tokenize('é ü €', { special: false }));
      const stop = stops[round % stops.length]!;
      const engine = new OutputText(tokenizer.detokenize, stop, true);
      let cut = ids.length;
      let stopped = false;
      for (let i = 0; i < ids.length; i++)
        if (engine.push(ids[i]!, false)) {
          cut = i + 1;
          stopped = true;
          break;
        }
      const stream = createOutputStream(tokenizer, stop);
      const shown = ids.map((id) => stream.push([id])).join('');
      const final = renderOutput(
        tokenizer,
        {
          outputTokenIds: ids.slice(0, cut),
          finishReason: stopped ? 'stop' : 'length',
          promptTokenIds: [1],
          sampler: CANONICAL_SAMPLER,
        },
        { stop, maxTokens: stopped ? 10_000 : cut },
      );
      const expected = engine.text();
      expect(final.ok && final.text).toBe(expected);
      expect(expected.startsWith(shown)).toBe(true);
    }
  });

  test('nothing after the end token is ever shown', () => {
    const stream = createOutputStream(tokenizer, []);
    expect(stream.push([WORD.the, EOS])).toBe('');
    expect(stream.push([WORD.you, WORD.you])).toBe('');
  });

  test('a character split across byte tokens is held back until complete', () => {
    const ids = tokenizer.tokenize('é', { special: false });
    expect(ids.length).toBeGreaterThan(1);
    const stream = createOutputStream(tokenizer, []);
    const parts = ids.map((id) => stream.push([id]));
    expect(parts.slice(0, -1).join('')).not.toContain('\uFFFD');
    expect(parts.join('')).toContain('é');
  });
});
