import { ConfigError } from '../errors.ts';
import type { GatewayFlags } from '../options.ts';

/** `--kebab-case value`, `--flag=value`, `--set dotted.name=value` → `GatewayFlags`. */
export function parseFlags(argv: readonly string[]): GatewayFlags & { help?: boolean } {
  const flags: Record<string, unknown> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--help' || arg === '-h') {
      flags.help = true;
      continue;
    }
    if (!arg.startsWith('--')) throw new ConfigError(`unexpected argument "${arg}"`);
    const [rawName = '', inline] = arg.slice(2).split(/=(.*)/s, 2);
    const value = inline ?? argv[++i];
    if (value === undefined) throw new ConfigError(`--${rawName} needs a value`);
    if (rawName === 'set') {
      const [key = '', v] = value.split(/=(.*)/s, 2);
      if (!key || v === undefined) throw new ConfigError(`--set expects key=value, got "${value}"`);
      flags[key] = v;
      continue;
    }
    flags[rawName.replace(/-([a-z])/g, (_, ch: string) => ch.toUpperCase())] = value;
  }
  return flags as GatewayFlags & { help?: boolean };
}
