/**
 * The worker's side of confidential jobs (docs/confidential.md), on the real protocol: its hello carries
 * evidence for the login challenge that verifies under the simulated root, it opens a sealed request
 * only when sealed to its own evidence, model, address and stream flag, answers with sealed chunks the
 * client opens, and signs a receipt committing to the evidence, the sealed request and the chunks. A
 * gateway replaying a sealed request gets no second receipt; a worker in no TEE takes no sealed job.
 */
import {
  confidentialRequestHash,
  receiptFromJson,
  receiptTypedData,
  type SealedJobMessage,
  sealedOutputHash,
  sealedRequestHash,
  teeEvidenceDigest,
  type WorkerToGateway,
} from '@aipg/core';
import { openChunk, requestAad, SimulatedTee, sealRequest, verifyEvidence } from '@aipg/tee';
import { type Address, type Hex, keccak256, toBytes, verifyTypedData } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSimulatedWorkerTee, startWorker, type Worker } from '../../src/index.ts';
import { setupChain, type TestChain } from './helpers/chain.ts';
import { createFakeBackend, type FakeBackend } from './helpers/fake-backend.ts';
import { type GatewayPeer, type PeerConnection, startGatewayPeer } from './helpers/gateway-peer.ts';
import { memoryLogger, waitFor, workerOptions } from './helpers/worker.ts';

const OWNER = 3;
const OPERATOR = 4;
const SECRET = 'the launch code is 0000';

let chain: TestChain;
let peer: GatewayPeer;
let tee: SimulatedTee;
let backend: FakeBackend;
let worker: Worker;
let conn: PeerConnection;
let logLines: string[];
let seq = 1_000;

beforeAll(async () => {
  chain = await setupChain();
  peer = await startGatewayPeer({ chainId: chain.chainId, grid: chain.grid, client: chain.publicClient });
  tee = await SimulatedTee.create();
  await chain.bondWorker(OWNER, '1000', chain.account(OPERATOR).address);
  backend = createFakeBackend({ name: 'aipg-sealed', tokenDelayMs: 2 });
  await chain.registerModel(backend.model);
  const options = await workerOptions({
    chain,
    operatorKey: chain.account(OPERATOR).privateKey,
    gatewayUrl: peer.url,
  });
  const { logger, lines } = memoryLogger();
  logLines = lines;
  const login = peer.nextWorker();
  worker = await startWorker(options, {
    logger,
    backends: [{ backend, maxConcurrency: 2 }],
    tee: await createSimulatedWorkerTee(tee.serialize(), chain.account(OPERATOR).address),
  });
  conn = await login;
  await worker.ready();
});

afterAll(async () => {
  await worker?.stop();
  await peer?.close();
  await chain?.stop();
});

const owner = () => chain.account(OWNER).address as Address;

async function sealed(
  body: unknown,
  opts: { stream?: boolean; model?: string; digest?: Hex } = {},
): Promise<{ frame: SealedJobMessage; responseKey: Uint8Array }> {
  const evidence = conn.hello.tee!;
  const digest = opts.digest ?? teeEvidenceDigest(evidence);
  const stream = opts.stream ?? false;
  const s = await sealRequest({
    publicKey: evidence.hpkePublicKey,
    digest,
    aad: requestAad(opts.model ?? backend.model.name, owner(), stream),
    plaintext: new TextEncoder().encode(JSON.stringify(body)),
  });
  seq += 1;
  return {
    responseKey: s.responseKey,
    frame: {
      type: 'sealed-job',
      jobId: keccak256(toBytes(`sealed ${seq}`)),
      modelId: backend.model.modelId,
      model: backend.model.name,
      payer: chain.account(0).address,
      attestation: digest,
      enc: Buffer.from(s.enc).toString('base64'),
      ciphertext: Buffer.from(s.ciphertext).toString('base64'),
      stream,
      maxTokens: 16,
      maxInputTokens: 4_000,
      pricing: {
        inputPerMTokens: '1000000000000000000',
        outputPerMTokens: '3000000000000000000',
        confidentialPremiumBps: 2_500,
      },
      seq: String(seq),
    },
  };
}

function send(frame: SealedJobMessage) {
  conn.socket.send(JSON.stringify(frame));
}

async function end(jobId: Hex): Promise<WorkerToGateway> {
  return waitFor(() =>
    conn.frames.find(
      (f) => 'jobId' in f && f.jobId === jobId && (f.type === 'sealed-result' || f.type === 'job-error'),
    ),
  );
}

const chunksOf = (jobId: Hex) =>
  conn.frames.filter(
    (f): f is Extract<WorkerToGateway, { type: 'sealed-chunk' }> =>
      f.type === 'sealed-chunk' && f.jobId === jobId,
  );

describe('a worker in a (simulated) TEE', () => {
  it('logs in with evidence for the challenge nonce, binding its operator key', async () => {
    const evidence = conn.hello.tee!;
    expect(evidence.simulated).toBe(true);
    const v = await verifyEvidence(evidence, { anchors: tee.anchors, expectedNonce: conn.challenge.nonce });
    expect(v.signer.toLowerCase()).toBe(chain.account(OPERATOR).address.toLowerCase());
  });

  it('opens a sealed request, answers sealed, and signs a receipt committing to all of it', async () => {
    const { frame, responseKey } = await sealed({
      messages: [{ role: 'user', content: SECRET }],
      temperature: 0,
    });
    send(frame);
    const result = await end(frame.jobId);
    expect(result.type).toBe('sealed-result');
    if (result.type !== 'sealed-result') return;
    const chunks = chunksOf(frame.jobId);
    expect(chunks.map((c) => [c.seq, c.final])).toEqual([[0, true]]);
    const ct = new Uint8Array(Buffer.from(chunks[0]!.ciphertext, 'base64'));
    const answer = JSON.parse(new TextDecoder().decode(openChunk(responseKey, 0, true, ct))) as {
      choices: { message: { content: string } }[];
    };
    expect(answer.choices[0]!.message.content.length).toBeGreaterThan(0);
    const receipt = receiptFromJson(result.receipt);
    expect(receipt.confidential).toBe(true);
    expect(receipt.requestHash).toBe(
      confidentialRequestHash(
        frame.attestation,
        sealedRequestHash(Buffer.from(frame.enc, 'base64'), Buffer.from(frame.ciphertext, 'base64')),
      ),
    );
    expect(receipt.outputHash).toBe(sealedOutputHash([ct]));
    expect(
      await verifyTypedData({
        address: chain.account(OPERATOR).address,
        ...receiptTypedData(receipt, chain.chainId, chain.grid),
        signature: result.signature,
      }),
    ).toBe(true);
    // Nothing of the prompt or the answer in the worker's logs.
    expect(logLines.join('\n')).not.toContain('launch code');
    expect(logLines.join('\n')).not.toContain(answer.choices[0]!.message.content.trim());
  });

  it('streams sealed chunks in order, the last one final', async () => {
    const { frame, responseKey } = await sealed(
      { messages: [{ role: 'user', content: SECRET }] },
      { stream: true },
    );
    send(frame);
    expect((await end(frame.jobId)).type).toBe('sealed-result');
    const chunks = chunksOf(frame.jobId);
    expect(chunks.length).toBeGreaterThan(1);
    expect(chunks.map((c) => c.seq)).toEqual(chunks.map((_, i) => i));
    expect(chunks.map((c) => c.final)).toEqual(chunks.map((_, i) => i === chunks.length - 1));
    let text = '';
    for (const c of chunks) {
      const p = JSON.parse(
        new TextDecoder().decode(openChunk(responseKey, c.seq, c.final, Buffer.from(c.ciphertext, 'base64'))),
      ) as { choices: { delta: { content?: string } }[] };
      text += p.choices[0]!.delta.content ?? '';
    }
    expect(text.length).toBeGreaterThan(0);
  });

  it('a gateway replaying a sealed request gets no second receipt', async () => {
    const { frame } = await sealed({ messages: [{ role: 'user', content: 'once' }], temperature: 0 });
    send(frame);
    expect((await end(frame.jobId)).type).toBe('sealed-result');
    seq += 1;
    const replay = { ...frame, jobId: keccak256(toBytes(`replay ${seq}`)), seq: String(seq) };
    send(replay);
    const refused = await end(replay.jobId);
    expect(refused).toMatchObject({ type: 'job-error', code: 'SEALED_REQUEST_INVALID', retryable: false });
  });

  it('refuses a request sealed for another model, another evidence, or that is no chat request', async () => {
    const other = await sealed({ messages: [{ role: 'user', content: 'x' }] }, { model: 'another-model' });
    const foreign = await sealed(
      { messages: [{ role: 'user', content: 'x' }] },
      { digest: keccak256(toBytes('not mine')) },
    );
    const junk = await sealed({ prompt: 42 });
    for (const { frame } of [other, foreign, junk]) {
      send(frame);
      expect(await end(frame.jobId)).toMatchObject({ type: 'job-error', code: 'SEALED_REQUEST_INVALID' });
    }
    // The refusals name what was wrong, never the content.
    const junkError = (await end(junk.frame.jobId)) as { message: string };
    expect(junkError.message).not.toContain('42');
  });
});

describe('a worker in no TEE', () => {
  it('takes no sealed job', async () => {
    const plainOwner = 5;
    const plainOperator = 6;
    await chain.bondWorker(plainOwner, '1000', chain.account(plainOperator).address);
    const login = peer.nextWorker();
    const plain = await startWorker(
      await workerOptions({
        chain,
        operatorKey: chain.account(plainOperator).privateKey,
        gatewayUrl: peer.url,
      }),
      {
        logger: memoryLogger().logger,
        backends: [{ backend: createFakeBackend({ name: 'aipg-sealed' }), maxConcurrency: 1 }],
      },
    );
    const c = await login;
    await plain.ready();
    try {
      expect(c.hello.tee).toBeUndefined();
      const { frame } = await sealed({ messages: [{ role: 'user', content: 'x' }] });
      c.socket.send(JSON.stringify(frame));
      const refused = await waitFor(() =>
        c.frames.find((f) => 'jobId' in f && f.jobId === frame.jobId && f.type === 'job-error'),
      );
      expect(refused).toMatchObject({ code: 'WORKER_TEE_UNAVAILABLE', retryable: false });
    } finally {
      await plain.stop();
    }
  });
});
