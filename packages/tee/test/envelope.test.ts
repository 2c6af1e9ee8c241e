import { type Address, type Hex, keccak256, toHex } from 'viem';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  EnvelopeError,
  generateTeeKeyPair,
  openChunk,
  openRequest,
  requestAad,
  sealChunk,
  sealRequest,
  type TeeKeyPair,
} from '../src/index.ts';

const WORKER: Address = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const DIGEST: Hex = keccak256(toHex('evidence'));
const OTHER_DIGEST: Hex = keccak256(toHex('other evidence'));
const encode = (s: string) => new TextEncoder().encode(s);
const decode = (b: Uint8Array) => new TextDecoder().decode(b);

let worker: TeeKeyPair;
let stranger: TeeKeyPair;

beforeAll(async () => {
  [worker, stranger] = await Promise.all([generateTeeKeyPair(), generateTeeKeyPair()]);
});

describe('request envelope (HPKE)', () => {
  it('builds the aad of the spec', () => {
    expect(requestAad('tiny-chat', WORKER, true)).toBe(
      'aipg/v1|tiny-chat|0x70997970c51812dc3a010c7d01b50e0d17dc79c8|1',
    );
    expect(requestAad('tiny-chat', WORKER, false).endsWith('|0')).toBe(true);
  });

  it('round trips and gives both sides the same response key', async () => {
    expect(Buffer.from(worker.publicKey, 'base64')).toHaveLength(32);
    const aad = requestAad('tiny-chat', WORKER, false);
    const plaintext = encode(JSON.stringify({ messages: [{ role: 'user', content: 'secret prompt' }] }));
    const sealed = await sealRequest({ publicKey: worker.publicKey, digest: DIGEST, aad, plaintext });
    expect(sealed.enc).toHaveLength(32);
    expect(sealed.responseKey).toHaveLength(32);
    expect(Buffer.from(sealed.ciphertext).includes(Buffer.from('secret prompt'))).toBe(false);
    const opened = await openRequest({ keyPair: worker, digest: DIGEST, aad, ...sealed });
    expect(decode(opened.plaintext)).toContain('secret prompt');
    expect(Buffer.from(opened.responseKey).equals(Buffer.from(sealed.responseKey))).toBe(true);
  });

  it('does not open under another digest, aad or key, nor when tampered', async () => {
    const aad = requestAad('tiny-chat', WORKER, false);
    const sealed = await sealRequest({
      publicKey: worker.publicKey,
      digest: DIGEST,
      aad,
      plaintext: encode('hi'),
    });
    // Thunks: each attempt starts only when awaited (a rejection never goes unhandled meanwhile).
    const attempts = [
      () => openRequest({ keyPair: worker, digest: OTHER_DIGEST, aad, ...sealed }),
      () =>
        openRequest({
          keyPair: worker,
          digest: DIGEST,
          aad: requestAad('tiny-chat', WORKER, true),
          ...sealed,
        }),
      () => openRequest({ keyPair: stranger, digest: DIGEST, aad, ...sealed }),
      () =>
        openRequest({
          keyPair: worker,
          digest: DIGEST,
          aad,
          enc: sealed.enc,
          ciphertext: sealed.ciphertext.map((b, i) => (i === 0 ? b ^ 1 : b)),
        }),
    ];
    for (const attempt of attempts) await expect(attempt()).rejects.toBeInstanceOf(EnvelopeError);
    await expect(
      sealRequest({ publicKey: 'AAAA', digest: DIGEST, aad, plaintext: encode('hi') }),
    ).rejects.toBeInstanceOf(EnvelopeError);
  });
});

describe('response chunks (AES-256-GCM)', () => {
  const key = new Uint8Array(32).fill(7);
  const chunks = ['one', 'two', 'three'].map((s, i, all) =>
    sealChunk(key, i, i === all.length - 1, encode(s)),
  );

  it('round trips in order', () => {
    expect(chunks.map((c, i) => decode(openChunk(key, i, i === 2, c)))).toEqual(['one', 'two', 'three']);
    expect(chunks[0]).toHaveLength(3 + 16);
  });

  it('fails when reordered, truncated, tampered or under another key', () => {
    expect(() => openChunk(key, 0, false, chunks[1]!)).toThrow(EnvelopeError); // reordered
    expect(() => openChunk(key, 1, true, chunks[1]!)).toThrow(EnvelopeError); // truncated: not the final one
    expect(() => openChunk(key, 2, false, chunks[2]!)).toThrow(EnvelopeError); // final flag stripped
    const tampered = chunks[0]!.slice();
    tampered[0]! ^= 1;
    expect(() => openChunk(key, 0, false, tampered)).toThrow(EnvelopeError);
    expect(() => openChunk(new Uint8Array(32), 0, false, chunks[0]!)).toThrow(EnvelopeError);
    expect(() => openChunk(key, 0, false, new Uint8Array(4))).toThrow(EnvelopeError);
    expect(() => sealChunk(key, -1, false, encode('x'))).toThrow(EnvelopeError);
  });
});
