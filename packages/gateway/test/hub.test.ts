import { type Address, type Hex, keccak256, toBytes } from 'viem';
import { afterAll, afterEach, beforeAll, describe, expect, test } from 'vitest';
import type { StartGatewayReturnType } from '../src/index.ts';
import {
  createApiKey,
  dropTestSchema,
  loadTestTokenizer,
  MODEL,
  roles,
  startTestGateway,
  startTestGrid,
  type TestGrid,
} from './helpers/grid.ts';
import { DEFAULT_TEXT, EOS, ScriptedWorker, WORD } from './helpers/worker.ts';

let grid: TestGrid;
let gw: StartGatewayReturnType;
let key: string;
let a: ScriptedWorker;
let b: ScriptedWorker;
const extra: ScriptedWorker[] = [];

const newWorker = (which: 'A' | 'B', over: Partial<ConstructorParameters<typeof ScriptedWorker>[0]> = {}) => {
  const w = new ScriptedWorker({
    url: gw.workerUrl,
    operatorKey: which === 'A' ? roles.operatorA.privateKey : roles.operatorB.privateKey,
    owner: which === 'A' ? roles.workerA.address : roles.workerB.address,
    models: [MODEL],
    ...over,
  });
  extra.push(w);
  return w;
};

beforeAll(async () => {
  grid = await startTestGrid();
  gw = await startTestGateway(grid, {
    'hub.heartbeatMs': 200,
    'jobs.firstTokenTimeoutMs': 800,
    // six clients queue for one slot in a test below
    'jobs.queueTimeoutMs': 10_000,
  });
  key = await createApiKey(gw, roles.payer.privateKey);
});

afterEach(async () => {
  await Promise.all(extra.splice(0).map((w) => w.close()));
  // The hub has noticed the closes before the next test counts workers.
  const kept = [a, b].filter((w) => w && !w.closeInfo).length;
  await expect.poll(online, { timeout: 5_000 }).toBe(kept);
});

afterAll(async () => {
  await a?.close();
  const options = gw?.common.options;
  await gw?.stop();
  if (options) await dropTestSchema(options);
  await grid?.stop();
});

function chat(extraBody: Record<string, unknown> = {}, headers: Record<string, string> = {}) {
  return fetch(`${gw.url}/v1/chat/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json', ...headers },
    body: JSON.stringify({
      model: MODEL.name,
      messages: [{ role: 'user', content: 'hello' }],
      max_tokens: 8,
      ...extraBody,
    }),
  });
}

async function balance() {
  const res = await fetch(`${gw.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } });
  const b = (await res.json()) as { unsettled: { wei: string }; reserved: { wei: string } };
  return { unsettled: BigInt(b.unsettled.wei), reserved: BigInt(b.reserved.wei) };
}

async function online(): Promise<number> {
  const h = (await (await fetch(`${gw.url}/healthz`)).json()) as { workers_online: number };
  return h.workers_online;
}

describe('worker login', () => {
  test('a bonded operator serving registered models is welcomed', async () => {
    a = newWorker('A');
    extra.pop(); // kept for the whole file
    expect(await a.connect()).toMatch(/^w-/);
    expect(await online()).toBe(1);
  });

  test('a login signed by another key is refused with a reason', async () => {
    const w = newWorker('A', { loginKey: roles.payer.privateKey });
    await expect(w.connect()).rejects.toThrow(/bad_signature/);
    await expect.poll(() => w.closeInfo?.code, { timeout: 2_000 }).toBe(4401);
  });

  test('an operator without a bond is refused', async () => {
    const w = new ScriptedWorker({
      url: gw.workerUrl,
      operatorKey: roles.poorPayer.privateKey,
      owner: roles.poorPayer.address,
      models: [MODEL],
    });
    extra.push(w);
    await expect(w.connect()).rejects.toThrow(/not_bonded/);
  });

  test('a model not in the registry, or with other weights, is refused', async () => {
    const w = newWorker('A', {
      models: [{ name: MODEL.name, weightsHash: keccak256(toBytes('other weights')) }],
    });
    await expect(w.connect()).rejects.toThrow(/unknown_model/);
    const w2 = newWorker('B', { models: [{ name: 'not-registered', weightsHash: MODEL.weightsHash }] });
    await expect(w2.connect()).rejects.toThrow(/unknown_model/);
  });

  test('garbage instead of hello closes with a protocol error', async () => {
    const { default: WebSocket } = await import('ws');
    const ws = new WebSocket(gw.workerUrl);
    const closed = new Promise<{ code: number; frames: string[] }>((resolve) => {
      const frames: string[] = [];
      ws.on('message', (d) => {
        frames.push(d.toString());
        if (frames.length === 1) ws.send('{"type":"token"}');
      });
      ws.on('close', (code) => resolve({ code, frames }));
    });
    const r = await closed;
    expect(r.code).toBe(4400);
    expect(JSON.parse(r.frames.at(-1)!)).toMatchObject({ type: 'error', code: 'protocol_error' });
  });

  test('a worker that stops answering pings is dropped', async () => {
    const w = newWorker('B', { pong: false });
    await w.connect();
    expect(await online()).toBe(2);
    await expect.poll(() => w.closeInfo, { timeout: 5_000 }).toBeDefined();
    expect(await online()).toBe(1);
  });

  test('a reconnect of the same operator replaces the old connection', async () => {
    const w1 = newWorker('B');
    await w1.connect();
    const w2 = newWorker('B');
    await w2.connect();
    await expect.poll(() => w1.closeInfo?.code, { timeout: 5_000 }).toBe(4409);
    expect(await online()).toBe(2);
  });
});

/** The worker routing picks for the next unpinned job (probed with one request). */
async function preferred(): Promise<ScriptedWorker> {
  const picked = (await (await chat()).json()) as { grid: { worker: string } };
  return picked.grid.worker === roles.workerA.address ? a : b;
}

/** Replaces the file-wide worker A or B with a fresh, well-behaved connection. */
async function reconnect(which: 'A' | 'B') {
  const w = newWorker(which);
  extra.pop();
  await w.connect();
  if (which === 'A') a = w;
  else b = w;
}

describe('jobs across workers', () => {
  // Worker B holds the larger bond, so routing tries it first when both are idle and unmeasured.
  beforeAll(async () => {
    b = newWorker('B');
    extra.pop();
    await b.connect();
  });
  afterAll(async () => {
    await b.close();
  });

  test('several jobs share one connection', async () => {
    const responses = await Promise.all(Array.from({ length: 6 }, () => chat()));
    expect(responses.map((r) => r.status)).toEqual([200, 200, 200, 200, 200, 200]);
  });

  test('a worker failing before its first token hands the job to another worker', async () => {
    const first = await preferred();
    const other = first === a ? b : a;
    first.opts.script = () => ({ failBeforeFirstToken: 'job-error' });
    try {
      const before = first.jobs.length;
      const res = await chat();
      expect(res.status).toBe(200);
      const body = (await res.json()) as { grid: { worker: string } };
      expect(body.grid.worker).toBe(other.opts.owner);
      expect(first.jobs.length).toBe(before + 1);
    } finally {
      first.opts.script = undefined;
    }
  });

  test('a worker that disconnects before its first token: retried elsewhere', async () => {
    const first = await preferred();
    const other = first === a ? b : a;
    first.opts.script = () => ({ failBeforeFirstToken: 'close' });
    const before = first.jobs.length;
    const res = await chat();
    expect(res.status).toBe(200);
    expect(((await res.json()) as { grid: { worker: string } }).grid.worker).toBe(other.opts.owner);
    expect(first.jobs.length).toBe(before + 1);
    await reconnect(first === a ? 'A' : 'B');
  });

  test('a silent worker times out before the first token and the job moves on', async () => {
    const first = await preferred();
    const other = first === a ? b : a;
    first.opts.script = () => ({ failBeforeFirstToken: 'silent' });
    try {
      const cancels = first.cancels.length;
      const res = await chat();
      expect(res.status).toBe(200);
      expect(((await res.json()) as { grid: { worker: string } }).grid.worker).toBe(other.opts.owner);
      // The cancel frame travels to the worker after the job has moved on: wait for it, not for the response.
      await expect.poll(() => first.cancels.length, { timeout: 2_000 }).toBe(cancels + 1);
    } finally {
      first.opts.script = undefined;
    }
  });

  test('a worker refusing for capacity (WORKER_BUSY): the job runs elsewhere, the refusal never counts against it', async () => {
    const first = await preferred();
    const other = first === a ? b : a;
    first.opts.script = () => ({ failBeforeFirstToken: 'busy' });
    try {
      const before = gw.workerStats(first.opts.owner);
      const res = await chat();
      expect(res.status).toBe(200);
      expect(((await res.json()) as { grid: { worker: string } }).grid.worker).toBe(other.opts.owner);
      const after = gw.workerStats(first.opts.owner);
      expect(after.jobsFailed).toBe(before.jobsFailed);
      expect(after.reliability).toBe(before.reliability);
    } finally {
      first.opts.script = undefined;
    }
  });

  test('a pinned worker refusing for capacity: the job waits for its slot and runs there', async () => {
    let refusals = 0;
    b.opts.script = () => (refusals++ === 0 ? { failBeforeFirstToken: 'busy' } : {});
    try {
      const before = gw.workerStats(roles.workerB.address);
      const res = await chat({ grid: { workers: [roles.workerB.address] } });
      expect(res.status).toBe(200);
      expect(refusals).toBe(2);
      expect(gw.workerStats(roles.workerB.address).jobsFailed).toBe(before.jobsFailed);
    } finally {
      b.opts.script = undefined;
    }
  });

  test('six clients at once on a one-slot worker: every one answered, one job at a time, no failure counted', async () => {
    const one = newWorker('A', { models: [{ ...MODEL, maxConcurrency: 1 }] });
    extra.pop();
    await one.connect();
    const old = a;
    a = one;
    await old.close();
    one.opts.script = () => ({ tokenDelayMs: 15 });
    try {
      const before = gw.workerStats(roles.workerA.address);
      const responses = await Promise.all(
        Array.from({ length: 6 }, () => chat({ grid: { workers: [roles.workerA.address] } })),
      );
      const bodies = await Promise.all(responses.map(async (r) => `${r.status} ${await r.text()}`));
      expect(bodies.filter((x) => !x.startsWith('200'))).toEqual([]);
      expect(one.jobs.length).toBe(6);
      // the slot is booked when routing chooses the worker: never two jobs in its one slot
      expect(one.peakRunning).toBe(1);
      const after = gw.workerStats(roles.workerA.address);
      expect(after.jobsFailed).toBe(before.jobsFailed);
      expect(after.jobsOk).toBe(before.jobsOk + 6);
    } finally {
      one.opts.script = undefined;
      await reconnect('A');
    }
  });

  test('a job of a funded payer leaves for its worker while its reservation is written; one refused after it left is stopped there: 402, nothing charged, nothing held against the worker', async () => {
    const first = await preferred();
    const pin = { grid: { workers: [first.opts.owner] } };
    // The gateway knows the payer's room from an earlier reservation: its next job leaves at once,
    // without a number; the number follows once reserved, and the receipt carries it.
    expect((await chat(pin)).status).toBe(200);
    const res = await chat(pin);
    expect(res.status).toBe(200);
    const id = res.headers.get('x-grid-job-id')!;
    expect(first.seqAfter).toContain(id);
    const stored = await gw.db.query<{ seq: string }>(
      'SELECT seq::text AS seq FROM receipts WHERE job_id = $1',
      [id],
    );
    expect(stored.map((r) => r.seq)).toEqual([first.jobs.find((j) => j.jobId === id)?.seq]);

    // Another process reserves the payer's funds meanwhile (as a second gateway on the same database
    // would): the gateway's remembered room is stale, the job leaves, its reservation is refused.
    const payer = roles.payer.address.toLowerCase();
    const taken = 10n ** 30n;
    await gw.db.query('UPDATE payers SET reserved = reserved + $2::numeric WHERE address = $1', [
      payer,
      taken.toString(),
    ]);
    try {
      const stats = gw.workerStats(first.opts.owner);
      const { unsettled } = await balance();
      const jobs = first.jobs.length;
      const cancels = first.cancels.length;
      const refused = await chat(pin);
      expect(refused.status).toBe(402);
      expect(((await refused.json()) as { error: { code: string } }).error.code).toBe('insufficient_balance');
      // It had left: the worker is told to stop it, and it never gets a number to sign.
      expect(first.jobs.length).toBe(jobs + 1);
      const stopped = first.jobs.at(-1)!.jobId;
      await expect.poll(() => first.cancels.at(-1), { timeout: 2_000 }).toBe(stopped);
      expect(first.cancels.length).toBe(cancels + 1);
      expect(first.seqAfter).not.toContain(stopped);
      expect((await balance()).unsettled).toBe(unsettled);
      const after = gw.workerStats(first.opts.owner);
      expect(after.jobsFailed).toBe(stats.jobsFailed);
      expect(after.reliability).toBe(stats.reliability);
      // The next request of that payer waits for its reservation before it leaves: refused with no work sent.
      expect((await chat(pin)).status).toBe(402);
      expect(first.jobs.length).toBe(jobs + 1);
    } finally {
      await gw.db.query('UPDATE payers SET reserved = reserved - $2::numeric WHERE address = $1', [
        payer,
        taken.toString(),
      ]);
    }
    // Its slot was given back: the payer's next job runs there.
    expect((await chat(pin)).status).toBe(200);
  });

  test('a result whose receipt number is not digits ("1.5", "0x2a", "1e3") is an invalid frame: the job moves on, the gateway stays up', async () => {
    for (const seq of ['1.5', '0x2a', '1e3']) {
      const first = await preferred();
      const other = first === a ? b : a;
      // Nothing streamed first: the job may still move to another worker.
      first.opts.script = () => ({
        noStream: true,
        rawResult: (f) => ({ ...f, receipt: { ...(f.receipt as object), seq } }),
      });
      try {
        const res = await chat();
        const body = (await res.json()) as { grid: { worker: string } };
        expect({ status: res.status, body }).toMatchObject({
          status: 200,
          body: { grid: { worker: other.opts.owner } },
        });
      } finally {
        first.opts.script = undefined;
      }
    }
    expect((await fetch(`${gw.url}/healthz`)).status).toBe(200);
  });

  test("requests refused for funds give back the slot they booked: a payer without funds cannot take a worker's capacity", async () => {
    const one = newWorker('A', { models: [{ ...MODEL, maxConcurrency: 1 }] });
    extra.pop();
    await one.connect();
    const old = a;
    a = one;
    await old.close();
    try {
      const poorKey = await createApiKey(gw, roles.poorPayer.privateKey);
      const refused = await Promise.all(
        Array.from({ length: 5 }, () =>
          chat({ grid: { workers: [roles.workerA.address] } }, { authorization: `Bearer ${poorKey}` }),
        ),
      );
      expect(refused.map((r) => r.status)).toEqual([402, 402, 402, 402, 402]);
      // The worker's one slot is free again: a funded request runs there now, and twice in a row.
      for (let i = 0; i < 2; i++) {
        const res = await chat({ grid: { workers: [roles.workerA.address] } });
        expect(res.status).toBe(200);
      }
      expect(one.jobs.length).toBe(2);
    } finally {
      await reconnect('A');
    }
  });

  test('every answer names its job in a header before the body; GET /v1/jobs/{id} finds sync, streamed and failed jobs', async () => {
    const getJob = async (id: string) =>
      (await (
        await fetch(`${gw.url}/v1/jobs/${id}`, { headers: { authorization: `Bearer ${key}` } })
      ).json()) as {
        id: string;
        status: string;
        result?: { choices: { message: { content: string } }[] } | null;
      };
    // not streamed
    const res = await chat();
    const id = res.headers.get('x-grid-job-id');
    expect(id).toMatch(/^0x[0-9a-f]{64}$/);
    expect(res.headers.get('x-request-id')).toBe(id);
    const body = (await res.json()) as {
      grid: { job_id: string };
      choices: { message: { content: string } }[];
    };
    expect(body.grid.job_id).toBe(id);
    const sync = await getJob(id!);
    expect(sync).toMatchObject({ id, status: 'succeeded' });
    expect(sync.result?.choices[0]?.message.content).toBe(body.choices[0]!.message.content);
    // streamed: the header arrives with the status line, before any event
    const streamed = await chat({ stream: true });
    const sid = streamed.headers.get('x-grid-job-id');
    expect(sid).toMatch(/^0x[0-9a-f]{64}$/);
    await streamed.text();
    expect((await getJob(sid!)).status).toBe('succeeded');
    // failed after the first token: the error names the job too
    b.opts.script = () => ({ failAfterTokens: { after: 2, how: 'job-error' } });
    try {
      const failed = await chat({ grid: { workers: [roles.workerB.address] } });
      expect(failed.status).toBe(502);
      const fid = failed.headers.get('x-grid-job-id');
      expect(fid).toMatch(/^0x[0-9a-f]{64}$/);
      expect((await getJob(fid!)).status).toBe('failed');
    } finally {
      b.opts.script = undefined;
    }
    // another payer's key cannot read it
    const otherKey = await createApiKey(gw, roles.poorPayer.privateKey);
    const other = await fetch(`${gw.url}/v1/jobs/${id}`, {
      headers: { authorization: `Bearer ${otherKey}` },
    });
    expect(other.status).toBe(404);
  });

  test('a worker failing after its first token: clean 502, nothing charged, no retry', async () => {
    b.opts.script = () => ({ failAfterTokens: { after: 2, how: 'job-error' } });
    const before = await balance();
    const jobsOnA = a.jobs.length;
    try {
      const res = await chat({ grid: { workers: [roles.workerB.address] } });
      expect(res.status).toBe(502);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('worker_failed');
      expect(body.error.message).toMatch(/nothing was charged/);
    } finally {
      b.opts.script = undefined;
    }
    expect(a.jobs.length).toBe(jobsOnA);
    expect(await balance()).toEqual(before);
  });

  test('streaming: a worker dying after its first token ends the stream with an error event', async () => {
    const dying = newWorker('B', { script: () => ({ failAfterTokens: { after: 2, how: 'close' } }) });
    await dying.connect();
    const before = await balance();
    const res = await chat({ stream: true, grid: { workers: [roles.workerB.address] } });
    expect(res.status).toBe(200);
    const events = (await res.text()).split('\n\n').filter((e) => e.startsWith('data: '));
    const payloads = events.map((e) => e.slice(6));
    expect(payloads).not.toContain('[DONE]');
    const last = JSON.parse(payloads.at(-1)!) as { error?: { code: string } };
    expect(last.error?.code).toBe('worker_failed');
    const text = payloads
      .slice(0, -1)
      .map(
        (p) =>
          (JSON.parse(p) as { choices: { delta: { content?: string } }[] }).choices[0]?.delta.content ?? '',
      )
      .join('');
    expect(text).toBe('the grid');
    expect(await balance()).toEqual(before);
    b = newWorker('B');
    extra.pop();
    await b.connect();
  });

  test('a receipt that does not verify fails the job, charges nothing, and penalises the worker', async () => {
    b.opts.script = () => ({ tamper: (r) => ({ ...r, fee: r.fee * 2n }) });
    const before = await balance();
    try {
      const res = await chat({ grid: { workers: [roles.workerB.address] } });
      expect(res.status).toBe(502);
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_receipt');
    } finally {
      b.opts.script = undefined;
    }
    expect(await balance()).toEqual(before);
    // A receipt signed by a key other than the operator's fails the same way.
    b.opts.script = () => ({ signWith: roles.payer.privateKey });
    try {
      const res = await chat({ grid: { workers: [roles.workerB.address] } });
      expect(((await res.json()) as { error: { code: string } }).error.code).toBe('invalid_receipt');
    } finally {
      b.opts.script = undefined;
    }
    // Penalised: unpinned requests now go to A despite B's larger bond.
    for (let i = 0; i < 3; i++) {
      const r = (await (await chat()).json()) as { grid: { worker: string } };
      expect(r.grid.worker).toBe(roles.workerA.address);
    }
    const m = await (await fetch(`${gw.url}/metrics`)).text();
    expect(m).toMatch(/aipg_gateway_receipts_rejected_total\{field="fee"\} 1/);
    expect(m).toMatch(/aipg_gateway_receipts_rejected_total\{field="signature"\} 1/);
  });

  test("a receipt spelling the job id, payer and worker in other cases is stored in the gateway's spelling and counts for the payer", async () => {
    // EIP-712 encodes bytes, so the case of hex is the worker's to choose: it must not make the receipt
    // unstorable (the job id references the job) nor hide its fee from the payer's unsettled total.
    b.opts.script = () => ({
      tamper: (r) => ({
        ...r,
        jobId: `0x${r.jobId.slice(2).toUpperCase()}` as Hex,
        payer: r.payer.toLowerCase() as Address,
        worker: r.worker.toLowerCase() as Address,
      }),
    });
    const before = await balance();
    try {
      const res = await chat({ grid: { workers: [roles.workerB.address] } });
      expect(res.status).toBe(200);
      const body = (await res.json()) as { grid: { fee_wei: string; worker: string } };
      expect(body.grid.worker).toBe(roles.workerB.address);
      const fee = BigInt(body.grid.fee_wei);
      expect(fee).toBeGreaterThan(0n);
      expect((await balance()).unsettled).toBe(before.unsettled + fee);
    } finally {
      b.opts.script = undefined;
    }
  });

  test('every worker failing before the first token: 502 after bounded attempts', async () => {
    a.opts.script = () => ({ failBeforeFirstToken: 'job-error' });
    b.opts.script = () => ({ failBeforeFirstToken: 'job-error' });
    try {
      const res = await chat();
      expect(res.status).toBe(502);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('worker_failed');
      expect(body.error.message).toMatch(/2 worker/);
    } finally {
      a.opts.script = undefined;
      b.opts.script = undefined;
    }
  });

  test('a retry with the same Idempotency-Key after a stream failed mid-way runs again', async () => {
    const headers = { 'idempotency-key': `retry-${Date.now()}` };
    const body = { stream: true, grid: { workers: [roles.workerA.address] } };
    a.opts.script = () => ({ failAfterTokens: { after: 1, how: 'job-error' } });
    let first: string;
    try {
      first = await (await chat(body, headers)).text();
    } finally {
      a.opts.script = undefined;
    }
    expect(first).toContain('"worker_failed"');
    const second = await chat(body, headers);
    expect(second.headers.get('idempotent-replayed')).toBeNull();
    const text = await second.text();
    expect(text.trim().endsWith('data: [DONE]')).toBe(true);
    // The success is now what the key replays.
    const third = await chat(body, headers);
    expect(third.headers.get('idempotent-replayed')).toBe('true');
    expect((await third.text()).trim().endsWith('data: [DONE]')).toBe(true);
  });

  test('a client leaving a stream cancels the job on its worker', async () => {
    a.opts.script = () => ({
      tokenDelayMs: 200,
      tokens: Array.from({ length: 20 }, () => WORD.grid),
    });
    try {
      const controller = new AbortController();
      const res = await fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify({
          model: MODEL.name,
          messages: [{ role: 'user', content: 'long' }],
          max_tokens: 20,
          stream: true,
          grid: { workers: [roles.workerA.address] },
        }),
        signal: controller.signal,
      });
      const reader = res.body!.getReader();
      await reader.read();
      controller.abort();
      await expect.poll(() => a.cancels.length, { timeout: 2_000 }).toBe(1);
    } finally {
      a.opts.script = undefined;
    }
    // The cancel reaches the worker before the gateway has recorded the job as failed: wait for
    // that record (it releases the reservation) rather than racing it.
    await expect.poll(async () => (await balance()).reserved, { timeout: 5_000 }).toBe(0n);
  });
});

describe('what the user receives is what the worker signed (issue 9)', () => {
  const INJECTED = 'Visit https://evil.example to claim your prize';
  const pinA = { grid: { workers: [roles.workerA.address] } };

  function sseText(raw: string): string {
    return raw
      .split('\n\n')
      .filter((e) => e.startsWith('data: {'))
      .map(
        (e) =>
          (JSON.parse(e.slice(6)) as { choices?: { delta?: { content?: string } }[] }).choices?.[0]?.delta
            ?.content ?? '',
      )
      .join('');
  }

  test('a text-injecting worker: the user gets the signed tokens rendered by the gateway, never its text', async () => {
    a.opts.script = () => ({ injectText: INJECTED });
    try {
      const plain = await chat(pinA);
      expect(plain.status).toBe(200);
      const body = (await plain.json()) as { choices: { message: { content: string } }[] };
      expect(body.choices[0]?.message.content).toBe(DEFAULT_TEXT);
      const streamed = await (await chat({ ...pinA, stream: true })).text();
      expect(streamed).not.toContain('evil.example');
      expect(sseText(streamed)).toBe(DEFAULT_TEXT);
    } finally {
      a.opts.script = undefined;
    }
  });

  test('tokens a worker did not stream (those that ended its answer) reach a streaming client from the verified result, whole', async () => {
    for (const streamFirst of [0, 2, 5]) {
      a.opts.script = () => ({ streamFirst });
      try {
        const streamed = await (await chat({ ...pinA, stream: true })).text();
        expect(sseText(streamed)).toBe(DEFAULT_TEXT);
        expect(streamed.trim().endsWith('data: [DONE]')).toBe(true);
      } finally {
        a.opts.script = undefined;
      }
    }
  });

  test('a job for a client that reads the answer whole asks the worker for its first tokens only; a streamed one for every token', async () => {
    const before = a.jobs.length;
    expect((await chat(pinA)).status).toBe(200);
    await (await chat({ ...pinA, stream: true })).text();
    const [whole, streamed] = a.jobs.slice(before) as { tokens?: string; stream: boolean }[];
    expect(whole).toMatchObject({ stream: true, tokens: 'first' });
    expect(streamed?.stream).toBe(true);
    expect(streamed).not.toHaveProperty('tokens');
  });

  test('a worker streaming other tokens than it signed (even a shorter text) is refused: nothing charged', async () => {
    const before = await balance();
    // "grid" where the signed output starts with "the"; only "the you" where it goes on "the grid"; the
    // signed output and then more.
    for (const script of [
      { streamTokens: [WORD.grid] },
      { streamFirst: 2, streamTokens: [WORD.the, WORD.you] },
      { tokens: [WORD.the, EOS], streamTokens: [WORD.the, EOS, WORD.you] },
    ]) {
      a.opts.script = () => script;
      try {
        const streamed = await (await chat({ ...pinA, stream: true })).text();
        expect(streamed).toContain('"invalid_receipt"');
      } finally {
        a.opts.script = undefined;
      }
    }
    expect(await balance()).toEqual(before);
  });

  test('a worker streaming past max_tokens is cut off at max_tokens: the client never sees more, the job is cancelled, nothing charged', async () => {
    const before = await balance();
    const failuresBefore = gw.workerStats(a.opts.owner).jobsFailed;
    // An honest answer of max_tokens = 2 ("the grid", finish length), streamed with 500 more tokens.
    a.opts.script = () => ({
      tokens: [WORD.the, WORD.grid],
      finishReason: 'length',
      streamTokens: [WORD.the, WORD.grid, ...Array.from({ length: 500 }, () => WORD.you)],
    });
    const cancelsBefore = a.cancels.length;
    try {
      const raw = await (await chat({ ...pinA, stream: true, max_tokens: 2 })).text();
      expect(sseText(raw)).toBe('the grid');
      expect(raw).not.toContain('you');
      expect(raw).toContain('"worker_failed"');
      expect(raw).toContain('more than max_tokens (2) tokens streamed');
      // The same worker answering a client that reads the answer whole: refused alike.
      const whole = await chat({ ...pinA, max_tokens: 2 });
      expect(whole.status).toBe(502);
      expect(((await whole.json()) as { error: { code: string } }).error.code).toBe('worker_failed');
    } finally {
      a.opts.script = undefined;
    }
    expect(await balance()).toEqual(before);
    expect(gw.workerStats(a.opts.owner).jobsFailed).toBe(failuresBefore + 2);
    // Sent before either answer (read after another round trip through the gateway).
    expect(a.cancels.length - cancelsBefore).toBe(2);
  });

  test('a prompt-overbiller (more prompt ids than the gateway sent, receipt consistent and signed) is refused before billing', async () => {
    const before = await balance();
    a.opts.script = () => ({
      promptTokenIds: (sent) => [...sent, ...Array.from({ length: sent.length * 50 }, () => WORD.the)],
    });
    try {
      const res = await chat(pinA);
      expect(res.status).toBe(502);
      const body = (await res.json()) as { error: { code: string; message: string } };
      expect(body.error.code).toBe('invalid_receipt');
      expect(body.error.message).toMatch(/prompt ids/);
    } finally {
      a.opts.script = undefined;
    }
    // Nothing charged, nothing held; the lie is counted.
    expect(await balance()).toEqual(before);
    const m = await (await fetch(`${gw.url}/metrics`)).text();
    expect(m).toMatch(/aipg_gateway_receipts_rejected_total\{field="promptTokenIds"\} 1/);
  });

  test('the worker is sent the prompt as the gateway tokenized it, and billed for exactly that', async () => {
    const tokenizer = await loadTestTokenizer();
    const res = await chat(pinA);
    const body = (await res.json()) as { usage: { prompt_tokens: number } };
    const ids = tokenizer.chatPromptTokenIds([{ role: 'user', content: 'hello' }]);
    expect(a.jobs.at(-1)?.promptTokenIds).toEqual(ids);
    expect(body.usage.prompt_tokens).toBe(ids.length);
  });

  test('tokens streamed after the end token never reach the user, and the receipt is refused', async () => {
    const before = await balance();
    a.opts.script = () => ({
      tokens: [WORD.the, WORD.grid, EOS, WORD.you, WORD.you],
      finishReason: 'stop',
    });
    try {
      const raw = await (await chat({ ...pinA, stream: true })).text();
      expect(sseText(raw)).toBe('the grid');
      expect(raw).toContain('"invalid_receipt"');
    } finally {
      a.opts.script = undefined;
    }
    expect(await balance()).toEqual(before);
  });

  test('a "stop" that is really a truncation (no end token, no stop string) is refused', async () => {
    a.opts.script = () => ({ tokens: [WORD.the, WORD.grid], finishReason: 'stop' });
    try {
      const res = await chat(pinA);
      expect(res.status).toBe(502);
      expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(
        /is not an end token and completes no stop string/,
      );
    } finally {
      a.opts.script = undefined;
    }
  });

  test('a worker whose receipt names another sampler than it advertised is refused', async () => {
    const w = newWorker('B', { models: [{ ...MODEL, sampler: 'ollama' }] });
    await w.connect();
    // The worker advertises "ollama" but its receipt (scripted) commits to the canonical sampler.
    w.opts.models = [{ ...MODEL }];
    const res = await chat({ grid: { workers: [roles.workerB.address] } });
    expect(res.status).toBe(502);
    expect(((await res.json()) as { error: { message: string } }).error.message).toMatch(/sampler "ollama"/);
  });

  test('a prompt longer than the gateway accepts is a 400 before any work', async () => {
    const res = await chat({ messages: [{ role: 'user', content: 'x'.repeat(70_000) }] });
    const body = (await res.json()) as { error: { code: string } };
    expect(body.error.code).toBe('context_length_exceeded');
    expect(res.status).toBe(400);
  });
});
