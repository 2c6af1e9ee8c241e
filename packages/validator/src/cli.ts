import { runUntilSignalled } from '@aipg/daemon';
import { createValidatorOptions, type ValidatorEnv, type ValidatorFlags } from './node/options.ts';
import { type StartValidatorDependencies, startValidator } from './node/validator.ts';

export type RunValidatorStartDependencies = StartValidatorDependencies & {
  /** Default `process.env`: the command is an entry point, and the options builder is the only reader. */
  env?: ValidatorEnv | undefined;
  /** Where SIGTERM / SIGINT arrive (default `process`). */
  signals?: Pick<NodeJS.Process, 'on' | 'off'> | undefined;
  /** One-line start-up errors go here (default `process.stderr`). */
  stderr?: { write(s: string): unknown } | undefined;
  /** Called on a second signal (default `process.exit`). */
  exit?: ((code: number) => void) | undefined;
};

/**
 * The body of `aipg validator start`: builds the options from parsed flags, starts the validator
 * and runs until SIGTERM / SIGINT (@aipg/daemon's `runUntilSignalled`: its exit codes): the current
 * step ends, the state is saved; a second signal exits at once.
 */
export async function runValidatorStart(
  flags: ValidatorFlags,
  deps: RunValidatorStartDependencies = {},
): Promise<number> {
  const { env = process.env, signals, stderr, exit, ...startDeps } = deps;
  return runUntilSignalled({
    name: 'aipg validator',
    start: async () => startValidator(await createValidatorOptions(flags, env), startDeps),
    draining: () => 'finishing the current step and saving the state',
    signals,
    stderr,
    exit,
  });
}
