import type { Logger } from 'pino';
import type { MetricsRegistry } from './metrics.ts';

export type Shutdown = {
  /** Aborted when shutdown starts: loops stop, new work is refused. */
  readonly signal: AbortSignal;
  isShuttingDown(): boolean;
  /** Registers a step; steps run in reverse order of registration (last opened, first closed). */
  add(name: string, fn: () => Promise<void> | void): void;
  /** Runs every step once; later calls return the same promise. A failed step is logged, the rest still run. */
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

/**
 * What every part of a daemon receives (`createX({ common, … })`): its options, its logger, its
 * metrics and its shutdown. Each daemon's own `Common` fills in its options and metrics types.
 */
export type DaemonCommon<Options, Metrics = MetricsRegistry> = {
  options: Options;
  logger: Logger;
  metrics: Metrics;
  shutdown: Shutdown;
};
