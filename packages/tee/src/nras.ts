/**
 * NVIDIA GPU evidence as NRAS returns it: a detached EAT `[["JWT", overall], {"GPU-0": jwt, …}]`, each an
 * ES384 JWT under NRAS's key set. The overall token commits to each device token (`submods`: SHA-256 of
 * the token), carries `x-nvidia-overall-att-result` and the verifier's `eat_nonce`.
 */
import { createHash } from 'node:crypto';
import { compactVerify, createLocalJWKSet, createRemoteJWKSet, type JSONWebKeySet } from 'jose';
import type { TrustAnchors } from './anchors.ts';
import { AttestationError } from './errors.ts';

type KeySet = ReturnType<typeof createLocalJWKSet> | ReturnType<typeof createRemoteJWKSet>;

const remoteKeySets = new Map<string, KeySet>();
const localKeySets = new WeakMap<object, KeySet>();

/** The key set of the anchors: a local JWKS, or NRAS's JWKS URL (fetched once, then cached by jose). */
function keySet(jwks: TrustAnchors['nvidiaJwks']): KeySet {
  if (jwks instanceof URL) {
    let set = remoteKeySets.get(jwks.href);
    if (!set) {
      set = createRemoteJWKSet(jwks, { timeoutDuration: 10_000, cooldownDuration: 60_000 });
      remoteKeySets.set(jwks.href, set);
    }
    return set;
  }
  let set = localKeySets.get(jwks);
  if (!set) {
    try {
      set = createLocalJWKSet(jwks as unknown as JSONWebKeySet);
    } catch (e) {
      throw new AttestationError(
        'gpu_token',
        `the anchors' NVIDIA key set is invalid (${(e as Error).message})`,
      );
    }
    localKeySets.set(jwks, set);
  }
  return set;
}

type Claims = Record<string, unknown>;

async function verifyToken(name: string, token: string, keys: KeySet, issuer: string): Promise<Claims> {
  let payload: Uint8Array;
  try {
    ({ payload } = await compactVerify(token, keys, { algorithms: ['ES384'] }));
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    const reason = `${code ? `${code}: ` : ''}${(e as Error).message}`;
    // jose's errors about the token or the key carry ERR_JWS_/ERR_JOSE_/ERR_JWKS_*MATCHING* codes; anything
    // else (a timeout, a network or JWKS document failure) means the key set could not be had.
    const aboutToken =
      /^ERR_(JWS|JWT|JOSE)_/.test(code) ||
      code === 'ERR_JWKS_NO_MATCHING_KEY' ||
      code === 'ERR_JWKS_MULTIPLE_MATCHING_KEYS';
    const fetchFailed = !aboutToken;
    throw new AttestationError(
      'gpu_token',
      fetchFailed
        ? `could not get the NVIDIA key set to verify the ${name} token (${reason})`
        : `${name} token does not verify under the NVIDIA key set (${reason})`,
    );
  }
  let claims: unknown;
  try {
    claims = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    throw new AttestationError('gpu_token', `${name} token: claims are not JSON`);
  }
  if (typeof claims !== 'object' || claims === null || Array.isArray(claims)) {
    throw new AttestationError('gpu_token', `${name} token: claims are not an object`);
  }
  const c = claims as Claims;
  if (c.iss !== issuer) {
    throw new AttestationError(
      'gpu_token',
      `${name} token: issuer ${JSON.stringify(c.iss)} is not ${issuer}`,
    );
  }
  return c;
}

function parseEat(eat: string): { overall: string; devices: [string, string][] } {
  let raw: unknown;
  try {
    raw = JSON.parse(eat);
  } catch {
    throw new AttestationError('gpu_token', 'the NVIDIA EAT is not JSON');
  }
  if (!Array.isArray(raw) || raw.length !== 2) {
    throw new AttestationError('gpu_token', 'the NVIDIA EAT is not [["JWT", overall], {device: jwt}]');
  }
  const [head, devices] = raw as [unknown, unknown];
  if (!Array.isArray(head) || head.length !== 2 || head[0] !== 'JWT' || typeof head[1] !== 'string') {
    throw new AttestationError('gpu_token', 'the NVIDIA EAT has no overall JWT');
  }
  if (typeof devices !== 'object' || devices === null || Array.isArray(devices)) {
    throw new AttestationError('gpu_token', 'the NVIDIA EAT has no device tokens');
  }
  const entries = Object.entries(devices);
  if (entries.length === 0 || entries.length > 64 || entries.some(([, t]) => typeof t !== 'string')) {
    throw new AttestationError('gpu_token', 'the NVIDIA EAT has no valid device tokens');
  }
  return { overall: head[1], devices: entries as [string, string][] };
}

/** Checks that `submods` commits to exactly the device tokens (SHA-256 of each token). */
function checkSubmods(overall: Claims, devices: [string, string][]): void {
  const submods = overall.submods;
  if (typeof submods !== 'object' || submods === null || Array.isArray(submods)) {
    throw new AttestationError('gpu_token', 'the overall token has no submods');
  }
  const committed = submods as Record<string, unknown>;
  if (Object.keys(committed).length !== devices.length) {
    throw new AttestationError('gpu_token', "the overall token's submods do not match the device tokens");
  }
  for (const [name, token] of devices) {
    const entry = committed[name];
    const digest = Array.isArray(entry) && entry[0] === 'DIGEST' ? entry[1] : undefined;
    if (
      !Array.isArray(digest) ||
      (digest[0] !== 'SHA-256' && digest[0] !== 'SHA256') ||
      typeof digest[1] !== 'string'
    ) {
      throw new AttestationError('gpu_token', `the overall token has no SHA-256 digest of ${name}`);
    }
    const actual = createHash('sha256').update(token).digest('hex');
    if (digest[1].toLowerCase() !== actual) {
      throw new AttestationError('gpu_token', `${name} token is not the one the overall token commits to`);
    }
  }
}

/** Allowed clock skew between NRAS and the verifier, seconds. */
const SKEW_SECONDS = 60;

/**
 * Verifies an NRAS detached EAT: every token's signature and issuer ('gpu_token'), the overall result
 * ('gpu_result'), `eat_nonce` on every token ('gpu_nonce'), freshness ('stale'). Returns the overall
 * token's `iat` and the earliest `exp`.
 */
export async function verifyNvidiaEat(
  eat: string,
  p: { anchors: TrustAnchors; gpuNonce: string; now: number; maxAgeSeconds: number },
): Promise<{ issuedAt: number; expiresAt: number }> {
  const { overall, devices } = parseEat(eat);
  const keys = keySet(p.anchors.nvidiaJwks);
  const overallClaims = await verifyToken('the overall', overall, keys, p.anchors.nvidiaIssuer);
  const deviceClaims: [string, Claims][] = [];
  for (const [name, token] of devices) {
    deviceClaims.push([name, await verifyToken(name, token, keys, p.anchors.nvidiaIssuer)]);
  }
  checkSubmods(overallClaims, devices);

  if (overallClaims['x-nvidia-overall-att-result'] !== true) {
    throw new AttestationError('gpu_result', 'NVIDIA reports the GPU attestation failed');
  }

  const all: [string, Claims][] = [['the overall', overallClaims], ...deviceClaims];
  const expected = p.gpuNonce.toLowerCase();
  for (const [name, c] of all) {
    if (typeof c.eat_nonce !== 'string' || c.eat_nonce.toLowerCase() !== expected) {
      throw new AttestationError(
        'gpu_nonce',
        `${name} token's eat_nonce does not bind this evidence's REPORTDATA`,
      );
    }
  }

  let expiresAt = Number.POSITIVE_INFINITY;
  for (const [name, c] of all) {
    if (typeof c.exp !== 'number' || typeof c.iat !== 'number') {
      throw new AttestationError('stale', `${name} token has no iat or exp`);
    }
    if (p.now >= c.exp) throw new AttestationError('stale', `${name} token expired at ${c.exp}`);
    if (c.iat > p.now + SKEW_SECONDS || (typeof c.nbf === 'number' && c.nbf > p.now + SKEW_SECONDS)) {
      throw new AttestationError('stale', `${name} token is issued in the future`);
    }
    expiresAt = Math.min(expiresAt, c.exp);
  }
  const issuedAt = overallClaims.iat as number;
  if (p.now - issuedAt > p.maxAgeSeconds) {
    throw new AttestationError(
      'stale',
      `the GPU evidence is ${p.now - issuedAt} s old (at most ${p.maxAgeSeconds} s accepted)`,
    );
  }
  return { issuedAt, expiresAt };
}
