import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getNextReceiptSeq, gridAbi, settleBatch } from '@aipg/chain';
import {
  buildReceiptTree,
  MAX_SCORE_TOP_K,
  type ReceiptJson,
  receiptFromJson,
  receiptLeafHash,
  type ScoreMessage,
  scoreAttestation,
  scoreTypedData,
  verifyReceiptProof,
} from '@aipg/core';
import { type Address, type Hex, parseEventLogs, recoverTypedDataAddress } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { findSettledBatchId } from '../src/audit/batch-id.ts';
import {
  AUDIT_HEADERS,
  aggregate,
  auditRequestMessage,
  createLogger,
  createStorage,
  type ScoreResponse,
  type StartGatewayReturnType,
  startGateway,
} from '../src/index.ts';
import {
  createApiKey,
  dropTestSchema,
  MODEL,
  MODEL_ID,
  roles,
  startTestGrid,
  type TestGrid,
  testGatewayOptions,
} from './helpers/grid.ts';
import { type ScoreBehaviour, ScriptedWorker } from './helpers/worker.ts';

/**
 * The validators' side of the audit API beyond single jobs: batch listings with proofs (against a
 * real anvil Grid) and cross-check scoring routed to scripted workers. The same scoring with real
 * llama.cpp workers is in audit-score.e2e.test.ts.
 */

let grid: TestGrid;
let gw: StartGatewayReturnType;
let key: string;
let workerA: ScriptedWorker;
let workerB: ScriptedWorker;
/** What each scripted worker does with the next score frames (changed per test). */
const scorers: Record<'a' | 'b', (f: ScoreMessage) => ScoreBehaviour> = {
  a: () => ({ kind: 'scores' }),
  b: () => ({ kind: 'scores' }),
};
const cleanups: (() => Promise<void> | void)[] = [];

const validator = privateKeyToAccount(roles.validatorOperator.privateKey);
let lastTimestamp = 0;

/** Signed audit headers; every call gets a fresh timestamp (a signature is accepted once). */
async function signed(method: 'GET' | 'POST', path: string, account = validator) {
  const timestamp = Math.max(Math.floor(Date.now() / 1000), lastTimestamp + 1);
  lastTimestamp = timestamp;
  const signature = await account.signMessage({
    message: auditRequestMessage({ method, path, timestamp, gateway: gw.gateway }),
  });
  return {
    [AUDIT_HEADERS.validator]: account.address,
    [AUDIT_HEADERS.timestamp]: String(timestamp),
    [AUDIT_HEADERS.signature]: signature,
  };
}

async function expectError(res: Response, status: number, code: string, param?: string | null) {
  const body = (await res.json()) as { error: { message: string; param: string | null; code: string } };
  expect({ status: res.status, code: body.error?.code }).toEqual({ status, code });
  if (param !== undefined) expect(body.error.param).toBe(param);
  return body.error;
}

async function complete(prompt: string, pin?: Address): Promise<Hex> {
  const res = await fetch(`${gw.url}/v1/completions`, {
    method: 'POST',
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: MODEL.name,
      prompt,
      max_tokens: 4,
      ...(pin ? { grid: { workers: [pin] } } : {}),
    }),
  });
  const body = (await res.json()) as { grid: { job_id: Hex } };
  expect(res.status, JSON.stringify(body)).toBe(200);
  return body.grid.job_id;
}

type BatchListing = {
  root: Hex;
  batch_id: string | null;
  status: string;
  tx_hash: Hex | null;
  receipt_count: number;
  receipts: { job_id: Hex; leaf: Hex; receipt: ReceiptJson; signature: Hex; proof: Hex[] }[];
};

async function getBatch(root: string): Promise<Response> {
  const path = `/v1/audit/batches/${root}`;
  return gw.app.request(path, { headers: await signed('GET', path) });
}

async function score(body: Record<string, unknown>, account = validator): Promise<Response> {
  return gw.app.request('/v1/audit/score', {
    method: 'POST',
    headers: { ...(await signed('POST', '/v1/audit/score', account)), 'content-type': 'application/json' },
    body: JSON.stringify(body),
  });
}

const scoreBody = (extra: Record<string, unknown> = {}) => ({
  job_id: `0x${randomBytes(32).toString('hex')}`,
  model_id: MODEL_ID,
  prompt_token_ids: [1, 2, 3, 4],
  output_token_ids: [101, 102, 103],
  top_k: 2,
  exclude_worker: `0x${randomBytes(20).toString('hex')}`,
  ...extra,
});

type ScoreAnswer = ScoreResponse;

/** Who signed an answer's scores, for the request it answers (null: not a valid signature). */
async function scoreSigner(body: ReturnType<typeof scoreBody>, answer: ScoreAnswer): Promise<Address | null> {
  const attestation = scoreAttestation({
    scoreJobId: answer.score_job_id,
    auditedJobId: body.job_id as Hex,
    worker: answer.worker,
    modelId: body.model_id,
    promptTokenIds: body.prompt_token_ids,
    outputTokenIds: body.output_token_ids,
    topK: body.top_k,
    positions: answer.positions.map((p) => ({
      tokenId: p.token_id,
      probability: p.probability,
      rank: p.rank,
      top: p.top.map((t) => ({ tokenId: t.token_id, probability: t.probability })),
    })),
  });
  return recoverTypedDataAddress({
    ...scoreTypedData(attestation, gw.chainId, gw.common.options.grid),
    signature: answer.signature,
  }).catch(() => null);
}

beforeAll(async () => {
  grid = await startTestGrid();
  // Signatures are single use and cover (method, path, timestamp): many requests to one path need
  // timestamps ahead of the clock, as the validator's client makes them.
  const options = testGatewayOptions(grid, { 'audit.scoreTimeoutMs': 1_500, 'audit.maxSkewSec': 3_600 });
  gw = await startGateway(options, { logger: createLogger(options.log.level) });
  workerA = new ScriptedWorker({
    url: gw.workerUrl,
    operatorKey: roles.operatorA.privateKey,
    owner: roles.workerA.address,
    models: [MODEL],
    scorer: (f) => scorers.a(f),
  });
  workerB = new ScriptedWorker({
    url: gw.workerUrl,
    operatorKey: roles.operatorB.privateKey,
    owner: roles.workerB.address,
    models: [MODEL],
    scorer: (f) => scorers.b(f),
  });
  await workerA.connect();
  await workerB.connect();
  key = await createApiKey(gw, roles.payer.privateKey);
});

afterAll(async () => {
  await workerA?.close();
  await workerB?.close();
  const options = gw?.common.options;
  await gw?.stop();
  if (options) await dropTestSchema(options);
  for (const c of cleanups.reverse()) await c();
  await grid?.stop();
});

describe('GET /v1/audit/batches/:root', () => {
  test('lists every receipt of a settled batch in settled order, with leaves and proofs, and the on-chain batch id', async () => {
    const jobs: Hex[] = [];
    for (let i = 0; i < 4; i++) jobs.push(await complete(`batch me ${i}`));
    const blockBefore = await grid.publicClient.getBlockNumber();
    await gw.settleNow();
    const logs = parseEventLogs({
      abi: gridAbi,
      eventName: 'BatchSettled',
      logs: await grid.publicClient.getLogs({ address: grid.grid, fromBlock: blockBefore + 1n }),
    });
    expect(logs).toHaveLength(1);
    const settled = logs[0]!.args;

    const res = await getBatch(settled.root.toUpperCase().replace('0X', '0x'));
    expect(res.status).toBe(200);
    const body = (await res.json()) as BatchListing;
    expect(body.root).toBe(settled.root);
    expect(body.batch_id).toBe(settled.batchId.toString());
    expect(body.status).toBe('settled');
    expect(body.tx_hash).toBe(logs[0]!.transactionHash);
    expect(body.receipt_count).toBe(4);
    // Settled order is the order the receipts were stored (the jobs ran one after another here).
    expect(body.receipts.map((r) => r.job_id)).toEqual(jobs);
    const receipts = body.receipts.map((r) => receiptFromJson(r.receipt));
    expect(buildReceiptTree(receipts).root).toBe(settled.root);
    for (const [i, r] of body.receipts.entries()) {
      const receipt = receipts[i]!;
      expect(r.leaf).toBe(receiptLeafHash(receipt));
      expect(verifyReceiptProof(settled.root, receipt, r.proof)).toBe(true);
      expect(r.signature).toMatch(/^0x[0-9a-f]{130}$/);
    }
    // The chain agrees: this id names this root.
    const onchain = (await grid.publicClient.readContract({
      address: grid.grid,
      abi: gridAbi,
      functionName: 'getBatch',
      args: [settled.batchId],
    })) as { root: Hex; receiptCount: number };
    expect(onchain.root).toBe(settled.root);
    expect(onchain.receiptCount).toBe(4);

    // The job evidence names the same on-chain batch.
    const path = `/v1/audit/jobs/${jobs[0]}`;
    const evidence = (await (await gw.app.request(path, { headers: await signed('GET', path) })).json()) as {
      batch: { batch_id: string; root: Hex };
    };
    expect(evidence.batch).toMatchObject({ batch_id: settled.batchId.toString(), root: settled.root });
  });

  test('unknown or malformed roots are 404; unsigned and non-validator requests are refused', async () => {
    await expectError(await getBatch(`0x${'ab'.repeat(32)}`), 404, 'batch_not_found', 'root');
    await expectError(await getBatch('not-a-root'), 404, 'batch_not_found', 'root');
    const path = `/v1/audit/batches/0x${'ab'.repeat(32)}`;
    await expectError(await gw.app.request(path), 401, 'invalid_validator_signature');
    const payer = privateKeyToAccount(roles.payer.privateKey);
    await expectError(
      await gw.app.request(path, { headers: await signed('GET', path, payer) }),
      403,
      'not_a_validator',
    );
    // A signature for one path does not open another.
    const headers = await signed('GET', `/v1/audit/batches/0x${'cd'.repeat(32)}`);
    await expectError(await gw.app.request(path, { headers }), 401, 'invalid_validator_signature');
  });
});

describe('POST /v1/audit/score', () => {
  test('another worker serving the model scores the output, drawn at random, never the excluded one', async () => {
    scorers.a = () => ({ kind: 'scores' });
    scorers.b = () => ({ kind: 'scores' });
    const seen = new Set<string>();
    for (let i = 0; i < 24; i++) {
      const request = scoreBody();
      const res = await score(request);
      expect(res.status).toBe(200);
      const body = (await res.json()) as ScoreAnswer;
      seen.add(body.worker);
      // Signed by the scorer's operator key, passed through as it came.
      const operator = body.worker === roles.workerA.address ? roles.operatorA : roles.operatorB;
      expect(body.operator).toBe(operator.address);
      expect(await scoreSigner(request, body)).toBe(operator.address);
      expect(body.positions).toEqual(
        [101, 102, 103].map((id) => ({
          token_id: id,
          probability: 0.9,
          rank: 0,
          top: [
            { token_id: id, probability: 0.9 },
            { token_id: id + 1, probability: 0.05 },
          ],
        })),
      );
    }
    expect([...seen].sort()).toEqual([roles.workerA.address, roles.workerB.address].sort());

    // exclude_worker by bond owner or by operator key: always the other one.
    for (const excluded of [roles.workerA.address, roles.operatorA.address]) {
      for (let i = 0; i < 6; i++) {
        const res = await score(scoreBody({ exclude_worker: excluded }));
        expect(((await res.json()) as { worker: Address }).worker).toBe(roles.workerB.address);
      }
    }
    // The score frame carried exactly the request (with a fresh job id).
    const frame = [...workerA.scores, ...workerB.scores].at(-1)!;
    expect(frame).toMatchObject({
      type: 'score',
      modelId: MODEL_ID,
      promptTokenIds: [1, 2, 3, 4],
      outputTokenIds: [101, 102, 103],
      topK: 2,
    });
    expect(frame.auditedJobId).toMatch(/^0x[0-9a-f]{64}$/);
    expect(frame.auditedJobId).not.toBe(frame.jobId);
  });

  test("the audited job's own worker never scores it, whatever exclude_worker says", async () => {
    const jobId = await complete('audited on A', roles.workerA.address);
    for (let i = 0; i < 8; i++) {
      const res = await score(scoreBody({ job_id: jobId }));
      expect(((await res.json()) as { worker: Address }).worker).toBe(roles.workerB.address);
    }
    // Both workers of the model excluded: nobody can score.
    await expectError(
      await score(scoreBody({ job_id: jobId, exclude_worker: roles.workerB.address })),
      503,
      'no_worker_available',
      'model_id',
    );
  });

  test('503 when no other worker can score: unknown model, or backends without scoring', async () => {
    await expectError(
      await score(scoreBody({ model_id: `0x${'11'.repeat(32)}` })),
      503,
      'no_worker_available',
    );
    scorers.a = () => ({ kind: 'unsupported' });
    const before = workerA.scores.length;
    await expectError(
      await score(scoreBody({ exclude_worker: roles.workerB.address })),
      503,
      'no_worker_available',
    );
    expect(workerA.scores.length).toBe(before + 1);
    // Remembered for the connection: not asked again.
    await expectError(
      await score(scoreBody({ exclude_worker: roles.workerB.address })),
      503,
      'no_worker_available',
    );
    expect(workerA.scores.length).toBe(before + 1);
    // Another worker that can score still answers.
    const res = await score(scoreBody());
    expect(((await res.json()) as { worker: Address }).worker).toBe(roles.workerB.address);
    // A reconnection may bring a backend that scores: forget what the old connection said.
    scorers.a = () => ({ kind: 'scores' });
    await workerA.close();
    await workerA.connect();
    const again = await score(scoreBody({ exclude_worker: roles.workerB.address }));
    expect(((await again.json()) as { worker: Address }).worker).toBe(roles.workerA.address);
  });

  test('a failing or lying scorer hands the score job to another worker', async () => {
    scorers.b = () => ({ kind: 'scores' });
    for (const failure of [
      { kind: 'error', code: 'WORKER_BACKEND_FAILED', retryable: true },
      // Scores of other tokens than the claimed output.
      { kind: 'scores', positions: [{ tokenId: 7, probability: 0.5, rank: 0, top: [] }] },
    ] as ScoreBehaviour[]) {
      scorers.a = () => failure;
      const triedBefore = workerA.scores.length;
      for (let i = 0; i < 16; i++) {
        const res = await score(scoreBody());
        expect(res.status).toBe(200);
        expect(((await res.json()) as { worker: Address }).worker).toBe(roles.workerB.address);
      }
      expect(workerA.scores.length).toBeGreaterThan(triedBefore);
    }
    // Nobody else to hand it to: 502.
    scorers.a = () => ({ kind: 'error', code: 'WORKER_BACKEND_FAILED', retryable: true });
    const e = await expectError(
      await score(scoreBody({ exclude_worker: roles.workerB.address })),
      502,
      'worker_failed',
    );
    expect(e.message).toContain('WORKER_BACKEND_FAILED');
    // Ids the model cannot score are the request's fault, whichever worker says so.
    scorers.a = () => ({ kind: 'error', code: 'WORKER_SCORE_INVALID', retryable: false });
    await expectError(
      await score(scoreBody({ exclude_worker: roles.workerB.address })),
      400,
      'invalid_request',
      'output_token_ids',
    );
    scorers.a = () => ({ kind: 'scores' });
  });

  test('bounded in time: a silent worker is cancelled and the request fails with 502', async () => {
    scorers.a = () => ({ kind: 'silent' });
    const started = Date.now();
    const e = await expectError(
      await score(scoreBody({ exclude_worker: roles.workerB.address })),
      502,
      'worker_failed',
    );
    expect(e.message).toContain('1500 ms');
    expect(Date.now() - started).toBeLessThan(4_000);
    const frame = workerA.scores.at(-1)!;
    await expect.poll(() => workerA.cancels, { timeout: 2_000 }).toContain(frame.jobId);
    scorers.a = () => ({ kind: 'scores' });
  });

  test('validates the body and the signature', async () => {
    await expectError(
      await score(scoreBody({ top_k: MAX_SCORE_TOP_K + 1 })),
      400,
      'invalid_request',
      'top_k',
    );
    await expectError(
      await score(scoreBody({ output_token_ids: new Array(5_000).fill(7), top_k: 64 })),
      400,
      'invalid_request',
      'output_token_ids',
    );
    await expectError(
      await score(scoreBody({ prompt_token_ids: [] })),
      400,
      'invalid_request',
      'prompt_token_ids',
    );
    await expectError(
      await score(scoreBody({ exclude_worker: 'nobody' })),
      400,
      'invalid_request',
      'exclude_worker',
    );
    const { exclude_worker: _, ...missing } = scoreBody();
    await expectError(await score(missing), 400, 'invalid_request', 'exclude_worker');
    const empty = await gw.app.request('/v1/audit/score', {
      method: 'POST',
      headers: await signed('POST', '/v1/audit/score'),
      body: '',
    });
    await expectError(empty, 400, 'invalid_json');
    await expectError(
      await gw.app.request('/v1/audit/score', { method: 'POST', body: JSON.stringify(scoreBody()) }),
      401,
      'invalid_validator_signature',
    );
    await expectError(
      await score(scoreBody(), privateKeyToAccount(roles.payer.privateKey)),
      403,
      'not_a_validator',
    );
  });

  test('a validator has a bounded number of score requests in flight', async () => {
    scorers.a = () => ({ kind: 'scores', delayMs: 300 });
    scorers.b = () => ({ kind: 'scores', delayMs: 300 });
    const limit = gw.common.options.audit.maxScoresPerValidator;
    const results = await Promise.all(Array.from({ length: limit + 1 }, () => score(scoreBody())));
    const statuses = results.map((r) => r.status).sort();
    expect(statuses).toEqual([...new Array(limit).fill(200), 429]);
    scorers.a = () => ({ kind: 'scores' });
    scorers.b = () => ({ kind: 'scores' });
    const m = await (await gw.app.request('/metrics')).text();
    expect(m).toMatch(/aipg_gateway_audit_scores_total\{outcome="ok"\} [1-9]/);
  });
});

describe('the validator draws the scorer; the gateway routes to it or fails', () => {
  const scorersOf = async (modelId: string) => {
    const path = '/v1/audit/scorers';
    return gw.app.request(`${path}?model_id=${modelId}`, { headers: await signed('GET', path) });
  };

  test('GET /v1/audit/scorers lists the online workers of the model, with their operator keys', async () => {
    scorers.a = () => ({ kind: 'scores' });
    scorers.b = () => ({ kind: 'scores' });
    const res = await scorersOf(MODEL_ID);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { object: string; model_id: Hex; data: unknown[] };
    expect(body.object).toBe('list');
    expect(body.model_id).toBe(MODEL_ID);
    expect(body.data).toEqual(
      expect.arrayContaining([
        { worker: roles.workerA.address, operator: roles.operatorA.address },
        { worker: roles.workerB.address, operator: roles.operatorB.address },
      ]),
    );
    expect(body.data).toHaveLength(2);
    expect(((await (await scorersOf(`0x${'11'.repeat(32)}`)).json()) as { data: unknown[] }).data).toEqual(
      [],
    );
    await expectError(await scorersOf('nope'), 400, 'invalid_request', 'model_id');
    await expectError(
      await gw.app.request(`/v1/audit/scorers?model_id=${MODEL_ID}`),
      401,
      'invalid_validator_signature',
    );
  });

  test('a request naming worker X is scored by X, signed by X’s operator, every time', async () => {
    for (const [named, operator] of [
      [roles.workerA, roles.operatorA],
      [roles.workerB, roles.operatorB],
    ] as const) {
      for (let i = 0; i < 6; i++) {
        const request = { ...scoreBody(), worker: named.address.toLowerCase() };
        const res = await score(request);
        expect(res.status).toBe(200);
        const body = (await res.json()) as ScoreAnswer;
        expect(body.worker).toBe(named.address);
        expect(body.operator).toBe(operator.address);
        expect(await scoreSigner(request, body)).toBe(operator.address);
        // The signature binds the audited job: the same scores for another job recover to someone else.
        expect(await scoreSigner({ ...request, job_id: `0x${'ee'.repeat(32)}` }, body)).not.toBe(
          operator.address,
        );
      }
    }
  });

  test('X failing, silent, unable to score or absent: the request fails, never served by another worker', async () => {
    const bBefore = workerB.scores.length;
    const named = { worker: roles.workerA.address };
    scorers.a = () => ({ kind: 'error', code: 'WORKER_BACKEND_FAILED', retryable: true });
    const e = await expectError(await score(scoreBody(named)), 502, 'worker_failed');
    expect(e.message).toContain('WORKER_BACKEND_FAILED');
    // Scores of other tokens than asked: a failure of X, not a reason to ask someone else.
    scorers.a = () => ({
      kind: 'scores',
      positions: [{ tokenId: 7, probability: 0.5, rank: 0, top: [] }],
    });
    await expectError(await score(scoreBody(named)), 502, 'worker_failed');
    scorers.a = () => ({ kind: 'silent' });
    await expectError(await score(scoreBody(named)), 502, 'worker_failed');
    expect(workerB.scores.length).toBe(bBefore);

    // Not connected here (a bonded owner with no connection, a stranger): 503 naming `worker`.
    for (const absent of [roles.payer.address, `0x${'42'.repeat(20)}`])
      await expectError(await score(scoreBody({ worker: absent })), 503, 'no_worker_available', 'worker');
    // Serves another model only.
    await expectError(
      await score(scoreBody({ worker: roles.workerB.address, model_id: `0x${'11'.repeat(32)}` })),
      503,
      'no_worker_available',
      'worker',
    );
    // The audited worker, by exclude_worker or as the job's own worker here: refused, never scored.
    await expectError(
      await score(scoreBody({ worker: roles.workerB.address, exclude_worker: roles.workerB.address })),
      400,
      'invalid_request',
      'worker',
    );
    scorers.a = () => ({ kind: 'scores' });
    const jobId = await complete('audited on B', roles.workerB.address);
    await expectError(
      await score(scoreBody({ job_id: jobId, worker: roles.workerB.address })),
      400,
      'invalid_request',
      'worker',
    );
    expect(workerB.scores.length).toBe(bBefore);

    // X cannot score: 503, and B is still not asked in its place.
    scorers.a = () => ({ kind: 'unsupported' });
    await expectError(await score(scoreBody(named)), 503, 'no_worker_available', 'worker');
    expect(workerB.scores.length).toBe(bBefore);
    // Reconnected with a backend that scores: it answers again.
    scorers.a = () => ({ kind: 'scores' });
    await workerA.close();
    await workerA.connect();
    const res = await score(scoreBody(named));
    expect(((await res.json()) as ScoreAnswer).worker).toBe(roles.workerA.address);
    expect(workerB.scores.length).toBe(bBefore);
  });

  test('a scorer signing with another key is passed through as it came (the validator rejects it)', async () => {
    scorers.a = () => ({ kind: 'scores', signWith: roles.payer.privateKey });
    const request = scoreBody({ worker: roles.workerA.address });
    const res = await score(request);
    expect(res.status).toBe(200);
    const body = (await res.json()) as ScoreAnswer;
    expect(body.operator).toBe(roles.operatorA.address);
    expect(await scoreSigner(request, body)).toBe(privateKeyToAccount(roles.payer.privateKey).address);
    scorers.a = () => ({ kind: 'scores' });
  });
});

describe('on-chain batch ids', () => {
  test('a batch found settled after a crash gets its id from the chain', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'aipg-gw-audit-'));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const overrides = {
      databaseDir: dir,
      databaseSchema: process.env.DATABASE_URL ? `gw_audit_${randomBytes(5).toString('hex')}` : undefined,
    };
    // First life: receipts stored, never settled.
    const first = await startGateway(
      testGatewayOptions(grid, { ...overrides, 'settlement.enabled': false, 'audit.maxSkewSec': 3_600 }),
    );
    const w = new ScriptedWorker({
      url: first.workerUrl,
      operatorKey: roles.operatorA.privateKey,
      owner: roles.workerA.address,
      models: [MODEL],
    });
    await w.connect();
    const k = await createApiKey(first, roles.payer.privateKey);
    for (let i = 0; i < 3; i++) {
      const res = await fetch(`${first.url}/v1/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${k}`, 'content-type': 'application/json' },
        body: JSON.stringify({ model: MODEL.name, prompt: `crash ${i}`, max_tokens: 2 }),
      });
      expect(res.status).toBe(200);
    }
    await w.close();
    const options = first.common.options;
    await first.stop();
    // The crash: a batch recorded and sent, but the process died before recording the outcome.
    const storage = await createStorage({ common: { options, logger: createLogger('silent') } });
    const firstSeq = await getNextReceiptSeq(grid.publicClient, {
      grid: grid.grid,
      gateway: roles.gateway.address,
    });
    const created = await storage.receipts.createBatch(
      { gateway: roles.gateway.address, from: firstSeq, max: 2 },
      (receipts) => {
        const tree = buildReceiptTree(receipts.map((r) => r.receipt));
        return { root: tree.root as Hex, total: aggregate(receipts).total };
      },
    );
    await storage.close();
    const { debits, credits } = aggregate(created!.receipts);
    const sent = await settleBatch(grid.client(roles.gateway.privateKey), {
      grid: grid.grid,
      root: created!.batch.root,
      firstSeq,
      receiptCount: Number(created!.batch.seqCount),
      debits,
      credits,
    });

    const second = await startGateway(testGatewayOptions(grid, { ...overrides, 'audit.maxSkewSec': 3_600 }));
    try {
      // Finds the crashed batch settled on chain (no transaction of its own), then settles the third
      // receipt in a newer batch: the lookup below walks back past it.
      const countBefore = await grid.publicClient.readContract({
        address: grid.grid,
        abi: gridAbi,
        functionName: 'batchCount',
      });
      await second.settleNow();
      expect(
        await grid.publicClient.readContract({
          address: grid.grid,
          abi: gridAbi,
          functionName: 'batchCount',
        }),
      ).toBe(countBefore + 1n);
      expect(
        await findSettledBatchId(grid.publicClient, { grid: grid.grid, root: created!.batch.root }),
      ).toEqual({ batchId: sent.batchId, settledBlock: sent.blockNumber });
      const path = `/v1/audit/batches/${created!.batch.root}`;
      const timestamp = Math.max(Math.floor(Date.now() / 1000), lastTimestamp + 1);
      lastTimestamp = timestamp;
      const signature = await validator.signMessage({
        message: auditRequestMessage({ method: 'GET', path, timestamp, gateway: second.gateway }),
      });
      const res = await second.app.request(path, {
        headers: {
          [AUDIT_HEADERS.validator]: validator.address,
          [AUDIT_HEADERS.timestamp]: String(timestamp),
          [AUDIT_HEADERS.signature]: signature,
        },
      });
      expect(res.status).toBe(200);
      const body = (await res.json()) as BatchListing;
      expect(body.batch_id).toBe(sent.batchId.toString());
      expect(body.receipts).toHaveLength(2);
      for (const r of body.receipts)
        expect(verifyReceiptProof(created!.batch.root, receiptFromJson(r.receipt), r.proof)).toBe(true);
    } finally {
      await second.stop();
      await dropTestSchema(options);
    }
  });

  test('the gateway follows audit history for routing from the Grid deployment block', async () => {
    const rep = gw.reputation!;
    expect(rep).toBeDefined();
    await rep.syncNow();
    const status = rep.status();
    expect(status.fromBlock).toBe(BigInt(grid.chain.deployment.deployBlock));
    expect(status.syncedBlock).toBeGreaterThanOrEqual(status.fromBlock!);
    // Nobody audited yet: neutral.
    expect(rep.factor(roles.workerA.address)).toBe(1);
  });
});
