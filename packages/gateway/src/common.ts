import {
  createDaemonLogger,
  createShutdown,
  type DaemonCommon,
  type Logger,
  type Shutdown,
  sleep,
} from '@aipg/daemon';
import type { DestinationStream } from 'pino';
import { createMetrics, type Metrics } from './metrics/index.ts';
import type { GatewayOptions } from './options.ts';

export type { Logger, Shutdown };
export { createShutdown, sleep };

/** The gateway's root logger (@aipg/daemon's: one redaction list for every daemon). */
export function createLogger(level: GatewayOptions['log']['level'], destination?: DestinationStream): Logger {
  return createDaemonLogger({ service: 'gateway', level, destination });
}

/** What every feature receives (Ponder's pattern): options, logger, metrics, shutdown. */
export type Common = DaemonCommon<GatewayOptions, Metrics>;

export function createCommon(options: GatewayOptions, logger?: Logger): Common {
  const log = logger ?? createLogger(options.log.level);
  return { options, logger: log, metrics: createMetrics(), shutdown: createShutdown(log) };
}
