import { type DestinationStream, type Logger, pino } from 'pino';
import type { LogLevel } from './parse.ts';

export type { Logger };

/**
 * Field names whose values never reach a log line, wherever they sit (top level, or one or two
 * objects down: `req.headers.authorization`, `options.keystorePassword`): keys and passwords, API
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

const segment = (field: string) => (/^[A-Za-z_$][\w$]*$/.test(field) ? `.${field}` : `["${field}"]`);

/** The pino paths of `REDACTED_FIELDS` (three depths each) and of models' API keys in an options object. */
export const REDACT_PATHS: readonly string[] = [
  ...REDACTED_FIELDS.flatMap((f) => {
    const s = segment(f);
    return [s.startsWith('.') ? s.slice(1) : s, `*${s}`, `*.*${s}`];
  }),
  'models[*].apiKey',
  '*.models[*].apiKey',
];

export const REDACTED = '[redacted]';

export type CreateDaemonLoggerParameters = {
  /** `gateway`, `worker`, `validator`: the `service` field of every line. */
  service: string;
  level: LogLevel | string;
  /** Where lines go (default stdout); tests pass a stream that collects them. */
  destination?: DestinationStream | undefined;
};

/**
 * A daemon's root logger: JSON lines (pipe through `pino-pretty` to read them), `REDACT_PATHS`
 * censored, errors under `err` or `error` serialized with their stack and cause.
 */
export function createDaemonLogger({ service, level, destination }: CreateDaemonLoggerParameters): Logger {
  const options = {
    level,
    base: { service },
    redact: { paths: [...REDACT_PATHS], censor: REDACTED },
    serializers: { err: pino.stdSerializers.err, error: pino.stdSerializers.err },
  };
  return destination ? pino(options, destination) : pino(options);
}
