/**
 * The confidential tier's wire formats (docs/confidential.md): the evidence a worker in a TEE publishes,
 * what its quote's REPORTDATA commits to, and what a confidential receipt's hashes commit to. Pure
 * functions only; verifying evidence (DCAP, NRAS) and the HPKE envelopes live in `@aipg/tee`.
 *
 * REPORTDATA (64 bytes) = SHA-512("aipg-tee-v1" ‖ hpkePublicKey (32) ‖ signer (20) ‖ nonce (32)).
 * The NVIDIA evidence (an NRAS-shaped EAT) carries `eat_nonce` = hex(REPORTDATA[0..32]), so both bind the
 * same key, the same receipt-signing key, and the same fresh nonce.
 */
import { createHash } from 'node:crypto';
import { type Address, concat, type Hex, hexToBytes, keccak256, toBytes, toHex } from 'viem';
import { z } from 'zod';

const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected 32-byte hex') as unknown as z.ZodType<Hex>;
const address = z
  .string()
  .regex(/^0x[0-9a-fA-F]{40}$/, 'expected an address') as unknown as z.ZodType<Address>;
const hexBytes = (max: number) =>
  z
    .string()
    .max(2 + max * 2)
    .regex(/^0x([0-9a-fA-F]{2})*$/, 'expected hex bytes') as unknown as z.ZodType<Hex>;
/** Base64 (standard alphabet, padded). */
export const base64String = (maxBytes: number) =>
  z
    .string()
    .max(Math.ceil(maxBytes / 3) * 4)
    .refine((s) => s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s), 'expected base64');

/** Domain tag of REPORTDATA. */
export const TEE_REPORT_DOMAIN = 'aipg-tee-v1';
/** The HPKE suite every confidential envelope uses (RFC 9180 base mode). */
export const TEE_HPKE_SUITE = 'DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM' as const;
/** Largest quote (bytes): a TDX v4 quote with its PEM chain is about 5 KB. */
export const MAX_QUOTE_BYTES = 32_768;
/** Largest request ciphertext of a confidential job (bytes). */
export const MAX_SEALED_REQUEST_BYTES = 4 * 1024 * 1024;

/**
 * What a worker in a TEE publishes: its HPKE public key and receipt-signing address, bound by a TDX quote
 * (REPORTDATA, above) and NVIDIA GPU evidence to a fresh nonce. The collateral travels with the quote
 * (Intel-signed; a verifier may fetch its own from a PCCS it trusts instead). `simulated` is a label
 * only: what makes evidence valid is the trust anchors it verifies under.
 */
export const teeEvidenceSchema = z.object({
  version: z.literal(1),
  platform: z.literal('tdx+nvidia'),
  signer: address,
  /** X25519 public key, base64 (32 bytes). */
  hpkePublicKey: base64String(32).refine((s) => s.length === 44, 'expected a 32-byte X25519 key'),
  nonce: hex32,
  tdx: z.object({
    quote: hexBytes(MAX_QUOTE_BYTES),
    /** DCAP collateral as `@phala/dcap-qvl` takes it (TCB info, QE identity, their signatures and chains, CRLs). */
    collateral: z.record(z.string(), z.unknown()),
  }),
  /** NRAS detached EAT: `[["JWT", overall], {"GPU-0": jwt, …}]`, as NRAS returns it. */
  nvidia: z.object({ eat: z.string().min(1).max(65_536) }),
  simulated: z.boolean(),
});
export type TeeEvidence = z.infer<typeof teeEvidenceSchema>;

function b64ToBytes(s: string): Uint8Array {
  return new Uint8Array(Buffer.from(s, 'base64'));
}

/** REPORTDATA (64 bytes) of the quote that binds `hpkePublicKey` and `signer` to `nonce`. */
export function teeReportData(p: { hpkePublicKey: string; signer: Address; nonce: Hex }): Uint8Array {
  const key = b64ToBytes(p.hpkePublicKey);
  if (key.length !== 32) throw new Error('hpkePublicKey must be 32 bytes');
  return new Uint8Array(
    createHash('sha512')
      .update(TEE_REPORT_DOMAIN)
      .update(key)
      .update(hexToBytes(p.signer))
      .update(hexToBytes(p.nonce))
      .digest(),
  );
}

/** The NVIDIA evidence's `eat_nonce`: hex (no 0x) of REPORTDATA's first 32 bytes. */
export function teeGpuNonce(reportData: Uint8Array): string {
  return Buffer.from(reportData.subarray(0, 32)).toString('hex');
}

/** The evidence's identity: keccak256(REPORTDATA ‖ keccak256(quote) ‖ keccak256(eat)). Receipts commit to it. */
export function teeEvidenceDigest(e: TeeEvidence): Hex {
  return keccak256(
    concat([toHex(teeReportData(e)), keccak256(e.tdx.quote), keccak256(toBytes(e.nvidia.eat))]),
  );
}

const CONFIDENTIAL_REQUEST_TAG = toHex('aipg/v1 confidential request');

/**
 * `requestHash` of a confidential receipt: the evidence the client encrypted to and the sealed request
 * (HPKE `enc` ‖ ciphertext). The gateway, which relays both, checks it; a validator auditing the receipt
 * checks the evidence it names.
 */
export function confidentialRequestHash(attestation: Hex, sealedRequestHash: Hex): Hex {
  return keccak256(concat([CONFIDENTIAL_REQUEST_TAG, attestation, sealedRequestHash]));
}

/** keccak256(enc ‖ ciphertext) of a sealed request. */
export function sealedRequestHash(enc: Uint8Array, ciphertext: Uint8Array): Hex {
  return keccak256(concat([enc, ciphertext]));
}

/** `outputHash` of a confidential receipt: keccak256 over the keccak256 of each sealed response chunk, in order. */
export function sealedOutputHash(chunks: readonly Uint8Array[]): Hex {
  return keccak256(concat(chunks.map((c) => keccak256(c))));
}
