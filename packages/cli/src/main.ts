import { parseArgs } from 'node:util';
import { BaseError } from '@aipg/core';
import type { Command, CommandContext, Io } from './command.ts';
import { commands as registered } from './commands/index.ts';
import { globalOptions, globalOptionsHelp, resolveConfig } from './config.ts';
import { CliError } from './errors.ts';
import { table } from './output.ts';

export type MainParameters = Io & {
  env: Record<string, string | undefined>;
  /** The command list (default: the registry in commands/index.ts). */
  commands?: readonly Command[];
};

const valueFlags = new Set(
  Object.entries(globalOptions)
    .filter(([, o]) => o.type === 'string')
    .map(([name]) => `--${name}`),
);

/** The leading words of argv that are not flags (skipping global flags' values). */
function leadingWords(argv: readonly string[]): string[] {
  const words: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const token = argv[i] as string;
    if (token === '--') break;
    if (token.startsWith('-')) {
      if (valueFlags.has(token)) i++;
      continue;
    }
    words.push(token);
  }
  return words;
}

/** The command whose path is the longest prefix of `words`. */
function findCommand(commands: readonly Command[], words: readonly string[]): Command | undefined {
  let best: Command | undefined;
  for (const command of commands) {
    const matches = command.path.every((word, i) => words[i] === word);
    if (matches && command.path.length > (best?.path.length ?? 0)) best = command;
  }
  return best;
}

/** argv without the command's path words (their first occurrences, in order). */
function withoutPath(argv: readonly string[], path: readonly string[]): string[] {
  const rest = [...argv];
  let from = 0;
  for (const word of path) {
    for (let i = from; i < rest.length; i++) {
      const previous = rest[i - 1];
      if (rest[i] === word && !(previous && valueFlags.has(previous))) {
        rest.splice(i, 1);
        from = i;
        break;
      }
    }
  }
  return rest;
}

function usageLine(command: Command): string {
  return `aipg ${command.path.join(' ')}${command.usage ? ` ${command.usage}` : ''} [options]`;
}

function commandHelp(command: Command): string {
  const lines = [`Usage: ${usageLine(command)}`, '', command.description ?? command.summary];
  if (command.optionsHelp?.length) lines.push('', 'Options:', table(command.optionsHelp));
  lines.push('', 'Global options:', table(globalOptionsHelp));
  if (command.examples?.length) lines.push('', 'Examples:', ...command.examples.map((e) => `  ${e}`));
  return `${lines.join('\n')}\n`;
}

function generalHelp(commands: readonly Command[], prefix: readonly string[] = []): string {
  const shown = commands.filter((c) => prefix.every((word, i) => c.path[i] === word));
  const lines = [
    'aipg — the AI Power Grid command line',
    '',
    `Usage: aipg ${prefix.length ? `${prefix.join(' ')} ` : ''}<command> [arguments] [options]`,
    '',
    'Commands:',
    table(shown.map((c) => [`${c.path.join(' ')}${c.usage ? ` ${c.usage}` : ''}`, c.summary])),
    '',
    'Global options:',
    table(globalOptionsHelp),
    '',
    'Run `aipg <command> --help` for a command’s options and examples.',
  ];
  return `${lines.join('\n')}\n`;
}

/** Node's parseArgs errors, as one short line. */
function parseArgsError(error: unknown, command: Command): CliError | undefined {
  const code = (error as { code?: string }).code;
  if (typeof code !== 'string' || !code.startsWith('ERR_PARSE_ARGS')) return undefined;
  const help = `run aipg ${command.path.join(' ')} --help`;
  const message = (error as Error).message;
  if (code === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
    const option = /'([^']+)'/.exec(message)?.[1] ?? '';
    return new CliError(`unknown option ${option}`, 'USAGE', help);
  }
  if (code === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
    const option = /'(--?[\w-]+)/.exec(message)?.[1] ?? 'an option';
    return new CliError(`${option} needs a value`, 'USAGE', help);
  }
  return new CliError(message.split('.')[0] ?? message, 'USAGE', help);
}

/** One line for a failure: the short message and its details; never a stack trace. */
export function formatError(error: unknown): string {
  if (error instanceof BaseError) {
    const line = error.details ? `${error.shortMessage} (${error.details})` : error.shortMessage;
    return line.replace(/\s*\n\s*/g, ' ');
  }
  const message = error instanceof Error ? error.message : String(error);
  return `unexpected error: ${message.split('\n')[0]}`;
}

function debugDump(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current && depth < 8; depth++) {
    parts.push(current instanceof Error ? (current.stack ?? current.message) : String(current));
    current = current instanceof Error ? current.cause : undefined;
  }
  return `${parts.join('\n\ncaused by: ')}\n`;
}

/** Runs the CLI: returns the exit code. Every error becomes one line on stderr and exit code 1. */
export async function main(
  argv: readonly string[],
  { env, stdout, stderr, stdin, commands = registered }: MainParameters,
) {
  const io: Io = { stdout, stderr, stdin };
  const words = leadingWords(argv);
  const command = findCommand(commands, words);
  const wantsHelp = argv.includes('--help') || argv.includes('-h');
  const debug =
    argv.includes('--debug') || ['1', 'true', 'yes'].includes((env.AIPG_DEBUG ?? '').toLowerCase());

  if (!command) {
    const helpFor = words[0] === 'help' ? findCommand(commands, words.slice(1)) : undefined;
    if (helpFor) {
      stdout.write(commandHelp(helpFor));
      return 0;
    }
    if (words.length === 0 || words[0] === 'help') {
      stdout.write(generalHelp(commands));
      return words.length === 0 && !wantsHelp ? 1 : 0;
    }
    const group = commands.some((c) => c.path[0] === words[0]);
    if (group && (wantsHelp || words.length === 1)) {
      stdout.write(generalHelp(commands, [words[0] as string]));
      return wantsHelp ? 0 : 1;
    }
    stderr.write(`error: unknown command "${words.join(' ')}" (run aipg --help for the list)\n`);
    return 1;
  }
  if (wantsHelp) {
    stdout.write(commandHelp(command));
    return 0;
  }

  const listeners: (() => void)[] = [];
  try {
    const { values, positionals } = (() => {
      try {
        return parseArgs({
          args: withoutPath(argv, command.path),
          options: { ...globalOptions, ...command.options },
          allowPositionals: true,
          strict: true,
        });
      } catch (error) {
        throw parseArgsError(error, command) ?? error;
      }
    })();
    const { min, max } = command.positionals ?? { min: 0, max: 0 };
    if (positionals.length < min) {
      throw new CliError(`missing arguments: ${usageLine(command)}`, 'USAGE');
    }
    if (positionals.length > max) {
      throw new CliError(`unexpected argument "${positionals[max]}": ${usageLine(command)}`, 'USAGE');
    }
    const config = resolveConfig(values as Parameters<typeof resolveConfig>[0], env);
    const ctx: CommandContext = {
      args: positionals,
      flags: values,
      config,
      io,
      waitForShutdown: () =>
        new Promise((resolve) => {
          // Stays installed until the command returns: a second Ctrl-C must not kill the process
          // half-way through a clean shutdown (the command bounds its own shutdown time).
          for (const signal of ['SIGINT', 'SIGTERM'] as const) {
            const listener = () => resolve(signal);
            process.on(signal, listener);
            listeners.push(() => process.off(signal, listener));
          }
        }),
    };
    return (await command.run(ctx)) ?? 0;
  } catch (error) {
    stderr.write(`error: ${formatError(error)}\n`);
    if (debug) stderr.write(debugDump(error));
    return 1;
  } finally {
    for (const remove of listeners) remove();
  }
}
