import { InvalidInputError } from '@aipg/core';
import { type Address, getAddress, isAddress } from 'viem';
import { CliError } from './errors.ts';

/** The flags every command accepts (parsed together with the command's own). */
export const globalOptions = {
  'rpc-url': { type: 'string' },
  keystore: { type: 'string' },
  deployment: { type: 'string' },
  grid: { type: 'string' },
  debug: { type: 'boolean' },
  help: { type: 'boolean', short: 'h' },
} as const;

export const globalOptionsHelp = [
  [
    '--rpc-url <url>',
    'JSON-RPC endpoint (env AIPG_RPC_URL; default: the deployment file’s, else http://127.0.0.1:8545)',
  ],
  ['--keystore <file>', 'Ethereum V3 JSON keystore to sign with (password from env AIPG_KEYSTORE_PASSWORD)'],
  ['', 'without it, the key comes from env AIPG_PRIVATE_KEY'],
  ['--deployment <file>', `deployment file (env AIPG_DEPLOYMENT; default ${'.aipg/deployment.json'})`],
  ['--grid <address>', 'Grid diamond address, instead of a deployment file'],
  ['--debug', 'print the full error (with its cause chain) on failure (env AIPG_DEBUG=1)'],
  ['-h, --help', 'show help'],
] as const;

export const DEFAULT_DEPLOYMENT_PATH = '.aipg/deployment.json';
export const DEFAULT_RPC_URL = 'http://127.0.0.1:8545';

export type KeySource =
  | { kind: 'env'; privateKey: string }
  | { kind: 'keystore'; path: string; password: string | undefined };

/** Options every command sees, from flags, then environment, then defaults. */
export type CliConfig = {
  /** Flag or env; undefined falls back to the deployment file's `rpcUrl`, then DEFAULT_RPC_URL. */
  rpcUrl: string | undefined;
  deploymentPath: string;
  grid: Address | undefined;
  key: KeySource | undefined;
  debug: boolean;
  /** A gateway's HTTP URL for API commands (`aipg chat`), from env AIPG_GATEWAY_URL; `--gateway` wins. */
  gatewayUrl: string | undefined;
  /** An API key for API commands (`aipg chat`), from env AIPG_API_KEY; `--api-key` wins. */
  apiKey: string | undefined;
  /**
   * The gateway's database, for `aipg indexer start`: env DATABASE_URL (PostgreSQL), AIPG_GATEWAY_DB_DIR (PGlite
   * directory), AIPG_GATEWAY_DB_SCHEMA, as the gateway reads them; its flags win.
   */
  database: { url: string | undefined; dir: string | undefined; schema: string | undefined };
};

export type GlobalFlags = {
  'rpc-url'?: string | undefined;
  keystore?: string | undefined;
  deployment?: string | undefined;
  grid?: string | undefined;
  debug?: boolean | undefined;
};

/** Parses an address given on the command line; `what` names it in the error. */
export function parseAddress(value: string, what: string): Address {
  if (!isAddress(value, { strict: false })) {
    throw new InvalidInputError(
      `invalid address "${value}" for ${what}`,
      'expected 0x followed by 40 hex characters',
    );
  }
  return getAddress(value);
}

/**
 * The only place that reads the environment: flags win over env, env over defaults.
 * Env: AIPG_RPC_URL, AIPG_PRIVATE_KEY, AIPG_KEYSTORE, AIPG_KEYSTORE_PASSWORD, AIPG_DEPLOYMENT, AIPG_GRID, AIPG_DEBUG,
 * AIPG_GATEWAY_URL, AIPG_API_KEY, DATABASE_URL, AIPG_GATEWAY_DB_DIR, AIPG_GATEWAY_DB_SCHEMA.
 */
export function resolveConfig(flags: GlobalFlags, env: Record<string, string | undefined>): CliConfig {
  const nonEmpty = (v: string | undefined) => (v === undefined || v.trim() === '' ? undefined : v.trim());
  const rpcUrl = nonEmpty(flags['rpc-url']) ?? nonEmpty(env.AIPG_RPC_URL);
  if (rpcUrl !== undefined && !/^(https?|wss?):\/\/\S+$/.test(rpcUrl)) {
    throw new CliError(`invalid RPC URL "${rpcUrl}"`, 'CONFIG', 'expected http(s)://… or ws(s)://…');
  }
  const gridValue = nonEmpty(flags.grid) ?? nonEmpty(env.AIPG_GRID);
  const keystore = nonEmpty(flags.keystore) ?? nonEmpty(env.AIPG_KEYSTORE);
  const privateKey = nonEmpty(env.AIPG_PRIVATE_KEY);
  let key: KeySource | undefined;
  if (keystore) key = { kind: 'keystore', path: keystore, password: env.AIPG_KEYSTORE_PASSWORD };
  else if (privateKey) key = { kind: 'env', privateKey };
  return {
    rpcUrl,
    deploymentPath: nonEmpty(flags.deployment) ?? nonEmpty(env.AIPG_DEPLOYMENT) ?? DEFAULT_DEPLOYMENT_PATH,
    grid: gridValue ? parseAddress(gridValue, '--grid') : undefined,
    key,
    debug: flags.debug ?? ['1', 'true', 'yes'].includes((env.AIPG_DEBUG ?? '').toLowerCase()),
    gatewayUrl: nonEmpty(env.AIPG_GATEWAY_URL),
    apiKey: nonEmpty(env.AIPG_API_KEY),
    database: {
      url: nonEmpty(env.DATABASE_URL),
      dir: nonEmpty(env.AIPG_GATEWAY_DB_DIR),
      schema: nonEmpty(env.AIPG_GATEWAY_DB_SCHEMA),
    },
  };
}
