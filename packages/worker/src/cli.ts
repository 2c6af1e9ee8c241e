import { runUntilSignalled } from '@aipg/daemon';
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

/**
 * The body of `aipg worker start`: builds the options from parsed flags, starts the worker and
 * runs until stopped (@aipg/daemon's `runUntilSignalled`: its exit codes). SIGTERM / SIGINT drain
 * (no new jobs, running jobs finish and deliver their receipts, then the connection closes); a
 * second signal exits at once.
 */
export async function runWorkerStart(
  flags: WorkerFlags,
  deps: RunWorkerStartDependencies = {},
): Promise<number> {
  const { env = process.env, signals, stderr, exit, ...startDeps } = deps;
  return runUntilSignalled({
    name: 'aipg worker',
    start: async () => startWorker(await createWorkerOptions(flags, env), startDeps),
    draining: (worker) => {
      const running = worker.status().jobs.active;
      return `taking no new jobs, finishing ${running} running job${running === 1 ? '' : 's'}`;
    },
    signals,
    stderr,
    exit,
  });
}
