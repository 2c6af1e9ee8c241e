import { type DestinationStream, type Logger, pino } from 'pino';
import { createMetrics, type Metrics } from './metrics/index.ts';
import type { GatewayOptions } from './options.ts';

export type { Logger };

/** Paths pino replaces with "[redacted]": bearer keys, API keys, signatures, private keys. */
export const REDACT_PATHS = [
  'authorization',
  '*.authorization',
  'headers.authorization',
  '*.headers.authorization',
  'req.headers.authorization',
  'key',
  '*.key',
  'apiKey',
  '*.apiKey',
  'secret',
  '*.secret',
  'privateKey',
  '*.privateKey',
  'signature',
  '*.signature',
  '*.receipt_signature',
  'receipt_signature',
];

export function createLogger(level: GatewayOptions['log']['level'], destination?: DestinationStream): Logger {
  return pino(
    {
      level,
      base: { service: 'gateway' },
      redact: { paths: REDACT_PATHS, censor: '[redacted]' },
      serializers: { error: pino.stdSerializers.err, err: pino.stdSerializers.err },
    },
    destination,
  );
}

export type Shutdown = {
  /** Aborted when shutdown starts: loops stop, new work is refused. */
  readonly signal: AbortSignal;
  isShuttingDown(): boolean;
  /** Registers a step; steps run in reverse order of registration (last opened, first closed). */
  add(name: string, fn: () => Promise<void> | void): void;
  /** Runs every step once; later calls return the same promise. */
  run(): Promise<void>;
};

export function createShutdown(logger: Logger): Shutdown {
  const controller = new AbortController();
  const steps: { name: string; fn: () => Promise<void> | void }[] = [];
  let running: Promise<void> | undefined;
  return {
    signal: controller.signal,
    isShuttingDown: () => controller.signal.aborted,
    add(name, fn) {
      steps.push({ name, fn });
    },
    run() {
      running ??= (async () => {
        controller.abort();
        for (const step of [...steps].reverse()) {
          const started = Date.now();
          try {
            await step.fn();
            logger.debug({ msg: 'shutdown step done', step: step.name, ms: Date.now() - started });
          } catch (error) {
            logger.error({ msg: 'shutdown step failed', step: step.name, error });
          }
        }
      })();
      return running;
    },
  };
}

/** What every feature receives (Ponder's pattern): options, logger, metrics, shutdown. */
export type Common = {
  options: GatewayOptions;
  logger: Logger;
  metrics: Metrics;
  shutdown: Shutdown;
};

export function createCommon(options: GatewayOptions, logger?: Logger): Common {
  const log = logger ?? createLogger(options.log.level);
  return { options, logger: log, metrics: createMetrics(), shutdown: createShutdown(log) };
}

/** Resolves after `ms`, or early (without throwing) when `signal` aborts. */
export function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
    signal?.addEventListener('abort', done, { once: true });
  });
}
