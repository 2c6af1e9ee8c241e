import { createHash, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { type Address, getAddress, type Hex, isAddress } from 'viem';

/**
 * API keys are bound to a payer by an EIP-191 (`personal_sign`) signature of this message:
 *
 *     AIPG gateway API key
 *     gateway: 0x…            (this gateway's address)
 *     chain: 31337
 *     payer: 0x…
 *     name: laptop            (optional)
 *     nonce: 3f9c0a…          (8-64 of [A-Za-z0-9_-], once per payer)
 *     expires: 2026-11-25T12:00:00Z
 *
 * The gateway stores only a SHA-256 of the key. A key is `aipg-<id>-<secret>`, where the secret is an
 * HMAC of the id under the gateway's key secret. A signed message creates one key, once: its nonce is
 * spent, and a replay of the message is refused (it never returns the key again).
 */
export const API_KEY_MESSAGE_TITLE = 'AIPG gateway API key';

export type ApiKeyMessage = {
  gateway: Address;
  chainId: number;
  payer: Address;
  name?: string | undefined;
  nonce: string;
  /** When the signed message stops being usable to create a key (not the key's lifetime). */
  expires: Date;
};

const NONCE = /^[A-Za-z0-9_-]{8,64}$/;
const NAME = /^[^\n\r]{1,64}$/;

/** The exact text a payer signs to create an API key. */
export function apiKeyMessage(m: ApiKeyMessage): string {
  if (!NONCE.test(m.nonce)) throw new RangeError('nonce: 8-64 characters of A-Z a-z 0-9 _ -');
  if (m.name !== undefined && !NAME.test(m.name)) throw new RangeError('name: 1-64 characters on one line');
  return [
    API_KEY_MESSAGE_TITLE,
    `gateway: ${getAddress(m.gateway)}`,
    `chain: ${m.chainId}`,
    `payer: ${getAddress(m.payer)}`,
    ...(m.name === undefined ? [] : [`name: ${m.name}`]),
    `nonce: ${m.nonce}`,
    `expires: ${m.expires.toISOString().replace(/\.\d{3}Z$/, 'Z')}`,
  ].join('\n');
}

/** Parses a signed key message; returns a reason string when it is malformed. */
export function parseApiKeyMessage(text: string): ApiKeyMessage | string {
  const lines = text.split('\n');
  if (lines[0] !== API_KEY_MESSAGE_TITLE) return `the first line must be "${API_KEY_MESSAGE_TITLE}"`;
  const fields = new Map<string, string>();
  for (const line of lines.slice(1)) {
    const m = /^([a-z]+): (.*)$/.exec(line);
    if (!m) return `malformed line "${line.slice(0, 80)}"`;
    const [, key = '', value = ''] = m;
    if (!['gateway', 'chain', 'payer', 'name', 'nonce', 'expires'].includes(key))
      return `unknown field "${key}"`;
    if (fields.has(key)) return `duplicate field "${key}"`;
    fields.set(key, value);
  }
  for (const required of ['gateway', 'chain', 'payer', 'nonce', 'expires']) {
    if (!fields.has(required)) return `missing field "${required}"`;
  }
  const gateway = fields.get('gateway')!;
  const payer = fields.get('payer')!;
  if (!isAddress(gateway, { strict: false })) return 'gateway is not an address';
  if (!isAddress(payer, { strict: false })) return 'payer is not an address';
  const chain = fields.get('chain')!;
  if (!/^[1-9]\d{0,15}$/.test(chain)) return 'chain is not a chain id';
  const nonce = fields.get('nonce')!;
  if (!NONCE.test(nonce)) return 'nonce must be 8-64 characters of A-Z a-z 0-9 _ -';
  const name = fields.get('name');
  if (name !== undefined && !NAME.test(name)) return 'name must be 1-64 characters';
  const expiresText = fields.get('expires')!;
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/.test(expiresText))
    return 'expires must be an ISO 8601 UTC time';
  const expires = new Date(expiresText);
  if (Number.isNaN(expires.getTime())) return 'expires is not a valid time';
  return {
    gateway: getAddress(gateway),
    chainId: Number(chain),
    payer: getAddress(payer),
    name,
    nonce,
    expires,
  };
}

export function newKeyId(): string {
  return `k${randomBytes(9).toString('base64url').replace(/[-_]/g, 'x')}`;
}

/** The key for `id`: deterministic under `secret`, never stored. */
export function deriveApiKey(secret: Hex, id: string): string {
  const mac = createHmac('sha256', Buffer.from(secret.slice(2), 'hex'))
    .update(`aipg-api-key:${id}`)
    .digest('base64url');
  return `aipg-${id}-${mac}`;
}

export function hashApiKey(key: string): string {
  return createHash('sha256').update(key).digest('hex');
}

/** Checks a bearer token's shape before any lookup (cheap rejection of junk). */
export function looksLikeApiKey(token: string): boolean {
  return /^aipg-k[A-Za-z0-9]{12}-[A-Za-z0-9_-]{43}$/.test(token);
}

export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/** The token of an `Authorization` header: `Bearer <token>`, or the whole header as sent. */
export function bearerToken(header: string | undefined): string | undefined {
  return header?.match(/^Bearer\s+(\S+)\s*$/i)?.[1] ?? (header ? header : undefined);
}
