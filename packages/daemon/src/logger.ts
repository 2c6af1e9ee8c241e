import { type DestinationStream, type Logger, pino } from 'pino';
import type { LogLevel } from './parse.ts';

export type { Logger };

/**
 * Field names whose values never reach a log line, wherever they sit (top level, or objects and
 * arrays down: `req.headers.authorization`, `options.models[0].apiKey`): keys and passwords, API
 * keys and bearer tokens, signatures, and what users wrote (prompts and chat messages).
 */
export const REDACTED_FIELDS = [
  // keys and passwords
  'privateKey',
  'operatorKey',
  'key',
  'secret',
  'password',
  'keystorePassword',
  'passphrase',
  'mnemonic',
  // API keys, bearer tokens, credentials in headers
  'apiKey',
  'api_key',
  'authorization',
  'proxy-authorization',
  'x-api-key',
  'cookie',
  'token',
  'accessToken',
  'bearer',
  // signatures
  'signature',
  'receipt_signature',
  // what users wrote
  'prompt',
  'negativePrompt',
  'negative_prompt',
  'messages',
  'content',
  'plaintext',
] as const;

export const REDACTED = '[redacted]';

const SECRET = new Set<string>(REDACTED_FIELDS.map((f) => f.toLowerCase()));
/** How deep into a log object secrets are looked for (`req.headers.authorization` is depth 3). */
const MAX_DEPTH = 4;

const isPlain = (v: object) => {
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
};

/**
 * `value` with the value of every field named in `REDACTED_FIELDS` (any case) replaced by
 * `[redacted]`, in plain objects and arrays down to MAX_DEPTH. Copies only what it changes: the
 * caller's object is never modified, and an object without secrets is returned as it is (one walk of
 * its keys: far cheaper per line than pino's wildcard redaction paths).
 */
export function redactSecrets<T>(value: T, depth = 0): T {
  if (value === null || typeof value !== 'object' || depth > MAX_DEPTH) return value;
  if (Array.isArray(value)) {
    let out: unknown[] | undefined;
    for (let i = 0; i < value.length; i++) {
      const next = redactSecrets(value[i], depth + 1);
      if (next === value[i]) continue;
      out ??= value.slice();
      out[i] = next;
    }
    return (out ?? value) as T;
  }
  if (!isPlain(value)) return value;
  let out: Record<string, unknown> | undefined;
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    const v = record[key];
    const next = SECRET.has(key.toLowerCase()) ? REDACTED : redactSecrets(v, depth + 1);
    if (next === v) continue;
    out ??= { ...record };
    out[key] = next;
  }
  return (out ?? value) as T;
}

export type CreateDaemonLoggerParameters = {
  /** `gateway`, `worker`, `validator`: the `service` field of every line. */
  service: string;
  level: LogLevel | string;
  /** Where lines go (default stdout); tests pass a stream that collects them. */
  destination?: DestinationStream | undefined;
};

/**
 * A daemon's root logger: JSON lines (pipe through `pino-pretty` to read them), secrets redacted
 * (`redactSecrets` in each line's object; child loggers' bindings by top-level field name), errors under `err` or `error` serialized with their stack and cause.
 */
export function createDaemonLogger({ service, level, destination }: CreateDaemonLoggerParameters): Logger {
  const options = {
    level,
    base: { service },
    formatters: { log: (object: Record<string, unknown>) => redactSecrets(object) },
    // A child logger's bindings skip `formatters`: pino's own redaction covers them, by top-level name
    // (top-level paths only, which cost next to nothing; `redactSecrets` does the depth).
    redact: {
      paths: REDACTED_FIELDS.map((f) => (/^[A-Za-z_$][\w$]*$/.test(f) ? f : `["${f}"]`)),
      censor: REDACTED,
    },
    serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
  };
  return destination ? pino(options, destination) : pino(options);
}
