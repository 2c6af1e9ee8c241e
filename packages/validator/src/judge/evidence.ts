import { type Hex, keccak256, toBytes } from 'viem';

/**
 * Canonical JSON: object keys sorted, no whitespace, `undefined` members dropped, numbers as
 * JavaScript writes them (shortest round-trip form), non-finite numbers as strings ("-Infinity"),
 * so the same reasons always hash to the same evidence hash in any implementation.
 */
export function canonicalJson(value: unknown): string {
  if (value === null) return 'null';
  if (typeof value === 'number') return Number.isFinite(value) ? JSON.stringify(value) : `"${value}"`;
  if (typeof value === 'bigint') return JSON.stringify(value.toString());
  if (typeof value === 'string' || typeof value === 'boolean') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map((v) => canonicalJson(v ?? null)).join(',')}]`;
  if (typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  throw new TypeError(`cannot encode ${typeof value} as canonical JSON`);
}

/** The evidence hash an attestation carries: keccak256 of the canonical JSON of the reasons. */
export function evidenceHash(reasons: readonly unknown[]): Hex {
  return keccak256(toBytes(canonicalJson(reasons)));
}
