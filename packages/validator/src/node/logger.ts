import { type DestinationStream, type Logger, pino } from 'pino';

/** Paths pino censors wherever they appear in a log object: keys never reach a log line. */
export const REDACTED_PATHS = [
  'operatorKey',
  'privateKey',
  'password',
  'authorization',
  '*.operatorKey',
  '*.privateKey',
  '*.password',
  '*.authorization',
];

/** The validator's root logger: JSON lines (pipe through `pino-pretty` to read them), secrets redacted. */
export function createValidatorLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'validator' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}
