import { type DestinationStream, type Logger, pino } from 'pino';

/** Paths pino censors wherever they appear in a log object: keys and tokens never reach a log line. */
export const REDACTED_PATHS = [
  'operatorKey',
  'privateKey',
  'apiKey',
  'password',
  'authorization',
  '*.operatorKey',
  '*.privateKey',
  '*.apiKey',
  '*.password',
  '*.authorization',
  'options.models[*].apiKey',
];

/** The worker's root logger: JSON lines (pipe through `pino-pretty` to read them), secrets redacted. */
export function createWorkerLogger(level: string, destination?: DestinationStream): Logger {
  const options = {
    level,
    base: { service: 'worker' },
    redact: { paths: REDACTED_PATHS, censor: '[redacted]' },
  };
  return destination ? pino(options, destination) : pino(options);
}
