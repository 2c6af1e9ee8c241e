import type { ParseArgsConfig } from 'node:util';

type ParseArgsOptionsConfig = NonNullable<ParseArgsConfig['options']>;

import type { CliConfig } from './config.ts';

/** Where a command writes: the real process streams in `bin/`, buffers in tests. */
export type Io = {
  stdout: { write(chunk: string): unknown };
  stderr: { write(chunk: string): unknown };
  /** Input for commands that read it (`aipg chat` without a message); absent: none. */
  stdin?: (AsyncIterable<string | Uint8Array> & { isTTY?: boolean | undefined }) | undefined;
};

export type CommandContext = {
  /** Positionals after the command's path (`aipg stake worker 1000` → `['worker', '1000']`). */
  args: string[];
  /** The command's own flags and the global ones, as `node:util` parseArgs returns them. */
  flags: Record<string, string | boolean | (string | boolean)[] | undefined>;
  config: CliConfig;
  io: Io;
  /** Resolves on the first SIGINT or SIGTERM after it is called (for long-running commands). */
  waitForShutdown: () => Promise<NodeJS.Signals>;
};

/**
 * One CLI command. Each lives in its own file under `commands/` and is registered by one line in
 * `commands/index.ts`.
 */
export type Command = {
  /** Words that name it: `['chain', 'up']` is `aipg chain up`. */
  path: readonly string[];
  /** One line for the command list. */
  summary: string;
  /** Arguments after the path, for the usage line: `<worker|validator> <amount>`. */
  usage?: string;
  /** Longer help text, shown by `--help`. */
  description?: string;
  /** The command's own flags (`node:util` parseArgs config). */
  options?: ParseArgsOptionsConfig;
  /** `[flag, help]` pairs for `--help`. */
  optionsHelp?: readonly (readonly [string, string])[];
  /** Full example invocations. */
  examples?: readonly string[];
  /** Allowed number of positionals (default 0..0). */
  positionals?: { min: number; max: number };
  /** Returns the exit code (default 0). Throwing prints one error line and exits 1. */
  run: (ctx: CommandContext) => Promise<number | undefined>;
};

export function defineCommand(command: Command): Command {
  return command;
}
