/**
 * Run until signalled: the one way a daemon's entry point (`aipg worker start`, `aipg validator start`,
 * `aipg-gateway`) runs, stops and exits.
 *
 * Exit codes (docs/operators/environment.md, "Stopping and exit codes"):
 *   0    stopped cleanly: after SIGINT / SIGTERM everything in flight finished, or the daemon stopped itself;
 *   1    could not start (bad setting, no bond, wrong chain, unreachable RPC…) or stopped on an error;
 *   130  a second SIGINT before the drain ended: exited at once (128 + 2);
 *   143  a second SIGTERM before the drain ended: exited at once (128 + 15).
 * Every start-up error is one line on stderr, `<name>: <what is wrong>`.
 */
import { BaseError } from '@aipg/core';

export const EXIT_CODES = {
  ok: 0,
  failed: 1,
  SIGINT: 130,
  SIGTERM: 143,
} as const;

/** How a daemon ended: `error` when it stopped on one. */
export type Ended = { error?: Error | undefined };

/** A started daemon, as `runUntilSignalled` drives it. */
export type RunnableDaemon = {
  /** Starts the drain; resolves once stopped (rejects: stopping failed). */
  stop(): Promise<unknown>;
  /** Resolves once the daemon stopped, for whatever reason: to an `Ended` with `error` when it stopped on one. */
  readonly stopped?: Promise<unknown> | undefined;
};

export type RunUntilSignalledParameters<D extends RunnableDaemon> = {
  /** Prefix of every line on stderr: `aipg worker`, `aipg-gateway`. */
  name: string;
  /** Builds the options and starts the daemon; a throw is a start-up failure (one line, exit 1). */
  start(): Promise<D>;
  /** What the drain does, for the line printed on the first signal (`taking no new jobs, finishing 2 running jobs`). */
  draining?: ((daemon: D, signal: NodeJS.Signals) => string) | undefined;
  /** Where SIGINT / SIGTERM arrive (default `process`). */
  signals?: Pick<NodeJS.Process, 'on' | 'off'> | undefined;
  /** One-line messages go here (default `process.stderr`). */
  stderr?: { write(s: string): unknown } | undefined;
  /** Called on a second signal (default `process.exit`). */
  exit?: ((code: number) => void) | undefined;
};

/**
 * Starts the daemon and runs it until SIGINT / SIGTERM: the first signal drains (`stop()`; a signal
 * during start-up drains as soon as the daemon is up), a second one exits at once. Resolves to the
 * process exit code (above); the caller exits with it.
 */
export async function runUntilSignalled<D extends RunnableDaemon>({
  name,
  start,
  draining,
  signals = process,
  stderr = process.stderr,
  exit = (code: number) => process.exit(code),
}: RunUntilSignalledParameters<D>): Promise<number> {
  let daemon: D | undefined;
  let settle: (value: Ended | undefined) => void = () => {};
  let fail: (error: unknown) => void = () => {};
  const ended = new Promise<Ended | undefined>((resolve, reject) => {
    settle = resolve;
    fail = reject;
  });
  let signalled: NodeJS.Signals | undefined;
  const drain = (d: D, signal: NodeJS.Signals) => {
    stderr.write(
      `${name}: ${signal}: ${draining?.(d, signal) ?? 'stopping'} (${signal} again to exit now)\n`,
    );
    // Without `stopped`, the daemon has ended when its `stop()` settles.
    d.stop().then(() => {
      if (!d.stopped) settle(undefined);
    }, fail);
  };
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      stderr.write(`${name}: second ${signal}, exiting now\n`);
      exit(signal === 'SIGINT' || signal === 'SIGTERM' ? EXIT_CODES[signal] : EXIT_CODES.failed);
      return;
    }
    signalled = signal;
    // A signal while starting: the drain begins as soon as the daemon is up.
    if (daemon) drain(daemon, signal);
  };
  signals.on('SIGTERM', onSignal);
  signals.on('SIGINT', onSignal);
  try {
    try {
      daemon = await start();
    } catch (error) {
      stderr.write(`${name}: ${describeError(error)}\n`);
      return EXIT_CODES.failed;
    }
    daemon.stopped?.then(
      (value) => settle(value && typeof value === 'object' ? (value as Ended) : undefined),
      fail,
    );
    if (signalled) drain(daemon, signalled);
    const error = (await ended)?.error;
    if (error) {
      stderr.write(`${name}: stopped: ${describeError(error)}\n`);
      return EXIT_CODES.failed;
    }
    return EXIT_CODES.ok;
  } catch (error) {
    stderr.write(`${name}: stopping failed: ${describeError(error)}\n`);
    return EXIT_CODES.failed;
  } finally {
    signals.off('SIGTERM', onSignal);
    signals.off('SIGINT', onSignal);
  }
}

/** One line for an operator: a project error's `shortMessage` (and its details), viem's, else the first line. */
export function describeError(error: unknown): string {
  if (error instanceof BaseError)
    return error.details
      ? `${error.shortMessage}: ${error.details.replace(/\s*\n\s*/g, ' ')}`
      : error.shortMessage;
  // viem's errors carry a one-line `shortMessage` too (an unreachable RPC, a failed call).
  const short = (error as { shortMessage?: unknown } | null)?.shortMessage;
  if (typeof short === 'string' && short) return short;
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}
