import {
  CANONICAL_SAMPLER,
  computeOutputHash,
  computeRequestHash,
  computeTextFee,
  loginMessage,
  PROTOCOL_VERSION,
  receiptFromJson,
  receiptTypedData,
} from '@aipg/core';
import { type Hex, keccak256, toBytes, verifyMessage, verifyTypedData } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { INJECTED_TEXT, OVERBILL_FACTOR } from '../../src/adversary/index.ts';
import {
  BondRequirementError,
  ChainMismatchError,
  createAdversaryBackend,
  ModelRegistryError,
  startWorker,
  WORKER_VERSION,
  type Worker,
} from '../../src/index.ts';
import { RATES, setupChain, type TestChain } from './helpers/chain.ts';
import {
  applyTemplate,
  createFakeBackend,
  expectedOutput,
  type FakeBackend,
  tokenize,
} from './helpers/fake-backend.ts';
import { type GatewayPeer, type PeerConnection, startGatewayPeer } from './helpers/gateway-peer.ts';
import { memoryLogger, waitFor, workerOptions } from './helpers/worker.ts';

let chain: TestChain;
let peer: GatewayPeer;

beforeAll(async () => {
  chain = await setupChain();
  peer = await startGatewayPeer({ chainId: chain.chainId, grid: chain.grid, client: chain.publicClient });
});
afterAll(async () => {
  await peer?.close();
  await chain?.stop();
});

/** The raw JSON of a job's frame of `type`, as it came over the socket (before schema parsing). */
function rawFrame(conn: PeerConnection, jobId: Hex, type: string): Record<string, unknown> {
  const found = conn.rawFrames.find(
    (f) => (f as { jobId?: string }).jobId === jobId && (f as { type?: string }).type === type,
  );
  if (!found) throw new Error(`no ${type} frame for ${jobId}`);
  return found as Record<string, unknown>;
}

async function startError(accountIndex: number, backend: FakeBackend = createFakeBackend()) {
  const options = await workerOptions({
    chain,
    operatorKey: chain.account(accountIndex).privateKey,
    gatewayUrl: peer.url,
  });
  try {
    const w = await startWorker(options, {
      backends: [{ backend, maxConcurrency: 1 }],
      logger: memoryLogger().logger,
    });
    await w.stop();
  } catch (error) {
    return error as Error & { code: string; shortMessage: string };
  }
  throw new Error('expected startWorker to refuse');
}

describe('start-up checks against the Grid', () => {
  it('refuses an operator key without a bond, naming the stake command', async () => {
    const error = await startError(5);
    expect(error).toBeInstanceOf(BondRequirementError);
    expect(error.code).toBe('WORKER_BOND_MISSING');
    expect(error.shortMessage).toBe(
      `no worker bond for operator ${chain.account(5).address}: bond at least 1,000 AIPG with \`aipg stake worker 1000\` (or, from the owner's wallet, \`aipg stake worker 1000 --operator ${chain.account(5).address}\`)`,
    );
  });

  it('refuses a bond below the minimum (the minimum was raised after bonding)', async () => {
    await chain.bondWorker(6, '1000');
    await chain.setWorkerMinimum('1500');
    try {
      const error = await startError(6);
      expect(error.code).toBe('WORKER_BOND_TOO_LOW');
      expect(error.shortMessage).toBe(
        `the worker bond of ${chain.account(6).address} is 1,000 AIPG, below the 1,500 AIPG minimum: add 500 AIPG with \`aipg stake worker 500\``,
      );
    } finally {
      await chain.setWorkerMinimum('1000');
    }
  });

  it('refuses a bond that is fully unbonding', async () => {
    await chain.bondWorker(7, '1000');
    await chain.unbondWorker(7, '1000');
    const error = await startError(7);
    expect(error.code).toBe('WORKER_BOND_UNBONDING');
    expect(error.shortMessage).toMatch(
      /fully unbonding \(1,000 AIPG\): cancel with `aipg unbond worker --cancel` or bond again with `aipg stake worker 1000`/,
    );
  });

  it('refuses a model that is not registered, or registered with other weights', async () => {
    await chain.bondWorker(8, '1000');
    const unregistered = createFakeBackend({ name: 'never-registered' });
    const error = await startError(8, unregistered);
    expect(error).toBeInstanceOf(ModelRegistryError);
    expect(error.code).toBe('WORKER_MODEL_NOT_REGISTERED');
    expect(error.shortMessage).toMatch(
      /model never-registered \(weights 0x[0-9a-f]{64}\) is not registered on chain/,
    );
    expect(unregistered.closed).toBe(true);

    await chain.registerModel(createFakeBackend({ name: 'requantized' }).model);
    const otherWeights = createFakeBackend({
      name: 'requantized',
      weightsHash: keccak256(toBytes('a different GGUF')),
    });
    const mismatch = await startError(8, otherWeights);
    expect(mismatch.code).toBe('WORKER_MODEL_HASH_MISMATCH');
    expect(mismatch.shortMessage).toMatch(
      /model requantized is registered with weights 0x[0-9a-f]{64}, but the weights served here hash to 0x[0-9a-f]{64}/,
    );
  });
});

describe('a bonded worker on the gateway protocol', () => {
  // Account 1 owns the bond; account 2 is the operator (hot) key on the rig that signs.
  const OWNER = 1;
  const OPERATOR = 2;
  let worker: Worker;
  let conn: PeerConnection;
  let small: FakeBackend;
  let big: FakeBackend;
  let logLines: string[];

  beforeAll(async () => {
    await chain.bondWorker(OWNER, '2500', chain.account(OPERATOR).address);
    small = createFakeBackend({ name: 'aipg-tiny', tokenDelayMs: 10 });
    // Served by an engine with its own sampler (as an Ollama backend is).
    big = createFakeBackend({ name: 'aipg-big', tokenDelayMs: 10, sampler: 'ollama' });
    await chain.registerModel(small.model);
    await chain.registerModel(big.model);
    const options = await workerOptions({
      chain,
      operatorKey: chain.account(OPERATOR).privateKey,
      gatewayUrl: peer.url,
      metricsPort: 0,
    });
    const { logger, lines } = memoryLogger();
    logLines = lines;
    const login = peer.nextWorker();
    worker = await startWorker(options, {
      logger,
      backends: [
        { backend: small, maxConcurrency: 2 },
        { backend: big, maxConcurrency: 1 },
      ],
    });
    conn = await login;
    await worker.ready();
  });
  afterAll(async () => {
    await worker?.stop();
  });

  it('logs in with a verified signature of the challenge and advertises its models, each with its sampler', async () => {
    expect(conn.loginVerified).toBe(true);
    expect(
      await verifyMessage({
        address: chain.account(OPERATOR).address,
        message: loginMessage(conn.challenge),
        signature: conn.hello.signature,
      }),
    ).toBe(true);
    expect(conn.owner).toBe(chain.account(OWNER).address);
    expect(PROTOCOL_VERSION).toBe(4);
    expect(conn.hello).toMatchObject({
      protocolVersion: PROTOCOL_VERSION,
      operator: chain.account(OPERATOR).address,
      version: WORKER_VERSION,
      models: [
        {
          modelId: small.model.modelId,
          name: 'aipg-tiny',
          weightsHash: small.model.weightsHash,
          maxConcurrency: 2,
          sampler: CANONICAL_SAMPLER,
        },
        {
          modelId: big.model.modelId,
          name: 'aipg-big',
          weightsHash: big.model.weightsHash,
          maxConcurrency: 1,
          sampler: 'ollama',
        },
      ],
      hardware: { gpus: [] },
    });
    expect(worker.status().models.map((m) => m.sampler)).toEqual([CANONICAL_SAMPLER, 'ollama']);
    expect(worker.status()).toMatchObject({
      state: 'connected',
      workerId: 'w-1',
      owner: chain.account(OWNER).address,
      operator: chain.account(OPERATOR).address,
    });
  });

  it('answers pings', async () => {
    expect(await conn.ping(42)).toBe(42);
  });

  it('runs a job and signs a receipt a gateway can check field by field', async () => {
    const handle = conn.sendJob({ modelId: small.model.modelId, content: 'what is a grid?' });
    const before = Math.floor(Date.now() / 1000);
    const frame = await handle.done;
    if (frame.type !== 'result') throw new Error(`expected a result, got ${JSON.stringify(frame)}`);
    const { job } = handle;
    const promptIds = tokenize(applyTemplate(job.input));
    expect(job.promptTokenIds).toEqual(promptIds); // the gateway's tokenization
    const out = expectedOutput(promptIds, job.params, 8);
    expect(frame.promptTokenIds).toEqual(promptIds);
    expect(frame.outputTokenIds).toEqual(out.ids);
    expect(frame.finishReason).toBe('stop');
    // Ids only: the gateway renders the text.
    expect(Object.keys(rawFrame(conn, job.jobId, 'result')).sort()).toEqual(
      [
        'finishReason',
        'jobId',
        'outputTokenIds',
        'promptTokenIds',
        'receipt',
        'signature',
        'timings',
        'type',
      ].sort(),
    );
    expect(handle.tokens).toEqual([]); // not a streaming job

    const receipt = receiptFromJson(frame.receipt);
    expect(receipt).toEqual({
      jobId: job.jobId,
      gateway: peer.gateway,
      payer: job.payer,
      worker: chain.account(OWNER).address,
      modelId: small.model.modelId,
      requestHash: computeRequestHash(promptIds, job.params, CANONICAL_SAMPLER),
      outputHash: computeOutputHash(out.ids, 'stop'),
      inputUnits: BigInt(promptIds.length),
      outputUnits: BigInt(out.ids.length),
      fee: computeTextFee({
        inputTokens: promptIds.length,
        outputTokens: out.ids.length,
        rates: { inputPerMTokens: RATES.inputPerMTokens, outputPerMTokens: RATES.outputPerMTokens },
      }),
      completedAt: receipt.completedAt,
      confidential: false,
      seq: BigInt(job.seq!),
    });
    expect(Number(receipt.completedAt)).toBeGreaterThanOrEqual(before);
    expect(Number(receipt.completedAt)).toBeLessThanOrEqual(Math.floor(Date.now() / 1000));
    expect(await chain.receiptSignedBy(OPERATOR, receipt, frame.signature)).toBe(true);
    // Signed for this Grid only: another verifying contract does not verify.
    expect(
      await verifyTypedData({
        address: chain.account(OPERATOR).address,
        ...receiptTypedData(receipt, chain.chainId, peer.gateway),
        signature: frame.signature,
      }),
    ).toBe(false);
    expect(conn.invalidFrames).toEqual([]);
  });

  it('charges the confidential premium and stops at maxTokens with finishReason length', async () => {
    const handle = conn.sendJob({
      modelId: big.model.modelId,
      kind: 'completion',
      input: { prompt: 'Once upon a time' },
      params: { maxTokens: 3, temperature: 0.7, topP: 0.9, seed: 7, stop: ['\n'] },
      confidential: true,
    });
    const frame = await handle.done;
    if (frame.type !== 'result') throw new Error(JSON.stringify(frame));
    const promptIds = tokenize('Once upon a time');
    expect(frame.finishReason).toBe('length');
    expect(frame.outputTokenIds).toHaveLength(3);
    const receipt = receiptFromJson(frame.receipt);
    expect(receipt.confidential).toBe(true);
    // Committed with the sampler advertised for the model.
    expect(receipt.requestHash).toBe(computeRequestHash(promptIds, handle.job.params, 'ollama'));
    expect(receipt.outputHash).toBe(computeOutputHash(frame.outputTokenIds, 'length'));
    expect(receipt.fee).toBe(
      computeTextFee({
        inputTokens: promptIds.length,
        outputTokens: 3,
        rates: { inputPerMTokens: RATES.inputPerMTokens, outputPerMTokens: RATES.outputPerMTokens },
        confidential: true,
        confidentialPremiumBps: 2500,
      }),
    );
  });

  it('streams token frames that start the result; the tokens of the read that ended it leave with the result', async () => {
    // The fake engine yields a token every 5 ms and returns right after the sixth: tokens 1–5 leave as
    // frames as they come, the sixth only in the result (it ended the answer in the same turn).
    const handle = conn.sendJob({ modelId: small.model.modelId, stream: true, content: 'stream me [len:6]' });
    const frame = await handle.done;
    if (frame.type !== 'result') throw new Error(JSON.stringify(frame));
    expect(frame.outputTokenIds).toHaveLength(6);
    expect(handle.tokens).toHaveLength(5);
    expect(handle.tokens.flatMap((t) => t.tokenIds)).toEqual(frame.outputTokenIds.slice(0, 5));
    // Token frames carry ids only: no text field on the wire.
    const raw = conn.rawFrames.filter(
      (f) =>
        (f as { jobId?: string; type?: string }).jobId === handle.job.jobId &&
        (f as { type: string }).type === 'token',
    );
    expect(raw).toHaveLength(5);
    for (const f of raw) expect(Object.keys(f as object).sort()).toEqual(['jobId', 'tokenIds', 'type']);
    // Every token frame arrives before the result.
    const order = conn.frames.filter((f) => 'jobId' in f && f.jobId === handle.job.jobId).map((f) => f.type);
    expect(order).toEqual([...Array(5).fill('token'), 'result']);
  });

  it('for a client that reads the answer whole (`tokens: first`), sends the first tokens only, then the result', async () => {
    // Six tokens 5 ms apart: one frame for the first (the gateway's sign of life), none for the rest.
    const handle = conn.sendJob({
      modelId: small.model.modelId,
      stream: true,
      tokens: 'first',
      content: 'whole please [len:6]',
    });
    const frame = await handle.done;
    if (frame.type !== 'result') throw new Error(JSON.stringify(frame));
    expect(frame.outputTokenIds).toHaveLength(6);
    expect(handle.tokens).toHaveLength(1);
    expect(handle.tokens[0]?.tokenIds).toEqual([frame.outputTokenIds[0]]);
  });

  it('sends no token frame for an answer that came whole: the result carries it', async () => {
    // Every token and the end in the same turn (an engine, or a server's single read, that had it all).
    const handle = conn.sendJob({
      modelId: small.model.modelId,
      stream: true,
      content: 'at once [len:4] [burst]',
    });
    const frame = await handle.done;
    if (frame.type !== 'result') throw new Error(JSON.stringify(frame));
    expect(frame.outputTokenIds).toHaveLength(4);
    expect(handle.tokens).toEqual([]);
  });

  it('runs several jobs at once on one connection within each model’s limit, refusing the excess (retryable)', async () => {
    const slow = (modelId: Hex) => conn.sendJob({ modelId, content: 'slow [delay:60]' });
    const jobs = [
      slow(small.model.modelId),
      slow(small.model.modelId),
      slow(small.model.modelId),
      slow(big.model.modelId),
      slow(big.model.modelId),
    ];
    await waitFor(() => small.running === 2 && big.running === 1, 5_000, 'jobs running');
    expect(worker.status().jobs.active).toBe(3);
    expect(worker.status().models.map((m) => m.activeJobs)).toEqual([2, 1]);
    const frames = await Promise.all(jobs.map((j) => j.done));
    expect(frames.map((f) => f.type)).toEqual(['result', 'result', 'job-error', 'result', 'job-error']);
    for (const f of [frames[2], frames[4]]) {
      expect(f).toMatchObject({ type: 'job-error', code: 'WORKER_BUSY', retryable: true });
    }
    expect(small.peakRunning).toBe(2);
    expect(big.peakRunning).toBe(1);
  });

  it('refuses a receipt number it already accepted from this gateway: a protocol error, not a crash', async () => {
    const seq = '7000001';
    const first = await conn.sendJob({ modelId: small.model.modelId, seq }).done;
    expect(first).toMatchObject({ type: 'result', receipt: { seq } });
    const again = conn.sendJob({ modelId: small.model.modelId, seq });
    expect(await again.done).toMatchObject({
      type: 'job-error',
      jobId: again.job.jobId,
      code: 'WORKER_SEQ_REUSED',
      retryable: false,
    });
    // Numbers accepted but still running count too.
    const slow = conn.sendJob({ modelId: small.model.modelId, seq: '7000002', content: 'slow [delay:60]' });
    const twin = await conn.sendJob({ modelId: small.model.modelId, seq: '7000002' }).done;
    expect(twin).toMatchObject({ type: 'job-error', code: 'WORKER_SEQ_REUSED', retryable: false });
    expect(await slow.done).toMatchObject({ type: 'result', receipt: { seq: '7000002' } });
    // The worker keeps serving fresh numbers on the same connection.
    expect(await conn.sendJob({ modelId: small.model.modelId, seq: '7000003' }).done).toMatchObject({
      type: 'result',
    });
    expect(worker.status().state).toBe('connected');
    expect(conn.invalidFrames).toEqual([]);
  });

  it("runs the gateway's prompt ids, not its own reading of the input, and signs them with its sampler", async () => {
    // Ids the fake backend would never derive from this input: the worker runs them as given.
    const gatewayIds = [1, 40, 41, 42, 43, 44];
    const handle = conn.sendJob({
      modelId: small.model.modelId,
      content: 'what is a grid?',
      promptTokenIds: gatewayIds,
    });
    const frame = await handle.done;
    if (frame.type !== 'result') throw new Error(JSON.stringify(frame));
    const out = expectedOutput(gatewayIds, handle.job.params, 8);
    expect(frame.promptTokenIds).toEqual(gatewayIds);
    expect(frame.outputTokenIds).toEqual(out.ids);
    const receipt = receiptFromJson(frame.receipt);
    expect(receipt.requestHash).toBe(computeRequestHash(gatewayIds, handle.job.params, CANONICAL_SAMPLER));
    expect(receipt.requestHash).not.toBe(computeRequestHash(gatewayIds, handle.job.params, 'ollama'));
    expect(receipt.inputUnits).toBe(BigInt(gatewayIds.length));
    expect(await chain.receiptSignedBy(OPERATOR, receipt, frame.signature)).toBe(true);
  });

  it('refuses prompt ids outside the vocabulary for good, and a prompt its backend would tokenize otherwise (retryable), signing nothing', async () => {
    const invalid = conn.sendJob({ modelId: small.model.modelId, promptTokenIds: [1, 40, 600] });
    expect(await invalid.done).toMatchObject({
      type: 'job-error',
      jobId: invalid.job.jobId,
      code: 'PROMPT_TOKENS_INVALID',
      retryable: false,
      message: expect.stringContaining('token 600'),
    });
    const mismatch = conn.sendJob({ modelId: small.model.modelId, content: 'hi [prompt-mismatch]' });
    expect(await mismatch.done).toMatchObject({
      type: 'job-error',
      jobId: mismatch.job.jobId,
      code: 'PROMPT_TOKENS_MISMATCH',
      retryable: true,
    });
    for (const { job } of [invalid, mismatch])
      expect(conn.frames.filter((f) => 'jobId' in f && f.jobId === job.jobId).map((f) => f.type)).toEqual([
        'job-error',
      ]);
    expect(conn.invalidFrames).toEqual([]);
  });

  it('refuses a job for a model it does not serve (retryable)', async () => {
    const frame = await conn.sendJob({ modelId: keccak256(toBytes('some other model')) }).done;
    expect(frame).toMatchObject({ type: 'job-error', code: 'WORKER_MODEL_NOT_SERVED', retryable: true });
  });

  it('answers a score job with SCORE_UNSUPPORTED when the backend cannot score (retryable: another worker may)', async () => {
    const handle = conn.sendScore({
      modelId: big.model.modelId,
      promptTokenIds: [1, 2, 3],
      outputTokenIds: [300, 301],
      topK: 4,
    });
    expect(await handle.done).toMatchObject({
      type: 'job-error',
      jobId: handle.frame.jobId,
      code: 'SCORE_UNSUPPORTED',
      retryable: true,
    });
    const other = await conn.sendScore({
      modelId: keccak256(toBytes('some other model')),
      promptTokenIds: [1],
      outputTokenIds: [],
      topK: 0,
    }).done;
    expect(other).toMatchObject({ type: 'job-error', code: 'WORKER_MODEL_NOT_SERVED', retryable: true });
    expect(conn.invalidFrames).toEqual([]);
  });

  it('aborts the backend on cancel', async () => {
    const handle = conn.sendJob({
      modelId: big.model.modelId,
      stream: true,
      content: 'long [delay:50] [len:200]',
    });
    await waitFor(() => handle.tokens.length >= 2, 5_000, 'first tokens');
    conn.cancel(handle.job.jobId);
    expect(await handle.done).toMatchObject({
      type: 'job-error',
      code: 'WORKER_JOB_CANCELLED',
      retryable: false,
    });
    await waitFor(() => big.running === 0, 2_000, 'backend to stop');
    const streamed = handle.tokens.length;
    await new Promise((r) => setTimeout(r, 150));
    expect(handle.tokens.length).toBe(streamed); // nothing after the cancel
    expect(worker.status().jobs.cancelled).toBe(1);
  });

  it('reports backend failures: retryable before any token was streamed, not after', async () => {
    const before = await conn.sendJob({ modelId: small.model.modelId, content: '[fail-before]' }).done;
    expect(before).toMatchObject({
      type: 'job-error',
      code: 'WORKER_BACKEND_FAILED',
      message: 'backend failed: CUDA error: out of memory',
      retryable: true,
    });
    const streamed = conn.sendJob({ modelId: small.model.modelId, stream: true, content: '[fail-after:2]' });
    expect(await streamed.done).toMatchObject({
      type: 'job-error',
      code: 'WORKER_BACKEND_FAILED',
      retryable: false,
    });
    expect(streamed.tokens).toHaveLength(2);
    // Not streamed: the user saw nothing, so another worker may still run it.
    const quiet = await conn.sendJob({ modelId: small.model.modelId, content: '[fail-after:2]' }).done;
    expect(quiet).toMatchObject({ type: 'job-error', code: 'WORKER_BACKEND_FAILED', retryable: true });
  });

  it('exports Prometheus metrics', async () => {
    const url = worker.status().metricsUrl;
    expect(url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);
    const text = await (await fetch(url as string)).text();
    expect(text).toContain('# TYPE aipg_worker_jobs_total counter');
    expect(text).toMatch(/aipg_worker_jobs_total\{model="aipg-tiny",outcome="completed"\} [1-9]/);
    // One WORKER_BUSY and two WORKER_SEQ_REUSED.
    expect(text).toMatch(/aipg_worker_jobs_total\{model="aipg-tiny",outcome="rejected"\} 3/);
    expect(text).toMatch(/aipg_worker_tokens_total\{model="aipg-tiny",direction="output"\} [1-9]\d*/);
    expect(text).toMatch(/aipg_worker_job_errors_total\{model="aipg-tiny",code="WORKER_BACKEND_FAILED"\} 3/);
    expect(text).toMatch(/aipg_worker_active_jobs\{model="aipg-big"\} 0/);
    expect(text).toMatch(/aipg_worker_gateway_connected 1/);
    expect(text).toMatch(/aipg_worker_job_duration_seconds_count\{model="aipg-tiny"\} [1-9]/);
    const health = await fetch((url as string).replace('/metrics', '/healthz'));
    expect(health.status).toBe(200);
  });

  it('runs a job sent before its receipt number at once, and signs only the number that follows (job-seq)', async () => {
    const ended = (h: { done: Promise<unknown> }) => {
      let over = false;
      void h.done.then(() => {
        over = true;
      });
      return () => over;
    };
    // Generates meanwhile: tokens stream before any number is known; no result until it comes.
    const early = conn.sendJob({ modelId: small.model.modelId, seq: undefined, stream: true });
    expect(early.job.seq).toBeUndefined();
    const earlyOver = ended(early);
    await waitFor(() => early.tokens.length >= 8 && small.running === 0, 5_000, 'the generation');
    expect(earlyOver()).toBe(false);
    conn.sendSeq(early.job.jobId, '7100001');
    const result = await early.done;
    expect(result).toMatchObject({ type: 'result', receipt: { seq: '7100001' } });
    if (result.type !== 'result') throw new Error('no result');
    expect(await chain.receiptSignedBy(OPERATOR, receiptFromJson(result.receipt), result.signature)).toBe(
      true,
    );

    // A number it already signed, sent late: refused like one on the job frame, nothing signed.
    const twin = conn.sendJob({ modelId: small.model.modelId, seq: undefined });
    conn.sendSeq(twin.job.jobId, '7100001');
    expect(await twin.done).toMatchObject({
      type: 'job-error',
      jobId: twin.job.jobId,
      code: 'WORKER_SEQ_REUSED',
      retryable: false,
    });

    // Cancelled while it waits for its number: stopped, nothing signed; a number after that is ignored.
    const waiting = conn.sendJob({ modelId: small.model.modelId, seq: undefined });
    await waitFor(() => small.running === 0 && worker.status().jobs.active === 1, 5_000, 'the wait');
    conn.cancel(waiting.job.jobId);
    expect(await waiting.done).toMatchObject({ type: 'job-error', code: 'WORKER_JOB_CANCELLED' });
    conn.sendSeq(waiting.job.jobId, '7100002');
    // The number was never accepted: a job carrying it runs.
    expect(await conn.sendJob({ modelId: small.model.modelId, seq: '7100002' }).done).toMatchObject({
      type: 'result',
      receipt: { seq: '7100002' },
    });
    expect(
      conn.frames.filter((f) => 'jobId' in f && f.jobId === waiting.job.jobId && f.type === 'result'),
    ).toEqual([]);
    expect(worker.status().state).toBe('connected');
    expect(conn.invalidFrames).toEqual([]);
  });

  it('reconnects and logs in again after the gateway drops the socket, aborting the jobs it carried', async () => {
    const handle = conn.sendJob({ modelId: big.model.modelId, content: 'doomed [delay:50] [len:100]' });
    await waitFor(() => big.running === 1, 5_000, 'job running');
    const relogin = peer.nextWorker();
    conn.drop();
    await waitFor(() => worker.status().state !== 'connected' && 'down', 2_000, 'worker to notice');
    conn = await relogin;
    await worker.ready();
    expect(conn.loginVerified).toBe(true);
    expect(worker.status()).toMatchObject({ state: 'connected', workerId: 'w-2' });
    await waitFor(() => big.running === 0, 2_000, 'dropped job aborted');
    void handle;
    // The new connection works.
    expect((await conn.sendJob({ modelId: small.model.modelId }).done).type).toBe('result');
  });

  it('never logs the operator key; logs one child line per job with its id', () => {
    const log = logLines.join('\n');
    expect(log).not.toContain(chain.account(OPERATOR).privateKey.slice(2));
    expect(log).toMatch(/"jobId":"0x[0-9a-f]{64}","model":"aipg-tiny".*"msg":"job completed"/);
  });

  it('drains on stop: refuses new jobs (retryable), finishes the running one, then closes with 1001', async () => {
    const running = conn.sendJob({ modelId: small.model.modelId, content: 'finish me [delay:40] [len:10]' });
    await waitFor(() => small.running === 1, 5_000, 'job running');
    const stopping = worker.stop();
    expect(worker.status().state).toBe('draining');
    const late = await conn.sendJob({ modelId: big.model.modelId }).done;
    expect(late).toMatchObject({ type: 'job-error', code: 'WORKER_DRAINING', retryable: true });
    const result = await running.done;
    expect(result.type).toBe('result');
    await stopping;
    expect(await conn.closed).toEqual({ code: 1001, reason: 'worker shutting down' });
    expect(worker.status().state).toBe('stopped');
    expect(small.closed && big.closed).toBe(true);
    expect(await worker.stopped).toEqual({ error: undefined });
  });
});

describe('devnet adversaries over the gateway protocol', () => {
  const OPERATOR = 4;
  let worker: Worker;
  let conn: PeerConnection;
  let injectorInner: FakeBackend;
  let overbillerInner: FakeBackend;

  beforeAll(async () => {
    await chain.bondWorker(OPERATOR, '1000');
    injectorInner = createFakeBackend({ name: 'injected-model', tokenDelayMs: 2 });
    overbillerInner = createFakeBackend({ name: 'overbilled-model', tokenDelayMs: 2 });
    await chain.registerModel(injectorInner.model);
    await chain.registerModel(overbillerInner.model);
    const options = await workerOptions({
      chain,
      operatorKey: chain.account(OPERATOR).privateKey,
      gatewayUrl: peer.url,
    });
    const login = peer.nextWorker();
    worker = await startWorker(options, {
      logger: memoryLogger().logger,
      backends: [
        {
          backend: createAdversaryBackend(injectorInner, 'text-injector', undefined, { devnet: true }),
          maxConcurrency: 1,
        },
        {
          backend: createAdversaryBackend(overbillerInner, 'prompt-overbiller', undefined, { devnet: true }),
          maxConcurrency: 1,
        },
      ],
    });
    conn = await login;
    await worker.ready();
  });
  afterAll(async () => {
    await worker?.stop();
  });

  it('text-injector: signs the honest ids, and every token frame and the result carry the injected text', async () => {
    const handle = conn.sendJob({
      modelId: injectorInner.model.modelId,
      stream: true,
      content: 'hi [len:5]',
    });
    const frame = await handle.done;
    if (frame.type !== 'result') throw new Error(JSON.stringify(frame));
    const { job } = handle;
    const out = expectedOutput(job.promptTokenIds, job.params, 5);
    // The ids and the receipt are the honest ones.
    expect(frame.promptTokenIds).toEqual(job.promptTokenIds);
    expect(frame.outputTokenIds).toEqual(out.ids);
    // Streamed as they came, but the last: it ended the answer and left with the result.
    expect(handle.tokens.flatMap((t) => t.tokenIds)).toEqual(out.ids.slice(0, -1));
    const receipt = receiptFromJson(frame.receipt);
    expect(receipt.requestHash).toBe(computeRequestHash(job.promptTokenIds, job.params, CANONICAL_SAMPLER));
    expect(receipt.outputHash).toBe(computeOutputHash(out.ids, 'stop'));
    expect(await chain.receiptSignedBy(OPERATOR, receipt, frame.signature)).toBe(true);
    // The lie is on the wire only: a `text` field the v3 schemas do not know.
    const raw = conn.rawFrames.filter((f) => (f as { jobId?: string }).jobId === job.jobId) as {
      type: string;
      text?: string;
    }[];
    expect(raw.map((f) => f.type)).toEqual([...Array(4).fill('token'), 'result']);
    for (const f of raw) expect(f.text).toBe(INJECTED_TEXT);
    // What the schema keeps (what a v3 gateway reads) has no text at all.
    expect(frame).not.toHaveProperty('text');
    for (const t of handle.tokens) expect(t).not.toHaveProperty('text');
    expect(conn.invalidFrames).toEqual([]);
  });

  it('prompt-overbiller: bills a prompt 51× the gateway’s, with a self-consistent, validly signed receipt', async () => {
    const handle = conn.sendJob({ modelId: overbillerInner.model.modelId, content: 'bill me [len:4]' });
    const frame = await handle.done;
    if (frame.type !== 'result') throw new Error(JSON.stringify(frame));
    const { job } = handle;
    const n = job.promptTokenIds.length;
    const out = expectedOutput(job.promptTokenIds, job.params, 4);
    // The output is honest (it ran the gateway's ids)...
    expect(frame.outputTokenIds).toEqual(out.ids);
    // ...the prompt claimed is not.
    expect(frame.promptTokenIds.slice(0, n)).toEqual(job.promptTokenIds);
    expect(frame.promptTokenIds).toHaveLength((OVERBILL_FACTOR + 1) * n);
    const receipt = receiptFromJson(frame.receipt);
    expect(receipt.inputUnits).toBe(BigInt((OVERBILL_FACTOR + 1) * n));
    expect(receipt.inputUnits).toBeGreaterThan(BigInt(n));
    // Everything in the receipt agrees with the claimed ids, and the signature is valid.
    expect(receipt.requestHash).toBe(computeRequestHash(frame.promptTokenIds, job.params, CANONICAL_SAMPLER));
    expect(receipt.requestHash).not.toBe(
      computeRequestHash(job.promptTokenIds, job.params, CANONICAL_SAMPLER),
    );
    expect(receipt.outputUnits).toBe(BigInt(out.ids.length));
    expect(receipt.fee).toBe(
      computeTextFee({
        inputTokens: (OVERBILL_FACTOR + 1) * n,
        outputTokens: out.ids.length,
        rates: { inputPerMTokens: RATES.inputPerMTokens, outputPerMTokens: RATES.outputPerMTokens },
      }),
    );
    expect(await chain.receiptSignedBy(OPERATOR, receipt, frame.signature)).toBe(true);
    expect(conn.invalidFrames).toEqual([]);
  });
});

describe('a gateway on another chain', () => {
  it('is refused and the worker stops with the reason', async () => {
    await chain.bondWorker(3, '1000');
    const backend = createFakeBackend({ name: 'other-chain-model' });
    await chain.registerModel(backend.model);
    const wrong = await startGatewayPeer({
      chainId: chain.chainId,
      grid: chain.grid,
      challenge: { chainId: 8453 },
    });
    try {
      const options = await workerOptions({
        chain,
        operatorKey: chain.account(3).privateKey,
        gatewayUrl: wrong.url,
      });
      const worker = await startWorker(options, {
        backends: [{ backend, maxConcurrency: 1 }],
        logger: memoryLogger().logger,
      });
      const { error } = await worker.stopped;
      expect(error).toBeInstanceOf(ChainMismatchError);
      expect((error as ChainMismatchError).shortMessage).toBe(
        `gateway settles on chain 8453 at Grid ${chain.grid}, but this worker is configured for chain 31337 at Grid ${chain.grid}`,
      );
      expect(wrong.connections).toHaveLength(0); // it never sent a hello
      expect(wrong.connectionAttempts).toBe(1); // and did not retry
    } finally {
      await wrong.close();
    }
  });
});
