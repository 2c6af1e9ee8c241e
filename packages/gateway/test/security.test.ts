import { randomBytes } from 'node:crypto';
import dns, { type LookupAddress } from 'node:dns';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Writable } from 'node:stream';
import { type Address, concat, type Hex, hashMessage, hexToBigInt, numberToHex, pad } from 'viem';
import { generatePrivateKey, privateKeyToAccount, setSignEntropy, sign } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, test, vi } from 'vitest';
import {
  AUDIT_HEADERS,
  apiKeyMessage,
  auditRequestMessage,
  createLogger,
  type StartGatewayReturnType,
  startGateway,
} from '../src/index.ts';
import { checkWebhookUrl, isWebhookRefused, postWebhook } from '../src/webhooks/index.ts';
import {
  createApiKey,
  dropTestSchema,
  MODEL,
  roles,
  startTestGrid,
  type TestGrid,
  testGatewayOptions,
} from './helpers/grid.ts';
import { ScriptedWorker } from './helpers/worker.ts';

/**
 * The gateway under attack: SSRF through webhooks, replayed audit and key requests, a payer's job
 * history read by strangers, rate limits multiplied by minting keys, and unauthenticated requests
 * turned into chain reads. Each test asserts the safe outcome of one attack.
 */

let grid: TestGrid;
let gw: StartGatewayReturnType;
let worker: ScriptedWorker;
let key: string;
const logLines: string[] = [];
const cleanups: (() => Promise<void> | void)[] = [];

async function startGw(overrides: Record<string, unknown> = {}, sink?: Writable) {
  const options = testGatewayOptions(grid, overrides);
  const started = await startGateway(options, {
    logger: createLogger(sink ? 'debug' : options.log.level, sink),
  });
  cleanups.push(async () => {
    await started.stop();
    await dropTestSchema(options);
  });
  return started;
}

beforeAll(async () => {
  grid = await startTestGrid();
  const sink = new Writable({
    write(chunk, _enc, cb) {
      logLines.push(chunk.toString());
      cb();
    },
  });
  gw = await startGw(
    {
      'webhooks.retryBaseMs': 20,
      'rateLimit.anonymousRequestsPerMinute': 600,
      // the per-payer limit has its own gateway below: keep it out of the way here
      'rateLimit.payerRequestsPerMinute': 100_000,
      'rateLimit.payerBurst': 10_000,
    },
    sink,
  );
  worker = new ScriptedWorker({
    url: gw.workerUrl,
    operatorKey: roles.operatorA.privateKey,
    owner: roles.workerA.address,
    models: [MODEL],
  });
  await worker.connect();
  cleanups.push(() => worker.close());
  key = await createApiKey(gw, roles.payer.privateKey);
});

afterAll(async () => {
  for (const c of cleanups.reverse()) await c();
  await grid?.stop();
});

type ErrorBody = { error: { message: string; type: string; param: string | null; code: string } };

async function expectError(res: Response, status: number, code: string, param?: string | null) {
  const body = (await res.json()) as ErrorBody;
  expect({ status: res.status, code: body.error?.code }).toEqual({ status, code });
  expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'param', 'type']);
  if (param !== undefined) expect(body.error.param).toBe(param);
  return body;
}

function authed(path: string, init: RequestInit & { key?: string } = {}) {
  const { key: k = key, ...rest } = init;
  return gw.app.request(path, {
    ...rest,
    headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json', ...rest.headers },
  });
}

const completion = (extra: Record<string, unknown> = {}) => ({
  type: 'completion',
  request: { model: MODEL.name, prompt: 'hello', max_tokens: 2 },
  ...extra,
});

/** A local HTTP receiver that records every request it gets. */
async function receiver() {
  const hits: { url: string; host: string | undefined }[] = [];
  const server: Server = createServer((req: IncomingMessage, res) => {
    hits.push({ url: req.url ?? '', host: req.headers.host });
    req.resume();
    req.on('end', () => res.writeHead(204).end());
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
  return { hits, port: (server.address() as AddressInfo).port };
}

// ── 1. SSRF through webhooks ─────────────────────────────────────────────────────────────────

describe('webhooks cannot reach the gateway’s own network', () => {
  test.each([
    'http://127.0.0.1:9/hook',
    'http://localhost:9/hook',
    'http://LOCALHOST./hook',
    'http://127.1/hook',
    'http://2130706433/hook',
    'http://0x7f000001/hook',
    'http://0177.0.0.1/hook',
    'http://[::1]/hook',
    'http://[::ffff:127.0.0.1]/hook',
    'http://[::ffff:7f00:1]/hook',
    'http://[64:ff9b::7f00:1]/hook',
    'http://10.0.0.1/hook',
    'http://172.16.5.4/hook',
    'http://192.168.1.1/hook',
    'http://100.64.0.1/hook',
    'http://169.254.169.254/latest/meta-data/',
    'http://169.254.1.1/hook',
    'http://[fd00:ec2::254]/latest/meta-data/',
    'http://[fc00::1]/hook',
    'http://[fe80::1]/hook',
    'http://0.0.0.0/hook',
    'http://[::]/hook',
    'http://224.0.0.1/hook',
    'http://[ff02::1]/hook',
    'http://metadata.google.internal/computeMetadata/v1/',
    'not a url',
    'ftp://example.com/hook',
  ])('submit refuses %s with 400 invalid_request (webhook_url), no job created', async (url) => {
    const res = await authed('/v1/jobs', {
      method: 'POST',
      body: JSON.stringify(completion({ webhook_url: url })),
    });
    await expectError(res, 400, 'invalid_request', 'webhook_url');
    expect(res.headers.get('location')).toBeNull();
  });

  test('public hosts pass the submit check (names are resolved at delivery, not here)', () => {
    for (const url of [
      'https://example.com/hook',
      'https://93.184.216.34/x',
      'http://[2606:4700::1111]/x',
      'http://172.32.0.1/x',
      'http://100.128.0.1/x',
    ]) {
      expect(checkWebhookUrl(url, { allowPrivate: false }), url).toMatchObject({ ok: true });
    }
    expect(checkWebhookUrl('http://127.0.0.1/x', { allowPrivate: true })).toMatchObject({ ok: true });
  });

  test('a name resolving to loopback at delivery (DNS rebinding) is refused, recorded once, never retried', async () => {
    const target = await receiver();
    // Names the test's resolver answers: the attacker's names point at the gateway's own machine.
    const answers: Record<string, LookupAddress[]> = {
      'rebind.attacker.test': [{ address: '127.0.0.1', family: 4 }],
      'mapped.attacker.test': [{ address: '::ffff:127.0.0.1', family: 6 }],
      'mixed.attacker.test': [
        { address: '93.184.216.34', family: 4 },
        { address: '10.0.0.7', family: 4 },
      ],
    };
    const asked: string[] = [];
    const original = dns.lookup;
    const spy = vi.spyOn(dns, 'lookup').mockImplementation(((
      hostname: string,
      options: unknown,
      callback: (e: Error | null, a: LookupAddress[]) => void,
    ) => {
      const answer = answers[hostname];
      if (!answer) return (original as (...a: unknown[]) => void)(hostname, options, callback);
      asked.push(hostname);
      process.nextTick(() => callback(null, answer));
    }) as unknown as typeof dns.lookup);
    try {
      const ids: string[] = [];
      for (const host of Object.keys(answers)) {
        const res = await authed('/v1/jobs', {
          method: 'POST',
          body: JSON.stringify(completion({ webhook_url: `http://${host}:${target.port}/hook` })),
        });
        // Accepted at submit: the name is not a literal bad host.
        expect(res.status).toBe(202);
        ids.push(((await res.json()) as { id: string }).id);
      }
      for (const id of ids) {
        await expect
          .poll(
            async () =>
              ((await (await authed(`/v1/jobs/${id}`)).json()) as { webhook: { status: string } }).webhook
                .status,
            { timeout: 15_000, interval: 50 },
          )
          .toBe('failed');
        const job = (await (await authed(`/v1/jobs/${id}`)).json()) as {
          webhook: { status: string; attempts: number };
        };
        // One attempt, no retries against a refused host (webhooks.maxAttempts is 5).
        expect(job.webhook).toMatchObject({ status: 'failed', attempts: 1 });
      }
      // Resolved at delivery time, and nothing ever reached the receiver on 127.0.0.1.
      expect(new Set(asked)).toEqual(new Set(Object.keys(answers)));
      expect(target.hits).toEqual([]);
      const refusals = logLines
        .join('')
        .split('\n')
        .filter((l) => l.trim() !== '')
        .map((l) => JSON.parse(l) as { msg: string; error?: string; retry?: boolean; job_id?: string })
        .filter((l) => l.msg === 'webhook delivery failed' && ids.includes(l.job_id ?? ''));
      expect(refusals).toHaveLength(3);
      for (const r of refusals) expect(r).toMatchObject({ retry: false });
      expect(refusals.map((r) => r.error).sort()).toEqual([
        expect.stringMatching(/^refused: mapped\.attacker\.test resolves to ::ffff:127\.0\.0\.1, a loopback/),
        expect.stringMatching(/^refused: mixed\.attacker\.test resolves to 10\.0\.0\.7, a private/),
        expect.stringMatching(/^refused: rebind\.attacker\.test resolves to 127\.0\.0\.1, a loopback/),
      ]);
    } finally {
      spy.mockRestore();
    }
  });

  test('postWebhook resolves at every attempt and connects only to the checked address', async () => {
    const target = await receiver();
    let calls = 0;
    const resolve = async () => {
      calls += 1;
      return [{ address: '127.0.0.1', family: 4 }];
    };
    const hook = `http://hooks.example.test:${target.port}/deliver?x=1`;
    const send = (allowPrivate: boolean) =>
      postWebhook(hook, { body: '{}', headers: {}, timeoutMs: 2_000, allowPrivate, resolve });
    // Refused without a connection.
    const refused = await send(false).catch((e: unknown) => e);
    expect(isWebhookRefused(refused)).toBe(true);
    expect(target.hits).toEqual([]);
    // With the devnet allowance the same name is delivered, to the address the hook resolved, twice:
    // each attempt resolves again (no cached answer, no pooled socket).
    expect(await send(true)).toEqual({ status: 204 });
    expect(await send(true)).toEqual({ status: 204 });
    expect(calls).toBe(3);
    expect(target.hits).toEqual([
      { url: '/deliver?x=1', host: `hooks.example.test:${target.port}` },
      { url: '/deliver?x=1', host: `hooks.example.test:${target.port}` },
    ]);
    // A literal bad host never reaches the resolver.
    const literal = await postWebhook(`http://127.0.0.1:${target.port}/`, {
      body: '{}',
      headers: {},
      timeoutMs: 2_000,
      allowPrivate: false,
      resolve,
    }).catch((e: unknown) => e);
    expect(isWebhookRefused(literal)).toBe(true);
    expect(calls).toBe(3);
    expect(target.hits).toHaveLength(2);
  });
});

// ── 2. Audit request replay ──────────────────────────────────────────────────────────────────

describe('a signed audit request is served once, whatever its encoding', () => {
  const validator = privateKeyToAccount(roles.validatorOperator.privateKey);
  const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;

  function reencodings(signature: Hex): Record<string, Hex> {
    const r = signature.slice(0, 66) as Hex;
    const s = hexToBigInt(`0x${signature.slice(66, 130)}`);
    const v = Number.parseInt(signature.slice(130), 16);
    const yParity = v - 27;
    const word = (x: bigint) => pad(numberToHex(x), { size: 32 });
    return {
      'v as 0/1': concat([r, word(s), numberToHex(yParity, { size: 1 })]),
      'high s (n - s, v flipped)': concat([
        r,
        word(N - s),
        numberToHex(yParity === 0 ? 28 : 27, { size: 1 }),
      ]),
      'high s, v as 0/1': concat([r, word(N - s), numberToHex(1 - yParity, { size: 1 })]),
      '64-byte compact (EIP-2098)': concat([r, word((BigInt(yParity) << 255n) | s)]),
    };
  }

  async function evidenceJob(): Promise<string> {
    const res = await authed('/v1/completions', {
      method: 'POST',
      body: JSON.stringify({ model: MODEL.name, prompt: 'audit replay', max_tokens: 3 }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { grid: { job_id: string } }).grid.job_id;
  }

  const headersFor = (timestamp: number, signature: Hex) => ({
    [AUDIT_HEADERS.validator]: validator.address,
    [AUDIT_HEADERS.timestamp]: String(timestamp),
    [AUDIT_HEADERS.signature]: signature,
  });

  test('the request works once; each re-encoding of its signature is refused, before and after', async () => {
    const path = `/v1/audit/jobs/${await evidenceJob()}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const message = auditRequestMessage({ method: 'GET', path, timestamp, gateway: gw.gateway });
    const signature = await validator.signMessage({ message });
    const variants = reencodings(signature);
    // Before the canonical request: every other encoding is refused and spends nothing.
    for (const [name, variant] of Object.entries(variants)) {
      const res = await gw.app.request(path, { headers: headersFor(timestamp, variant) });
      expect(res.status, name).toBe(401);
      expect(((await res.json()) as ErrorBody).error.code, name).toBe('invalid_validator_signature');
    }
    const first = await gw.app.request(path, { headers: headersFor(timestamp, signature) });
    expect(first.status).toBe(200);
    expect(((await first.json()) as { object: string }).object).toBe('audit.job');
    // After it: the same request, in any encoding, is never served again.
    for (const [name, variant] of Object.entries({ canonical: signature, ...variants })) {
      const res = await gw.app.request(path, { headers: headersFor(timestamp, variant) });
      expect(res.status, name).toBe(401);
      expect(((await res.json()) as ErrorBody).error.code, name).toBe('invalid_validator_signature');
    }
  });

  test('a second, differently random but valid signature of the same request is a replay', async () => {
    const path = `/v1/audit/jobs/${await evidenceJob()}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const message = auditRequestMessage({ method: 'GET', path, timestamp, gateway: gw.gateway });
    const hash = hashMessage(message);
    const deterministic = await sign({ hash, privateKey: roles.validatorOperator.privateKey, to: 'hex' });
    // Another nonce k: a different, canonical (low s, v 27/28) signature of the very same request.
    setSignEntropy(`0x${randomBytes(32).toString('hex')}`);
    const randomised = await sign({ hash, privateKey: roles.validatorOperator.privateKey, to: 'hex' });
    expect(randomised).not.toBe(deterministic);
    expect((await gw.app.request(path, { headers: headersFor(timestamp, deterministic) })).status).toBe(200);
    await expectError(
      await gw.app.request(path, { headers: headersFor(timestamp, randomised) }),
      401,
      'invalid_validator_signature',
    );
  });
});

// ── 3. Key creation replay ───────────────────────────────────────────────────────────────────

describe('a signed key request is single-use', () => {
  const payer = privateKeyToAccount(roles.payer.privateKey);
  const keyMessage = (nonce: string, name?: string) =>
    apiKeyMessage({
      gateway: gw.gateway,
      chainId: gw.chainId,
      payer: payer.address,
      nonce,
      name,
      expires: new Date(Date.now() + 300_000),
    });
  const post = (body: unknown, headers: Record<string, string> = {}) =>
    gw.app.request('/v1/keys', {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...headers },
      body: JSON.stringify(body),
    });

  test('a replay of the same signed request gets 409 and no key; the nonce stays spent', async () => {
    const nonce = randomBytes(8).toString('hex');
    const message = keyMessage(nonce, 'replayed');
    const request = { payer: payer.address, message, signature: await payer.signMessage({ message }) };
    const first = await post(request);
    expect(first.status).toBe(201);
    const created = (await first.json()) as { key: string; id: string };
    expect(created.key).toMatch(/^aipg-k/);
    const replays = [
      await post(request),
      // an Idempotency-Key does not turn the replay into a copy of the first answer either
      await post(request, { 'idempotency-key': 'replay-1' }),
      await post(request, { 'idempotency-key': 'replay-1' }),
      // nor a checksum-less spelling of the payer
      await post({ ...request, payer: payer.address.toLowerCase() }),
    ];
    for (const res of replays) {
      const text = await res.text();
      expect(res.status).toBe(409);
      const body = JSON.parse(text) as ErrorBody & { key?: unknown };
      expect(body.error.code).toBe('nonce_already_used');
      expect(body.error.type).toBe('conflict_error');
      expect(body.key).toBeUndefined();
      expect(text).not.toContain(created.key);
      expect(text).not.toMatch(/aipg-k/);
    }
    // Another message with the spent nonce is refused too.
    const renamed = keyMessage(nonce, 'other');
    await expectError(
      await post({
        payer: payer.address,
        message: renamed,
        signature: await payer.signMessage({ message: renamed }),
      }),
      409,
      'nonce_already_used',
    );
    // The replays did not revoke or duplicate anything: one live key, the first one.
    const list = await authed('/v1/keys', { key: created.key });
    expect(list.status).toBe(200);
    const named = ((await list.json()) as { data: { id: string; name: string | null }[] }).data.filter(
      (k) => k.name === 'replayed',
    );
    expect(named.map((k) => k.id)).toEqual([created.id]);
  });
});

// ── 4. Activity privacy ──────────────────────────────────────────────────────────────────────

describe("a payer's job history is the payer's", () => {
  type Activity = { data: { kind: string; type: string; account: string | null; related: string | null }[] };
  let jobId: string;

  beforeAll(async () => {
    const res = await authed('/v1/completions', {
      method: 'POST',
      body: JSON.stringify({ model: MODEL.name, prompt: 'private business', max_tokens: 2 }),
    });
    expect(res.status).toBe(200);
    jobId = ((await res.json()) as { grid: { job_id: string } }).grid.job_id;
    // The payer's deposit (a public chain event) reaches the indexer.
    await vi.waitFor(
      async () => {
        const res = await gw.app.request(`/v1/network/activity?kind=deposit&address=${roles.payer.address}`);
        expect(((await res.json()) as Activity).data.length).toBeGreaterThan(0);
      },
      { timeout: 20_000, interval: 100 },
    );
  });

  const activity = (query: string, headers: Record<string, string> = {}) =>
    gw.app.request(`/v1/network/activity?${query}`, { headers });

  test('job activity by payer address: 401 without a key, 401 with a bad one, 403 with another payer’s', async () => {
    const q = `kind=job&address=${roles.payer.address}`;
    await expectError(await activity(q), 401, 'missing_api_key');
    await expectError(
      await activity(q, { authorization: `Bearer aipg-k${'x'.repeat(12)}-${'y'.repeat(43)}` }),
      401,
      'invalid_api_key',
    );
    const stranger = await createApiKey(gw, roles.poorPayer.privateKey);
    await expectError(
      await activity(q, { authorization: `Bearer ${stranger}` }),
      403,
      'permission_denied',
      'address',
    );
    // A key sent with the default kinds is checked the same way.
    await expectError(
      await activity(`address=${roles.payer.address}`, { authorization: `Bearer ${stranger}` }),
      403,
      'permission_denied',
    );
  });

  test("the payer's own key lists its jobs, naming it; the response is not cacheable", async () => {
    const res = await activity(`kind=job&address=${roles.payer.address}`, { authorization: `Bearer ${key}` });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('private, no-store');
    const items = ((await res.json()) as Activity).data;
    const mine = items.find((i) => (i as { id?: string }).id === `job:${jobId}`);
    expect(mine).toMatchObject({ kind: 'job', related: roles.payer.address });
  });

  test('public activity: jobs never name their payer; chain events about the payer stay public', async () => {
    const payer = roles.payer.address.toLowerCase();
    const jobs = await activity('kind=job&limit=200');
    expect(jobs.status).toBe(200);
    const jobText = (await jobs.text()).toLowerCase();
    expect(jobText).toContain(jobId.toLowerCase());
    expect(jobText).not.toContain(payer);
    // Default kinds about the payer: its deposit, none of its jobs.
    const about = (await (await activity(`address=${roles.payer.address}`)).json()) as Activity;
    expect(about.data.some((i) => i.type === 'deposited')).toBe(true);
    expect(about.data.filter((i) => i.kind === 'job')).toEqual([]);
    // The operator page of the payer shows no jobs either.
    const op = (await (await gw.app.request(`/v1/network/operators/${roles.payer.address}`)).json()) as {
      activity: Activity['data'];
    };
    expect(op.activity.filter((i) => i.kind === 'job')).toEqual([]);
    // A worker's served jobs stay public, without their payers.
    const served = (await (await activity(`address=${roles.workerA.address}`)).json()) as Activity;
    const job = served.data.find((i) => (i as { id?: string }).id === `job:${jobId}`);
    expect(job).toMatchObject({ kind: 'job', account: roles.workerA.address, related: null });
  });
});

// ── 5. Per-payer rate limits ─────────────────────────────────────────────────────────────────

describe('minting keys does not multiply the rate limit', () => {
  test('N keys of one payer share one budget (429 with retry-after); another payer is unaffected', async () => {
    const limited = await startGw({
      'rateLimit.requestsPerMinute': 600,
      'rateLimit.burst': 60,
      'rateLimit.payerRequestsPerMinute': 1,
      'rateLimit.payerBurst': 3,
      'rateLimit.anonymousRequestsPerMinute': 600,
    });
    const keys: string[] = [];
    for (let i = 0; i < 4; i++) keys.push(await createApiKey(limited, roles.payer.privateKey));
    const other = await createApiKey(limited, roles.poorPayer.privateKey);
    const get = (k: string) => limited.app.request('/v1/keys', { headers: { authorization: `Bearer ${k}` } });
    // Three requests on three keys spend the payer's burst of 3 …
    for (const k of keys.slice(0, 3)) expect((await get(k)).status).toBe(200);
    // … so a fourth, never used key (its own bucket full: 60) is refused.
    const refused = await get(keys[3]!);
    expect(Number(refused.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
    const body = await expectError(refused, 429, 'rate_limit_exceeded');
    expect(body.error.message).toMatch(/all of this payer's keys/);
    // Still refused on the first key, which used only one of its own 60.
    await expectError(await get(keys[0]!), 429, 'rate_limit_exceeded');
    // Another payer has its own budget.
    expect((await get(other)).status).toBe(200);
  });
});

// ── 6. Unauthenticated traffic and chain reads ───────────────────────────────────────────────

describe('unauthenticated requests do not turn into chain reads', () => {
  /** A JSON-RPC proxy in front of anvil counting every method it forwards. */
  async function countingRpc(upstream: string) {
    const counts = new Map<string, number>();
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => {
        body += c;
      });
      req.on('end', async () => {
        const parsed = JSON.parse(body) as { method: string } | { method: string }[];
        for (const call of Array.isArray(parsed) ? parsed : [parsed])
          counts.set(call.method, (counts.get(call.method) ?? 0) + 1);
        const answer = await fetch(upstream, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body,
        });
        res.writeHead(answer.status, { 'content-type': 'application/json' }).end(await answer.text());
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanups.push(() => new Promise<void>((r) => server.close(() => r())));
    return {
      url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
      /** Calls that read contract state or code (what a request path would cost the RPC). */
      reads: () => (counts.get('eth_call') ?? 0) + (counts.get('eth_getCode') ?? 0),
    };
  }

  test('many unauthenticated requests cost at most a bounded number of RPC reads', async () => {
    const rpc = await countingRpc(grid.rpcUrl);
    const counted = await startGw({
      rpcUrl: rpc.url,
      'reputation.enabled': false,
      'settlement.enabled': false,
      'chain.registryCacheMs': 120_000,
      // per-IP limits would hide the problem: an attacker has many addresses
      'rateLimit.anonymousRequestsPerMinute': 100_000,
      'rateLimit.anonymousChainReadsPerMinute': 2,
    });
    const request = (path: string, init?: RequestInit) => counted.app.request(path, init);
    // The dashboard indexer has caught up (its start-up reads are done) and the model cache is warm.
    await expect
      .poll(
        async () =>
          ((await (await request('/v1/network/status')).json()) as { indexer: { lag_blocks: number | null } })
            .indexer.lag_blocks,
        { timeout: 20_000, interval: 100 },
      )
      .toBe(0);
    expect((await request('/v1/models')).status).toBe(200);
    const before = rpc.reads();

    const statuses: number[] = [];
    const hit = async (path: string, init?: RequestInit) => {
      const res = await request(path, init);
      statuses.push(res.status);
      if (res.status === 429) expect(Number(res.headers.get('retry-after'))).toBeGreaterThanOrEqual(1);
      await res.arrayBuffer();
    };
    for (let i = 0; i < 60; i++) {
      await hit('/v1/models');
      await hit(`/v1/models/${MODEL.name}`);
      await hit(`/v1/models/missing-${i}`);
    }
    for (const p of [
      'summary',
      'models',
      'workers',
      'validators',
      'activity',
      `operators/${roles.payer.address}`,
    ])
      for (let i = 0; i < 10; i++) await hit(`/v1/network/${p}`);
    // Key requests with signatures that are not the payer's: fresh "payers", wrong signers, junk bytes.
    const payerAccount = privateKeyToAccount(roles.payer.privateKey);
    for (let i = 0; i < 30; i++) {
      const fake = privateKeyToAccount(generatePrivateKey());
      const message = apiKeyMessage({
        gateway: counted.gateway,
        chainId: counted.chainId,
        payer: fake.address,
        nonce: randomBytes(8).toString('hex'),
        expires: new Date(Date.now() + 300_000),
      });
      const wrongSigner = await payerAccount.signMessage({ message });
      for (const signature of [wrongSigner, `0x${randomBytes(100).toString('hex')}`]) {
        await hit('/v1/keys', {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ payer: fake.address, message, signature }),
        });
      }
    }
    // Audit requests correctly signed by fresh keys (anyone can make one) that are no validator's.
    for (let i = 0; i < 30; i++) {
      const fake = privateKeyToAccount(generatePrivateKey());
      const path = `/v1/audit/jobs/0x${'00'.repeat(32)}`;
      const timestamp = Math.floor(Date.now() / 1000);
      const signature = await fake.signMessage({
        message: auditRequestMessage({ method: 'GET', path, timestamp, gateway: counted.gateway }),
      });
      await hit(path, {
        headers: {
          [AUDIT_HEADERS.validator]: fake.address,
          [AUDIT_HEADERS.timestamp]: String(timestamp),
          [AUDIT_HEADERS.signature]: signature,
        },
      });
    }

    // Client mistakes and throttling are 4xx, never 5xx.
    expect(statuses.length).toBe(60 * 3 + 60 + 60 + 30);
    expect(statuses.filter((s) => s >= 500)).toEqual([]);
    expect(statuses.filter((s) => s === 429).length).toBeGreaterThan(0);
    // ~330 requests: at most the budget's burst (2) plus a refill, each one verification or bond lookup.
    expect(rpc.reads() - before).toBeLessThanOrEqual(4);

    // The real validator (indexed as one) is still served while the budget is spent.
    const validator = privateKeyToAccount(roles.validatorOperator.privateKey);
    const path = `/v1/audit/jobs/0x${'00'.repeat(32)}`;
    const timestamp = Math.floor(Date.now() / 1000);
    const signature = await validator.signMessage({
      message: auditRequestMessage({ method: 'GET', path, timestamp, gateway: counted.gateway }),
    });
    const res = await request(path, {
      headers: {
        [AUDIT_HEADERS.validator]: validator.address as Address,
        [AUDIT_HEADERS.timestamp]: String(timestamp),
        [AUDIT_HEADERS.signature]: signature,
      },
    });
    // authenticated: the job is unknown, not the validator
    await expectError(res, 404, 'job_not_found');
  });
});
