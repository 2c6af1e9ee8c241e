import { type Address, getAddress, isAddress } from 'viem';

/**
 * How a daemon turns a message into its own error (its class, its stable code): the kit's parsers and
 * key loading say what is wrong, in one line naming the flag or variable; the daemon says whose error.
 */
export type Fail = (message: string, options?: { cause?: unknown; keystore?: boolean }) => Error;

export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

/** `from` is where the value came from, as the operator wrote it: `--log-level` or `AIPG_LOG_LEVEL`. */
export function parseLogLevel(value: string, from: string, fail: Fail): LogLevel {
  if ((LOG_LEVELS as readonly string[]).includes(value)) return value as LogLevel;
  throw fail(`${from} ${value} is not one of ${LOG_LEVELS.join(', ')}`);
}

/** A whole number from `min` to `max`, given as a number or as decimal digits. */
export function parseIntValue(
  value: string | number,
  from: string,
  min: number,
  max: number,
  fail: Fail,
): number {
  const n =
    typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw fail(`${from} ${value} must be an integer from ${min} to ${max}`);
  return n;
}

export function parsePort(value: string | number, from: string, fail: Fail): number {
  return parseIntValue(value, from, 0, 65_535, fail);
}

/** One JSON-RPC URL or several, comma-separated (tried in order): http(s) or ws(s) each. */
export function parseRpcUrls(value: string, from: string, fail: Fail): string[] {
  const urls = value
    .split(',')
    .map((u) => u.trim())
    .filter((u) => u.length > 0);
  if (urls.length === 0)
    throw fail(`${from} is empty: expected a JSON-RPC URL (http://, https://, ws://, wss://)`);
  for (const url of urls) {
    let protocol: string;
    try {
      protocol = new URL(url).protocol;
    } catch {
      throw fail(`${from} ${url} is not a URL (expected http://, https://, ws:// or wss://)`);
    }
    if (!['http:', 'https:', 'ws:', 'wss:'].includes(protocol))
      throw fail(`${from} ${url}: use http://, https://, ws:// or wss://`);
  }
  return urls;
}

export function parseAddress(value: string, from: string, fail: Fail): Address {
  if (!isAddress(value, { strict: false })) throw fail(`${from} ${value} is not an address`);
  return getAddress(value);
}
