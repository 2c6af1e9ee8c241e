import { generateTeeKeyPair, SimulatedTee, type TeeKeyPair, type VerifiedEvidence } from '@aipg/tee';
import OpenAI from 'openai';
import type { Address, Hex } from 'viem';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfidentialError, type ConfidentialFetchOptions, confidentialFetch } from '../src/index.ts';
import { startGateway, type TestGateway } from './gateway.ts';

const WORKER: Address = '0x90F79bf6EB2c4f870365E785982E1f101E93b906';
const SIGNER: Address = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const PROMPT = 'my secret prompt about the merger';

let tee: SimulatedTee;
let other: SimulatedTee;
let keyPair: TeeKeyPair;
let gateway: TestGateway;

const chatRequests = () => gateway.log.filter((r) => r.path === '/v1/chat/completions');
const challenges = () => gateway.log.filter((r) => r.path === '/v1/attestation');

function client(options: ConfidentialFetchOptions = {}): OpenAI {
  return new OpenAI({
    baseURL: gateway.url,
    apiKey: 'sk-test',
    maxRetries: 0,
    fetch: confidentialFetch({ anchors: tee.anchors, ...options }),
  });
}

const ask = (openai: OpenAI) =>
  openai.chat.completions.create({
    model: 'tiny-chat',
    max_tokens: 32,
    messages: [{ role: 'user', content: PROMPT }],
  });

async function streamed(openai: OpenAI): Promise<string> {
  const stream = await openai.chat.completions.create({
    model: 'tiny-chat',
    max_tokens: 32,
    stream: true,
    stream_options: { include_usage: true },
    messages: [{ role: 'user', content: PROMPT }],
  });
  let text = '';
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? '';
  return text;
}

async function rejection(promise: Promise<unknown>): Promise<ConfidentialError> {
  const e = await promise.then(
    () => undefined,
    (error: unknown) => error,
  );
  // The OpenAI client may wrap what fetch or the body stream threw; find our error in the cause chain.
  for (let cur: unknown = e; cur; cur = (cur as { cause?: unknown }).cause) {
    if (cur instanceof ConfidentialError) return cur;
  }
  throw new Error(`expected a ConfidentialError, got ${String(e)}`);
}

beforeAll(async () => {
  [tee, other, keyPair] = await Promise.all([
    SimulatedTee.create(),
    SimulatedTee.create(),
    generateTeeKeyPair(),
  ]);
});

async function start(evidenceFor?: (nonce: Hex) => Promise<unknown>): Promise<void> {
  gateway = await startGateway({
    tee,
    worker: { address: WORKER, signer: SIGNER, keyPair },
    ...(evidenceFor ? { evidenceFor } : {}),
  });
}

afterEach(async () => {
  await gateway?.close();
});

afterAll(async () => {
  await gateway?.close();
});

describe('confidentialFetch with the OpenAI client', () => {
  it('round trips a non-streamed completion; the gateway never sees the prompt or the answer', async () => {
    await start();
    const attested: (VerifiedEvidence & { worker: Address })[] = [];
    const completion = await ask(client({ onAttested: (v) => attested.push(v) }));
    expect(completion.choices[0]?.message.content).toBe(`You said: ${PROMPT}`);
    expect(completion.usage?.total_tokens).toBe(17);
    expect(completion).not.toHaveProperty('encrypted');
    expect(attested).toHaveLength(1);
    expect(attested[0]).toMatchObject({
      worker: WORKER,
      signer: SIGNER,
      tcbStatus: 'UpToDate',
      simulated: true,
    });

    const [request] = chatRequests();
    const sent = JSON.parse(request!.body);
    expect(sent).toMatchObject({ model: 'tiny-chat', stream: false, max_tokens: 32, confidential: true });
    expect(sent.messages).toBeUndefined();
    expect(sent.encrypted).toMatchObject({ worker: WORKER, attestation: attested[0]!.digest });
    const everything = JSON.stringify(gateway.log);
    expect(everything).not.toContain('secret prompt');
    expect(everything).not.toContain('You said');
    // The challenge carried the client's own fresh nonce.
    expect(challenges()[0]!.path).toBe('/v1/attestation');
  });

  it('round trips a streamed completion', async () => {
    await start();
    expect(await streamed(client())).toBe(`You said: ${PROMPT}`);
    const sent = JSON.parse(chatRequests()[0]!.body);
    expect(sent).toMatchObject({ stream: true, stream_options: { include_usage: true }, confidential: true });
    expect(JSON.stringify(gateway.log)).not.toContain('secret prompt');
  });

  it('caches the attested worker: a second request skips the challenge', async () => {
    await start();
    const openai = client();
    await ask(openai);
    await streamed(openai);
    expect(challenges()).toHaveLength(1);
    expect(chatRequests()).toHaveLength(2);
    // cacheSeconds 0: every request challenges.
    const eager = client({ cacheSeconds: 0 });
    await ask(eager);
    await ask(eager);
    expect(challenges()).toHaveLength(3);
  });

  it('re-challenges once when the pinned worker is gone (503 worker_unavailable)', async () => {
    await start();
    const openai = client();
    await ask(openai);
    gateway.unavailable = 1;
    const completion = await ask(openai);
    expect(completion.choices[0]?.message.content).toBe(`You said: ${PROMPT}`);
    expect(challenges()).toHaveLength(2);
    expect(chatRequests()).toHaveLength(3);
    gateway.unavailable = 2; // gone again after the fresh challenge: the error reaches the caller
    await expect(ask(openai)).rejects.toMatchObject({ status: 503, code: 'worker_unavailable' });
  });

  it('sends nothing when the evidence is under another root', async () => {
    await start();
    const error = await rejection(ask(client({ anchors: other.anchors })));
    expect(error.code).toBe('verification_failed');
    expect(error.failures).toEqual([expect.objectContaining({ worker: WORKER, code: 'quote_invalid' })]);
    expect(challenges()).toHaveLength(1);
    expect(chatRequests()).toHaveLength(0);
  });

  it('refuses replayed evidence made for another nonce', async () => {
    const old = await tee.attest({
      hpkePublicKey: keyPair.publicKey,
      signer: SIGNER,
      nonce: `0x${'11'.repeat(32)}`,
    });
    await start(async () => old);
    const error = await rejection(ask(client()));
    expect(error.code).toBe('verification_failed');
    expect(error.failures[0]?.code).toBe('nonce');
    expect(chatRequests()).toHaveLength(0);
  });

  it('refuses a listed signer that is not the attested one, and an empty listing', async () => {
    await start(async (nonce) =>
      tee.attest({
        hpkePublicKey: keyPair.publicKey,
        signer: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
        nonce,
      }),
    );
    const error = await rejection(ask(client()));
    expect(error.failures[0]?.code).toBe('signer_mismatch');
    gateway.empty = true;
    expect((await rejection(ask(client()))).code).toBe('no_attested_worker');
    expect(chatRequests()).toHaveLength(0);
  });

  it("passes the gateway's errors on the challenge through (nothing sent)", async () => {
    await start();
    const openai = new OpenAI({
      baseURL: gateway.url.replace('/v1', '/v2'),
      apiKey: 'sk-test',
      maxRetries: 0,
      fetch: confidentialFetch({ anchors: tee.anchors }),
    });
    await expect(ask(openai)).rejects.toMatchObject({ status: 404, code: 'not_found' });
    expect(chatRequests()).toHaveLength(0);
  });

  it.each([
    ['reorder', 'bad_response'],
    ['truncate', 'bad_response'],
    ['flip', 'decrypt_failed'],
    ['plaintext', 'plaintext_refused'],
  ] as const)('errors a %s stream', async (tamper, code) => {
    await start();
    gateway.tamper = tamper;
    const error = await rejection(streamed(client()));
    expect(error.code).toBe(code);
  });

  it('refuses an unencrypted non-streamed answer', async () => {
    await start();
    gateway.tamper = 'plaintext';
    expect((await rejection(ask(client()))).code).toBe('plaintext_refused');
  });

  it('passes other requests through untouched', async () => {
    await start();
    const models = await client().models.list();
    expect(models.data.map((m) => m.id)).toEqual(['tiny-chat']);
    expect(challenges()).toHaveLength(0);
  });
});
