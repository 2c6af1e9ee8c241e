/**
 * The confidential tier end to end (docs/confidential.md): a real worker (`startWorker`, the embedded
 * llama.cpp backend on the generated `tiny` model) in a simulated TEE, a gateway trusting only that
 * simulation's root, and the official `openai` client through `confidentialFetch`. The prompt and the
 * answer must never reach the gateway's database or logs; the fee carries the on-chain premium.
 */
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { registerModel } from '@aipg/chain';
import { ConfidentialError, confidentialFetch } from '@aipg/confidential';
import { computeTextFee, parseAipg, teeEvidenceDigest } from '@aipg/core';
import { type EnsureModelReturnType, ensureModel } from '@aipg/inference';
import { generateTeeKeyPair, SimulatedTee, serializeAnchors } from '@aipg/tee';
import {
  createLlamaCppBackend,
  createWorkerOptions,
  type InferenceBackend,
  startWorker,
  type Worker,
  type WorkerTee,
} from '@aipg/worker';
import OpenAI from 'openai';
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createLogger, type StartGatewayReturnType, startGateway } from '../src/index.ts';
import {
  createApiKey,
  dropTestSchema,
  roles,
  startTestGrid,
  type TestGrid,
  testGatewayOptions,
} from './helpers/grid.ts';

const RATES = { inputPerMTokens: parseAipg('1'), outputPerMTokens: parseAipg('2'), perMegapixelStep: 0n };
/** A prompt no other test sends: found anywhere in the gateway's data or logs, it leaked. */
const SECRET = 'zebra-quartz-7781 is my bank PIN';

let dir: string;
let model: EnsureModelReturnType;
let grid: TestGrid;
let gw: StartGatewayReturnType;
let key: string;
let tee: SimulatedTee;
const logs: string[] = [];
const workers: { owner: Address; worker: Worker }[] = [];
let plainWorkerOptions: Awaited<ReturnType<typeof createWorkerOptions>>;
let teeWorkerOptions: Awaited<ReturnType<typeof createWorkerOptions>>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-gw-confidential-'));
  model = await ensureModel({ dir, preset: 'tiny' });
  tee = await SimulatedTee.create();
  const anchorsFile = join(dir, 'anchors.json');
  const rootFile = join(dir, 'simulated-tee.json');
  await writeFile(anchorsFile, serializeAnchors(tee.anchors));
  await writeFile(rootFile, tee.serialize());
  grid = await startTestGrid();
  await registerModel(grid.client(roles.owner.privateKey), {
    grid: grid.grid,
    name: model.name,
    kind: 'text',
    weightsHash: model.weightsHash,
    tokenizerHash: model.tokenizerHash,
    parameterCount: 1_000_000n,
    minVramMb: 0,
    rates: RATES,
  });
  const options = testGatewayOptions(grid, {
    'tee.anchorsFile': anchorsFile,
    'jobs.firstTokenTimeoutMs': 30_000,
    'settlement.minReceipts': 1_000,
    'tee.recheckMs': 1_000,
    // The test polls the public listing; the per-address limit is not what it tests.
    'rateLimit.anonymousRequestsPerMinute': 100_000,
    logLevel: 'trace',
  });
  gw = await startGateway(options, {
    logger: createLogger('trace', { write: (line: string) => logs.push(line) }),
  });
  // Worker A in the simulated TEE; worker B an ordinary one.
  for (const [owner, operator, inTee] of [
    [roles.workerA, roles.operatorA, true],
    [roles.workerB, roles.operatorB, false],
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
        ...(inTee ? { teeSimulated: rootFile } : {}),
      },
      { AIPG_OPERATOR_KEY: operator.privateKey },
    );
    if (inTee) teeWorkerOptions = workerOptions;
    else plainWorkerOptions = workerOptions;
    const worker = await startWorker(workerOptions, { hardware: { gpus: [], cpuCores: 2, memoryMb: 4096 } });
    workers.push({ owner: owner.address, worker });
    await worker.ready();
  }
  key = await createApiKey(gw, roles.payer.privateKey);
  // The login evidence is verified after `welcome`: wait for the listing to say so.
  for (;;) {
    const r = (await (await fetch(`${gw.url}/v1/attestation`)).json()) as { data: { status: string }[] };
    if (r.data.some((w) => w.status === 'valid')) break;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
});

afterAll(async () => {
  for (const { worker } of workers) await worker.stop({ force: true });
  const options = gw?.common.options;
  await gw?.stop();
  if (options) await dropTestSchema(options);
  await grid?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

function client(anchors = tee.anchors) {
  return new OpenAI({
    apiKey: key,
    baseURL: `${gw.url}/v1`,
    maxRetries: 0,
    fetch: confidentialFetch({ anchors }),
  });
}

/** What the public attestation listing says of `owner`'s worker (undefined while it lists none). */
async function attestationOf(owner: Address) {
  const r = (await (await fetch(`${gw.url}/v1/attestation?evidence=false`)).json()) as {
    data: { worker: string; status: string; error: string | null }[];
  };
  return r.data.find((w) => w.worker.toLowerCase() === owner.toLowerCase());
}

/** Every row of every table of the gateway's schema, as text. */
async function dumpDatabase(): Promise<string> {
  const db = gw.db;
  const names = (await db.query(
    "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'",
  )) as { table_name: string }[];
  let out = '';
  for (const { table_name } of names) out += JSON.stringify(await db.query(`SELECT * FROM "${table_name}"`));
  return out;
}

describe('confidential chat through the official openai client', () => {
  let answer = '';

  test('the attestation listing names the TEE worker only, labelled simulated', async () => {
    const r = (await (await fetch(`${gw.url}/v1/attestation?evidence=false`)).json()) as {
      confidential_premium_bps: number;
      data: { worker: string; status: string; simulated: boolean; expires_at: number }[];
    };
    expect(r.data.map((w) => w.worker.toLowerCase())).toEqual([roles.workerA.address.toLowerCase()]);
    expect(r.data[0]).toMatchObject({ status: 'valid', simulated: true });
    expect(r.data[0]!.expires_at).toBeGreaterThan(Date.now() / 1000);
    expect(r.confidential_premium_bps).toBe(2_500);
  });

  test('non-streaming: the decrypted answer, the premium in the fee, a confidential receipt', async () => {
    const r = await client().chat.completions.create({
      model: model.name,
      messages: [{ role: 'user', content: SECRET }],
      max_tokens: 12,
      temperature: 0,
    });
    answer = r.choices[0]?.message.content ?? '';
    expect(answer.length).toBeGreaterThan(0);
    expect(r.choices[0]?.finish_reason).toMatch(/^(stop|length)$/);
    const info = (r as unknown as { grid: { worker: string; fee_wei: string; confidential: boolean } }).grid;
    expect(info.worker.toLowerCase()).toBe(roles.workerA.address.toLowerCase());
    expect(info.confidential).toBe(true);
    const usage = r.usage!;
    const plain = computeTextFee({
      inputTokens: usage.prompt_tokens,
      outputTokens: usage.completion_tokens,
      rates: RATES,
    });
    const withPremium = computeTextFee({
      inputTokens: usage.prompt_tokens,
      outputTokens: usage.completion_tokens,
      rates: RATES,
      confidential: true,
      confidentialPremiumBps: 2_500,
    });
    expect(BigInt(info.fee_wei)).toBe(withPremium);
    expect(withPremium).toBeGreaterThan(plain);
  });

  test('streaming: the same answer, chunk by chunk', async () => {
    const stream = await client().chat.completions.create({
      model: model.name,
      messages: [{ role: 'user', content: SECRET }],
      max_tokens: 12,
      temperature: 0,
      stream: true,
    });
    let text = '';
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta?.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(text).toBe(answer);
    expect(finish).toMatch(/^(stop|length)$/);
  });

  test('the receipts settle on chain; neither database nor logs hold the prompt or the answer', async () => {
    await gw.settleNow();
    const dump = await dumpDatabase();
    expect(dump).toContain('"confidential":true');
    const everything = dump + logs.join('');
    expect(everything).not.toContain('zebra-quartz');
    expect(everything).not.toContain(answer.trim());
    const rows = await gw.db.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM receipts WHERE confidential AND batch_id IS NOT NULL',
    );
    expect(rows[0]!.n).toBe(2);
  });

  test('evidence under another root is refused by the client, which sends nothing', async () => {
    const other = await SimulatedTee.create();
    const jobs = async () => (await gw.db.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs'))[0]!.n;
    const before = await jobs();
    const error = await client(other.anchors)
      .chat.completions.create({
        model: model.name,
        messages: [{ role: 'user', content: SECRET }],
        max_tokens: 4,
      })
      .catch((e: unknown) => e);
    // The openai client wraps what its fetch throws as a connection error.
    const cause = (error as { cause?: unknown }).cause;
    expect(cause).toBeInstanceOf(ConfidentialError);
    expect((cause as ConfidentialError).code).toBe('verification_failed');
    // No job was written: the request never left the client.
    expect(await jobs()).toBe(before);
  });

  test('the gateway refuses plaintext with confidential: true, and a worker that is not attested', async () => {
    const post = (body: unknown) =>
      fetch(`${gw.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
      });
    const plain = await post({
      model: model.name,
      confidential: true,
      messages: [{ role: 'user', content: 'hi' }],
    });
    expect(plain.status).toBe(400);
    const envelope = {
      enc: Buffer.alloc(32).toString('base64'),
      ciphertext: Buffer.alloc(48).toString('base64'),
    };
    const toPlainWorker = await post({
      model: model.name,
      confidential: true,
      encrypted: { worker: roles.workerB.address, attestation: `0x${'11'.repeat(32)}`, ...envelope },
    });
    expect(toPlainWorker.status).toBe(503);
    // Async jobs are not offered confidentially: refused, never run in clear.
    const asyncJob = await fetch(`${gw.url}/v1/jobs`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        type: 'chat.completion',
        request: { model: model.name, confidential: true, messages: [{ role: 'user', content: 'hi' }] },
      }),
    });
    expect(asyncJob.status).toBe(400);
    expect(((await toPlainWorker.json()) as { error: { code: string } }).error.code).toBe(
      'worker_unavailable',
    );
  });

  test('an enclave sealing more chunks than max_tokens allows is cut off there: the client gets an error, nothing is charged', async () => {
    // Worker A comes back (in its TEE) with a backend that reports 40 tokens more than it generated:
    // its enclave seals a chunk for each.
    const at = workers.findIndex((w) => w.owner === roles.workerA.address);
    await workers[at]!.worker.stop({ force: true });
    const inner = createLlamaCppBackend({ name: model.name, gguf: model.path, threads: 1 });
    const flooding = new Proxy(inner, {
      get(target, key) {
        if (key !== 'generate') return Reflect.get(target, key, target);
        const generate: InferenceBackend['generate'] = async (request) => {
          const result = await target.generate(request);
          const word = target.tokenizer!().tokenize(' grid')[0]!;
          for (let i = 0; i < 40; i++) request.onToken?.({ tokenIds: [word] });
          return result;
        };
        return generate;
      },
    });
    const restarted = await startWorker(teeWorkerOptions, {
      hardware: { gpus: [], cpuCores: 2, memoryMb: 4096 },
      backends: [{ backend: flooding, maxConcurrency: 1 }],
    });
    workers[at] = { owner: roles.workerA.address, worker: restarted };
    await restarted.ready();
    // Its login evidence is verified after `welcome`: clients find it once the listing says so.
    while ((await attestationOf(roles.workerA.address))?.status !== 'valid')
      await new Promise((resolve) => setTimeout(resolve, 50));
    const balance = async () =>
      (await (
        await fetch(`${gw.url}/v1/balance`, { headers: { authorization: `Bearer ${key}` } })
      ).json()) as {
        unsettled: { wei: string };
        reserved: { wei: string };
      };
    const before = await balance();
    let chunks = 0;
    const error = await (async () => {
      const stream = await client().chat.completions.create({
        model: model.name,
        messages: [{ role: 'user', content: SECRET }],
        max_tokens: 4,
        temperature: 0,
        stream: true,
      });
      for await (const _ of stream) chunks += 1;
    })().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(Error);
    expect(String((error as Error).message)).toMatch(/more than max_tokens \+ 2 \(6\) sealed chunks/);
    // What reached the client: at most the 6 chunks an answer of 4 tokens can take.
    expect(chunks).toBeLessThanOrEqual(6);
    expect(await balance()).toEqual(before);
  });

  test('a worker whose re-check fails stops getting confidential jobs, and clients are told', async () => {
    // Worker B comes back in a TEE that later turns to debug mode (its evidence then fails the policy).
    const b = workers.findIndex((w) => w.owner === roles.workerB.address);
    await workers[b]!.worker.stop({ force: true });
    const keyPair = await generateTeeKeyPair();
    const made = new Set<string>();
    let debug = false;
    const failing: WorkerTee = {
      keyPair,
      simulated: true,
      async attest(nonce) {
        const e = await tee.attest({
          hpkePublicKey: keyPair.publicKey,
          signer: roles.operatorB.address,
          nonce,
          debug,
        });
        made.add(teeEvidenceDigest(e));
        return e;
      },
      knows: (d) => made.has(d.toLowerCase()),
    };
    const restarted = await startWorker(plainWorkerOptions, {
      hardware: { gpus: [], cpuCores: 2, memoryMb: 4096 },
      tee: failing,
    });
    workers[b] = { owner: roles.workerB.address, worker: restarted };
    await restarted.ready();
    const statusOf = () => attestationOf(roles.workerB.address);
    while ((await statusOf())?.status !== 'valid') await new Promise((resolve) => setTimeout(resolve, 50));
    debug = true;
    // The next re-check (every second here) gets debug evidence: refused, and the worker is out.
    let status = await statusOf();
    while (status?.status !== 'invalid') {
      await new Promise((resolve) => setTimeout(resolve, 100));
      status = await statusOf();
    }
    expect(status.error).toMatch(/^debug/);
    // Worker A is still attested; stop it too: no attested worker is left for the model.
    const a = workers.find((w) => w.owner === roles.workerA.address)!;
    await a.worker.stop({ force: true });
    const error = await client()
      .chat.completions.create({
        model: model.name,
        messages: [{ role: 'user', content: SECRET }],
        max_tokens: 4,
      })
      .catch((e: unknown) => e);
    const cause = (error as { cause?: unknown }).cause;
    expect(cause).toBeInstanceOf(ConfidentialError);
    expect((cause as ConfidentialError).code).toBe('no_attested_worker');
  });
});
