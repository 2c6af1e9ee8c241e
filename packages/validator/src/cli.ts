import { BaseError } from '@aipg/core';
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

const SIGNAL_EXIT_CODES = { SIGINT: 130, SIGTERM: 143 } as const;

/**
 * The body of `aipg validator start`: builds the options from parsed flags, starts the validator
 * and runs until SIGTERM / SIGINT (the current step ends, the state is saved; a second signal
 * exits at once). Resolves to the process exit code: 0 after a clean stop, 1 when the validator
 * could not start (one line on stderr: no bond, wrong chain, bad flag…).
 */
export async function runValidatorStart(
  flags: ValidatorFlags,
  deps: RunValidatorStartDependencies = {},
): Promise<number> {
  const env = deps.env ?? process.env;
  const signals = deps.signals ?? process;
  const stderr = deps.stderr ?? process.stderr;
  const exit = deps.exit ?? ((code: number) => process.exit(code));

  let validator: Awaited<ReturnType<typeof startValidator>>;
  try {
    const options = await createValidatorOptions(flags, env);
    validator = await startValidator(options, deps);
  } catch (error) {
    stderr.write(`aipg validator: ${describe(error)}\n`);
    return 1;
  }

  let signalled = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (signalled) {
      stderr.write(`aipg validator: second ${signal}, exiting now\n`);
      exit(signal in SIGNAL_EXIT_CODES ? SIGNAL_EXIT_CODES[signal as keyof typeof SIGNAL_EXIT_CODES] : 1);
      return;
    }
    signalled = true;
    stderr.write(
      `aipg validator: ${signal}: finishing the current step and saving the state (${signal} again to exit now)\n`,
    );
    void validator.stop();
  };
  signals.on('SIGTERM', onSignal);
  signals.on('SIGINT', onSignal);
  try {
    await validator.stopped;
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
