import { BaseError } from '@aipg/core';
import { createWorkerOptions, type WorkerEnv, type WorkerFlags } from './config/options.ts';
import { type StartWorkerDependencies, startWorker } from './worker.ts';

export type RunWorkerStartDependencies = StartWorkerDependencies & {
  /** Default `process.env`: the command is an entry point, and the options builder is the only reader. */
  env?: WorkerEnv | undefined;
  /** Where SIGTERM / SIGINT arrive (default `process`). */
  signals?: Pick<NodeJS.Process, 'on' | 'off'> | undefined;
  /** One-line start-up errors go here (default `process.stderr`). */
  stderr?: { write(s: string): unknown } | undefined;
  /** Called on a second signal (default `process.exit`). */
  exit?: ((code: number) => void) | undefined;
};

const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/**
 * The body of `aipg worker start`: builds the options from parsed flags, starts the worker and
 * runs until stopped. SIGTERM / SIGINT drain (no new jobs, running jobs finish and deliver their
 * receipts, then the connection closes); a second signal exits at once. Resolves to the process
 * exit code: 0 after a clean stop, 1 when the worker could not start or stopped on an error.
 */
export async function runWorkerStart(
  flags: WorkerFlags,
  deps: RunWorkerStartDependencies = {},
): Promise<number> {
  const env = deps.env ?? process.env;
  const signals = deps.signals ?? process;
  const stderr = deps.stderr ?? process.stderr;
  const exit = deps.exit ?? ((code: number) => process.exit(code));

  let worker: Awaited<ReturnType<typeof startWorker>>;
  try {
    const options = await createWorkerOptions(flags, env);
    worker = await startWorker(options, deps);
  } catch (error) {
    stderr.write(`aipg worker: ${describe(error)}\n`);
    return 1;
  }

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      stderr.write(`aipg worker: second ${signal}, exiting now\n`);
      exit(signal in SIGNAL_EXIT_CODES ? SIGNAL_EXIT_CODES[signal as keyof typeof SIGNAL_EXIT_CODES] : 1);
      return;
    }
    signalled = true;
    const running = worker.status().jobs.active;
    stderr.write(
      `aipg worker: ${signal}: taking no new jobs, finishing ${running} running job${running === 1 ? '' : 's'} (${signal} again to exit now)\n`,
    );
    void worker.stop();
  };
  signals.on('SIGTERM', onSignal);
  signals.on('SIGINT', onSignal);
  try {
    const { error } = await worker.stopped;
    if (error) {
      stderr.write(`aipg worker: stopped: ${describe(error)}\n`);
      return 1;
    }
    return 0;
  } finally {
    signals.off('SIGTERM', onSignal);
    signals.off('SIGINT', onSignal);
  }
}

function describe(error: unknown): string {
  if (error instanceof BaseError) return error.shortMessage;
  // viem's errors carry a one-line `shortMessage` too (an unreachable RPC, a failed call).
  const short = (error as { shortMessage?: unknown } | null)?.shortMessage;
  if (typeof short === 'string' && short) return short;
  if (error instanceof Error) return error.message.split('\n')[0] ?? error.name;
  return String(error);
}
