/**
 * Trust anchors: what evidence must chain to. Production uses Intel's SGX Root CA (DCAP quotes) and
 * NVIDIA's NRAS key set (GPU EATs); tests and the devnet use a `SimulatedTee`'s test root and key set.
 */
import { z } from 'zod';

/** What a verifier trusts. Evidence is valid only as far as these anchors say. */
export type TrustAnchors = {
  /** DER of the root CA DCAP quotes chain to: Intel's SGX Root CA in production, a test root otherwise. */
  intelRootCaDer: Uint8Array;
  /** The key set NVIDIA EATs verify under: a JWKS object (tests, devnet) or NRAS's JWKS URL (production). */
  nvidiaJwks: { keys: Record<string, unknown>[] } | URL;
  /** Required `iss` of the EATs. */
  nvidiaIssuer: string;
};

/**
 * Intel SGX Root CA (CN=Intel SGX Root CA, O=Intel Corporation, valid 2018-05-21 to 2049-12-31), DER as
 * base64. Published by Intel at certificates.trustedservices.intel.com/IntelSGXRootCA.der; the same
 * bytes `@phala/dcap-qvl` trusts by default (a test checks that).
 */
const INTEL_SGX_ROOT_CA_BASE64 =
  'MIICjzCCAjSgAwIBAgIUImUM1lqdNInzg7SVUr9QGzknBqwwCgYIKoZIzj0EAwIwaDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0Ex' +
  'GjAYBgNVBAoMEUludGVsIENvcnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYTAlVTMB4X' +
  'DTE4MDUyMTEwNDUxMFoXDTQ5MTIzMTIzNTk1OVowaDEaMBgGA1UEAwwRSW50ZWwgU0dYIFJvb3QgQ0ExGjAYBgNVBAoMEUludGVsIENv' +
  'cnBvcmF0aW9uMRQwEgYDVQQHDAtTYW50YSBDbGFyYTELMAkGA1UECAwCQ0ExCzAJBgNVBAYTAlVTMFkwEwYHKoZIzj0CAQYIKoZIzj0D' +
  'AQcDQgAEC6nEwMDIYZOj/iPWsCzaEKi71OiOSLRFhWGjbnBVJfVnkY4u3IjkDYYL0MxO4mqsyYjlBalTVYxFP2sJBK5zlKOBuzCBuDAf' +
  'BgNVHSMEGDAWgBQiZQzWWp00ifODtJVSv1AbOScGrDBSBgNVHR8ESzBJMEegRaBDhkFodHRwczovL2NlcnRpZmljYXRlcy50cnVzdGVk' +
  'c2VydmljZXMuaW50ZWwuY29tL0ludGVsU0dYUm9vdENBLmRlcjAdBgNVHQ4EFgQUImUM1lqdNInzg7SVUr9QGzknBqwwDgYDVR0PAQH/' +
  'BAQDAgEGMBIGA1UdEwEB/wQIMAYBAf8CAQEwCgYIKoZIzj0EAwIDSQAwRgIhAOW/5QkR+S9CiSDcNoowLuPRLsWGf/Yi7GSX94BgwTwg' +
  'AiEA4J0lrHoMs+Xo5o/sX6O9QWxHRAvZUGOdRQ7cvqRXaqI=';

/** NRAS's issuer and key set (ES384 EATs). */
const NRAS_ISSUER = 'https://nras.attestation.nvidia.com';
const NRAS_JWKS_URL = 'https://nras.attestation.nvidia.com/.well-known/jwks.json';

/** Production anchors: Intel's SGX Root CA and NRAS's JWKS (fetched, and cached, on first use). */
export const PRODUCTION_ANCHORS: TrustAnchors = Object.freeze({
  intelRootCaDer: new Uint8Array(Buffer.from(INTEL_SGX_ROOT_CA_BASE64, 'base64')),
  nvidiaJwks: new URL(NRAS_JWKS_URL),
  nvidiaIssuer: NRAS_ISSUER,
});

const base64 = z
  .string()
  .min(4)
  .refine((s) => s.length % 4 === 0 && /^[A-Za-z0-9+/]*={0,2}$/.test(s), 'expected base64');

const serializedAnchorsSchema = z.strictObject({
  version: z.literal(1),
  /** DER of the DCAP root CA, base64. */
  intelRootCa: base64,
  nvidia: z.union([
    z.strictObject({ jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())).min(1) }) }),
    z.strictObject({ jwksUrl: z.url({ protocol: /^https?$/ }) }),
  ]),
  nvidiaIssuer: z.string().min(1),
});

/** The anchors as JSON (root DER in base64; the JWKS inline, or its URL). `parseAnchors` reads it back. */
export function serializeAnchors(a: TrustAnchors): string {
  const nvidia =
    a.nvidiaJwks instanceof URL ? { jwksUrl: a.nvidiaJwks.href } : { jwks: { keys: a.nvidiaJwks.keys } };
  return JSON.stringify({
    version: 1,
    intelRootCa: Buffer.from(a.intelRootCaDer).toString('base64'),
    nvidia,
    nvidiaIssuer: a.nvidiaIssuer,
  });
}

/**
 * Reads anchors written by `serializeAnchors`. Throws an `Error` that names each bad field on invalid
 * input (not JSON, a missing root, an empty key set, a non-http(s) JWKS URL, an unknown field).
 */
export function parseAnchors(json: string): TrustAnchors {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch {
    throw new Error('trust anchors: not JSON');
  }
  const parsed = serializedAnchorsSchema.safeParse(raw);
  if (!parsed.success) {
    const issues = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new Error(`trust anchors: ${issues.join('; ')}`);
  }
  const a = parsed.data;
  const der = new Uint8Array(Buffer.from(a.intelRootCa, 'base64'));
  if (der[0] !== 0x30) throw new Error('trust anchors: intelRootCa: not a DER certificate');
  return {
    intelRootCaDer: der,
    nvidiaJwks: 'jwks' in a.nvidia ? { keys: a.nvidia.jwks.keys } : new URL(a.nvidia.jwksUrl),
    nvidiaIssuer: a.nvidiaIssuer,
  };
}
