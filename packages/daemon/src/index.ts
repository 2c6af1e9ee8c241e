export { sleep } from '@aipg/core';
export {
  createEnvReader,
  DAEMON_ENV,
  type DaemonName,
  type EnvReader,
  type EnvSource,
  type EnvVar,
  envNames,
} from './env.ts';
export { loadOperatorKey, type OperatorKeySource, operatorKeySource, parseOperatorKey } from './key.ts';
export {
  type CreateDaemonLoggerParameters,
  createDaemonLogger,
  type Logger,
  REDACTED,
  REDACTED_FIELDS,
  redactSecrets,
} from './logger.ts';
export {
  type Counter,
  createMetricsRegistry,
  type Gauge,
  type Histogram,
  type Labels,
  type MetricsRegistry,
  type MetricsServer,
  SECONDS_BUCKETS,
  type StartMetricsServerParameters,
  startMetricsServer,
} from './metrics.ts';
export {
  type Fail,
  LOG_LEVELS,
  type LogLevel,
  parseAddress,
  parseIntValue,
  parseLogLevel,
  parsePort,
  parseRpcUrls,
} from './parse.ts';
export {
  describeError,
  EXIT_CODES,
  type RunnableDaemon,
  type RunUntilSignalledParameters,
  runUntilSignalled,
} from './run.ts';
export { createShutdown, type DaemonCommon, type Shutdown } from './shutdown.ts';
