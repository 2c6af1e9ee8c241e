/**
 * Cross-check scoring end to end: the gateway routes a validator's `POST /v1/audit/score` to another
 * real worker (`startWorker` from @aipg/worker, the embedded llama.cpp backend on the `tiny` model
 * @aipg/inference generates) and returns the model's teacher-forced scores of the claimed output.
 * The only test of the gateway that imports @aipg/worker.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerModel } from '@aipg/chain';
import { computeModelId, parseAipg, scoreAttestation, scoreTypedData } from '@aipg/core';
import {
  createLlamaEngine,
  type EnsureModelReturnType,
  ensureModel,
  type LlamaEngine,
} from '@aipg/inference';
import { createWorkerOptions, startWorker, type Worker } from '@aipg/worker';
import { type Address, type Hex, recoverTypedDataAddress } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AUDIT_HEADERS,
  auditRequestMessage,
  createLogger,
  type ScoreResponse,
  type StartGatewayReturnType,
  startGateway,
} from '../src/index.ts';
import {
  createApiKey,
  dropTestSchema,
  roles,
  startTestGrid,
  type TestGrid,
  testGatewayOptions,
} from './helpers/grid.ts';

let dir: string;
let model: EnsureModelReturnType;
let modelId: Hex;
let grid: TestGrid;
let gw: StartGatewayReturnType;
let key: string;
let reference: LlamaEngine;
const workers: { owner: Address; operator: Address; worker: Worker }[] = [];

const validator = privateKeyToAccount(roles.validatorOperator.privateKey);
let lastTimestamp = 0;

async function score(body: Record<string, unknown>): Promise<Response> {
  const path = '/v1/audit/score';
  const timestamp = Math.max(Math.floor(Date.now() / 1000), lastTimestamp + 1);
  lastTimestamp = timestamp;
  const signature = await validator.signMessage({
    message: auditRequestMessage({ method: 'POST', path, timestamp, gateway: gw.gateway }),
  });
  return fetch(`${gw.url}${path}`, {
    method: 'POST',
    headers: {
      [AUDIT_HEADERS.validator]: validator.address,
      [AUDIT_HEADERS.timestamp]: String(timestamp),
      [AUDIT_HEADERS.signature]: signature,
      'content-type': 'application/json',
    },
    body: JSON.stringify(body),
  });
}

async function evidence(jobId: Hex) {
  const path = `/v1/audit/jobs/${jobId}`;
  const timestamp = Math.max(Math.floor(Date.now() / 1000), lastTimestamp + 1);
  lastTimestamp = timestamp;
  const signature = await validator.signMessage({
    message: auditRequestMessage({ method: 'GET', path, timestamp, gateway: gw.gateway }),
  });
  const res = await fetch(`${gw.url}${path}`, {
    headers: {
      [AUDIT_HEADERS.validator]: validator.address,
      [AUDIT_HEADERS.timestamp]: String(timestamp),
      [AUDIT_HEADERS.signature]: signature,
    },
  });
  expect(res.status).toBe(200);
  return (await res.json()) as {
    prompt_token_ids: number[];
    output_token_ids: number[];
    receipt: { worker: Address };
  };
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-gw-score-'));
  model = await ensureModel({ dir, preset: 'tiny' });
  modelId = computeModelId(model.name, model.weightsHash);
  grid = await startTestGrid();
  await registerModel(grid.client(roles.owner.privateKey), {
    grid: grid.grid,
    name: model.name,
    kind: 'text',
    weightsHash: model.weightsHash,
    tokenizerHash: model.tokenizerHash,
    parameterCount: 1_000_000n,
    minVramMb: 0,
    rates: { inputPerMTokens: parseAipg('1'), outputPerMTokens: parseAipg('2'), perMegapixelStep: 0n },
  });
  const options = testGatewayOptions(grid, { 'audit.maxSkewSec': 3_600, 'jobs.firstTokenTimeoutMs': 30_000 });
  gw = await startGateway(options, { logger: createLogger(options.log.level) });
  for (const [owner, operator] of [
    [roles.workerA, roles.operatorA],
    [roles.workerB, roles.operatorB],
  ] as const) {
    const workerOptions = await createWorkerOptions(
      {
        network: 'devnet',
        rpcUrl: grid.rpcUrl,
        grid: grid.grid,
        gateway: gw.workerUrl,
        model: model.name,
        gguf: model.path,
        threads: 1,
        maxConcurrency: 1,
        logLevel: 'silent',
      },
      { AIPG_OPERATOR_KEY: operator.privateKey },
    );
    const worker = await startWorker(workerOptions, {
      hardware: { gpus: [], cpuCores: 2, memoryMb: 4096 },
    });
    workers.push({ owner: owner.address, operator: operator.address, worker });
    await worker.ready();
  }
  key = await createApiKey(gw, roles.payer.privateKey);
  reference = await createLlamaEngine({ modelPath: model.path, threads: 1 });
});

afterAll(async () => {
  for (const { worker } of workers) await worker.stop({ force: true });
  await reference?.close();
  const options = gw?.common.options;
  await gw?.stop();
  if (options) await dropTestSchema(options);
  await grid?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('cross-check scoring with real workers', () => {
  test('a job run by one worker is scored by the other, exactly as the model scores it', async () => {
    const res = await fetch(`${gw.url}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: model.name,
        messages: [{ role: 'user', content: 'tell me about the grid' }],
        max_tokens: 12,
        temperature: 0,
      }),
    });
    expect(res.status).toBe(200);
    const { grid: info } = (await res.json()) as { grid: { job_id: Hex; worker: Address } };
    const job = await evidence(info.job_id);
    expect(job.output_token_ids.length).toBeGreaterThan(0);
    const other = workers.find((w) => w.owner !== info.worker)!;

    for (let i = 0; i < 3; i++) {
      const r = await score({
        job_id: info.job_id,
        model_id: modelId,
        prompt_token_ids: job.prompt_token_ids,
        output_token_ids: job.output_token_ids,
        top_k: 16,
        // The validator names the audited worker; the gateway also knows it from the job.
        exclude_worker: job.receipt.worker,
        // …and the scorer it drew (the last request lets the gateway pick: validators before signed scores).
        ...(i < 2 ? { worker: other.owner } : {}),
      });
      expect(r.status).toBe(200);
      const body = (await r.json()) as ScoreResponse;
      expect(body.worker).toBe(other.owner);
      expect(body.operator).toBe(other.operator);
      expect(body.positions.map((p) => p.token_id)).toEqual(job.output_token_ids);
      // The real worker signed its scores with its operator key, bound to the audited job.
      const attestation = scoreAttestation({
        scoreJobId: body.score_job_id,
        auditedJobId: info.job_id,
        worker: body.worker,
        modelId,
        promptTokenIds: job.prompt_token_ids,
        outputTokenIds: job.output_token_ids,
        topK: 16,
        positions: body.positions.map((p) => ({
          tokenId: p.token_id,
          probability: p.probability,
          rank: p.rank,
          top: p.top.map((t) => ({ tokenId: t.token_id, probability: t.probability })),
        })),
      });
      expect(
        await recoverTypedDataAddress({
          ...scoreTypedData(attestation, gw.chainId, grid.grid),
          signature: body.signature,
        }),
      ).toBe(other.operator);
      // The same teacher-forced pass a re-executing validator runs.
      const local = await reference.score({
        promptTokenIds: job.prompt_token_ids,
        outputTokenIds: job.output_token_ids,
        topK: 16,
      });
      body.positions.forEach((p, j) => {
        const q = local.positions[j]!;
        expect(p.rank).toBe(q.rank);
        expect(p.rank).toBe(0); // greedy output: every token was the most probable one
        expect(p.probability).toBeCloseTo(q.probability, 5);
        expect(p.top.map((t) => t.token_id)).toEqual(q.top.map((t) => t.tokenId));
      });
    }
    expect(other.worker.status().jobs.scored).toBe(3);
    expect(workers.find((w) => w.owner === info.worker)!.worker.status().jobs.scored).toBe(0);
  });

  test('503 when the only other worker is excluded too', async () => {
    const r = await score({
      job_id: `0x${'77'.repeat(32)}`,
      model_id: modelId,
      prompt_token_ids: [1, 2, 3],
      output_token_ids: [4, 5],
      top_k: 4,
      exclude_worker: roles.workerA.address,
    });
    expect(r.status).toBe(200);
    expect(((await r.json()) as { worker: Address }).worker).toBe(roles.workerB.address);
    await workers.find((w) => w.owner === roles.workerB.address)!.worker.stop();
    const gone = await score({
      job_id: `0x${'77'.repeat(32)}`,
      model_id: modelId,
      prompt_token_ids: [1, 2, 3],
      output_token_ids: [4, 5],
      top_k: 4,
      exclude_worker: roles.workerA.address,
    });
    expect(gone.status).toBe(503);
    expect(((await gone.json()) as { error: { code: string } }).error.code).toBe('no_worker_available');
  });
});
