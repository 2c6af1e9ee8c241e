/**
 * The confidential envelopes (docs/confidential.md "The encrypted request/response").
 *
 * Request: HPKE base mode (RFC 9180), DHKEM(X25519, HKDF-SHA256) / HKDF-SHA256 / AES-128-GCM, to the
 * worker's attested key, with `info = "aipg/v1 request" ‖ digest` (the evidence digest, 32 bytes) and
 * `aad = "aipg/v1|model|worker|stream"`. Both sides export `responseKey = export("aipg/v1 response", 32)`.
 *
 * Response: each chunk is AES-256-GCM under `responseKey`, nonce `0x00000000 ‖ u64be(seq)`,
 * aad `"aipg/v1 response" ‖ u64be(seq) ‖ u8(final)`, output `ciphertext ‖ tag`; so a dropped, reordered or
 * truncated chunk fails to open.
 */
import { createCipheriv, createDecipheriv, type webcrypto } from 'node:crypto';
import { Aes128Gcm, CipherSuite } from '@hpke/core';
import { DhkemX25519HkdfSha256, HkdfSha256 } from '@hpke/dhkem-x25519';
import { type Address, type Hex, hexToBytes, isHex } from 'viem';
import { EnvelopeError } from './errors.ts';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;

const encoder = new TextEncoder();
const REQUEST_INFO = encoder.encode('aipg/v1 request');
const RESPONSE_EXPORT = encoder.encode('aipg/v1 response');
const RESPONSE_AAD = encoder.encode('aipg/v1 response');
const TAG_LENGTH = 16;

let suiteInstance: CipherSuite | undefined;
function suite(): CipherSuite {
  suiteInstance ??= new CipherSuite({
    kem: new DhkemX25519HkdfSha256(),
    kdf: new HkdfSha256(),
    aead: new Aes128Gcm(),
  });
  return suiteInstance;
}

/** A worker's HPKE key pair. The private key stays in this process's memory (a `CryptoKeyPair`). */
export type TeeKeyPair = {
  /** X25519 public key, base64 (32 bytes): what the evidence publishes. */
  readonly publicKey: string;
  /** The key pair itself; never serialized. */
  readonly keyPair: CryptoKeyPair;
};

/** Generates a fresh X25519 HPKE key pair (inside the TEE, at worker start). */
export async function generateTeeKeyPair(): Promise<TeeKeyPair> {
  const s = suite();
  const keyPair = await s.kem.generateKeyPair();
  const publicKey = Buffer.from(await s.kem.serializePublicKey(keyPair.publicKey)).toString('base64');
  return { publicKey, keyPair };
}

/** The request's associated data: `"aipg/v1|" + model + "|" + worker (lower-case) + "|" + ("1" | "0")`. */
export function requestAad(model: string, worker: Address, stream: boolean): string {
  return `aipg/v1|${model}|${worker.toLowerCase()}|${stream ? '1' : '0'}`;
}

function requestInfo(digest: Hex): Uint8Array {
  if (!isHex(digest) || digest.length !== 66) throw new EnvelopeError('digest must be 32 bytes of hex');
  const info = new Uint8Array(REQUEST_INFO.length + 32);
  info.set(REQUEST_INFO, 0);
  info.set(hexToBytes(digest), REQUEST_INFO.length);
  return info;
}

/**
 * Seals a request body to a worker's attested HPKE key. Returns the encapsulated key `enc` (32 bytes),
 * the ciphertext, and the `responseKey` the worker's answer will be sealed under (keep it; never send it).
 */
export async function sealRequest(p: {
  publicKey: string;
  digest: Hex;
  aad: string;
  plaintext: Uint8Array;
}): Promise<{ enc: Uint8Array; ciphertext: Uint8Array; responseKey: Uint8Array }> {
  const s = suite();
  const raw = Buffer.from(p.publicKey, 'base64');
  if (raw.length !== 32) throw new EnvelopeError('the HPKE public key must be 32 bytes of base64');
  let recipientPublicKey: CryptoKey;
  try {
    recipientPublicKey = await s.kem.deserializePublicKey(new Uint8Array(raw).buffer);
  } catch (e) {
    throw new EnvelopeError('invalid HPKE public key', { cause: e });
  }
  const sender = await s.createSenderContext({
    recipientPublicKey,
    info: requestInfo(p.digest).buffer as ArrayBuffer,
  });
  const ciphertext = await sender.seal(
    p.plaintext.slice().buffer as ArrayBuffer,
    encoder.encode(p.aad).buffer as ArrayBuffer,
  );
  const responseKey = await sender.export(RESPONSE_EXPORT.buffer as ArrayBuffer, 32);
  return {
    enc: new Uint8Array(sender.enc),
    ciphertext: new Uint8Array(ciphertext),
    responseKey: new Uint8Array(responseKey),
  };
}

/**
 * Opens a sealed request with the worker's key pair. Throws `EnvelopeError` when it does not open (another
 * key, digest, aad, or tampered bytes). Returns the plaintext and the `responseKey` for the answer.
 */
export async function openRequest(p: {
  keyPair: TeeKeyPair;
  digest: Hex;
  aad: string;
  enc: Uint8Array;
  ciphertext: Uint8Array;
}): Promise<{ plaintext: Uint8Array; responseKey: Uint8Array }> {
  const s = suite();
  const info = requestInfo(p.digest);
  try {
    const recipient = await s.createRecipientContext({
      recipientKey: p.keyPair.keyPair,
      enc: p.enc.slice().buffer as ArrayBuffer,
      info: info.buffer as ArrayBuffer,
    });
    const plaintext = await recipient.open(
      p.ciphertext.slice().buffer as ArrayBuffer,
      encoder.encode(p.aad).buffer as ArrayBuffer,
    );
    const responseKey = await recipient.export(RESPONSE_EXPORT.buffer as ArrayBuffer, 32);
    return { plaintext: new Uint8Array(plaintext), responseKey: new Uint8Array(responseKey) };
  } catch (e) {
    throw new EnvelopeError('the sealed request does not open (wrong key, digest, aad or bytes)', {
      cause: e,
    });
  }
}

function chunkParams(responseKey: Uint8Array, seq: number, final: boolean): { nonce: Buffer; aad: Buffer } {
  if (responseKey.length !== 32) throw new EnvelopeError('the response key must be 32 bytes');
  if (!Number.isSafeInteger(seq) || seq < 0) throw new EnvelopeError('seq must be a non-negative integer');
  const nonce = Buffer.alloc(12);
  nonce.writeBigUInt64BE(BigInt(seq), 4);
  const aad = Buffer.alloc(RESPONSE_AAD.length + 9);
  aad.set(RESPONSE_AAD, 0);
  aad.writeBigUInt64BE(BigInt(seq), RESPONSE_AAD.length);
  aad[RESPONSE_AAD.length + 8] = final ? 1 : 0;
  return { nonce, aad };
}

/** Seals response chunk `seq` (`final` on the last one): AES-256-GCM, returns `ciphertext ‖ tag`. */
export function sealChunk(
  responseKey: Uint8Array,
  seq: number,
  final: boolean,
  plaintext: Uint8Array,
): Uint8Array {
  const { nonce, aad } = chunkParams(responseKey, seq, final);
  const cipher = createCipheriv('aes-256-gcm', responseKey, nonce);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
  return new Uint8Array(body);
}

/** Opens response chunk `seq`; throws `EnvelopeError` if the key, position, final flag or bytes are wrong. */
export function openChunk(
  responseKey: Uint8Array,
  seq: number,
  final: boolean,
  ciphertext: Uint8Array,
): Uint8Array {
  const { nonce, aad } = chunkParams(responseKey, seq, final);
  if (ciphertext.length < TAG_LENGTH) throw new EnvelopeError('sealed chunk too short');
  try {
    const decipher = createDecipheriv('aes-256-gcm', responseKey, nonce);
    decipher.setAAD(aad);
    decipher.setAuthTag(ciphertext.subarray(ciphertext.length - TAG_LENGTH));
    const body = Buffer.concat([
      decipher.update(ciphertext.subarray(0, ciphertext.length - TAG_LENGTH)),
      decipher.final(),
    ]);
    return new Uint8Array(body);
  } catch (e) {
    throw new EnvelopeError(`response chunk ${seq} does not open (tampered, reordered or truncated)`, {
      cause: e,
    });
  }
}
