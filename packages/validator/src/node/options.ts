/**
 * The validator's configuration: flags first, then the environment, then defaults. The only place
 * the validator reads the environment.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { decryptKeystore, readDeployment } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import { PRODUCTION_ANCHORS, parseAnchors, type TrustAnchors } from '@aipg/tee';
import { type Address, getAddress, type Hex, isAddress } from 'viem';
import { CHECKER_MODES, type CheckerMode } from '../checkers/types.ts';
import { ValidatorConfigError } from '../errors.ts';

export type NetworkKind = 'devnet' | 'base' | 'base-sepolia';
export const NETWORKS = {
  devnet: { chainId: 31337, rpcUrl: 'http://127.0.0.1:8545' },
  base: { chainId: 8453, rpcUrl: 'https://mainnet.base.org' },
  'base-sepolia': { chainId: 84532, rpcUrl: 'https://sepolia.base.org' },
} as const satisfies Record<NetworkKind, { chainId: number; rpcUrl: string }>;

export type GatewayEndpoint = {
  /** Base URL of the gateway's HTTP API. */
  url: string;
  /** The gateway's address (the account that settles its batches); null = ask this URL for every gateway. */
  address: Address | null;
};

export type FinalizeMode = 'mine' | 'all' | 'off';

export type ValidatorOptions = {
  network: NetworkKind;
  chainId: number;
  rpcUrl: string;
  grid: Address;
  /** Where to start following `BatchSettled` when there is no state yet (the deployment block). */
  startBlock: bigint | null;
  /** The operator (hot) key: signs audit requests and attestations. Never logged. */
  operatorKey: Hex;
  gateways: GatewayEndpoint[];
  mode: CheckerMode;
  /** GGUF files this validator holds (re-execute: weights; cross-check: tokenizer and template). */
  gguf: string[];
  /** Where the project's presets are generated, and the default for other models. */
  modelDir: string;
  presets: boolean;
  threads: number;
  gpuLayers: number | 'auto';
  contextSize: number;
  dataDir: string;
  pollIntervalMs: number;
  /** Most blocks per `eth_getLogs` call. */
  logRange: number;
  /** Blocks behind the head the log cursor stays (reorg safety). */
  confirmations: number;
  finalize: FinalizeMode;
  /** Withdraw earnings once they reach this (AIPG wei); null = never. */
  withdrawMin: bigint | null;
  metrics: { port: number; host: string } | null;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  /**
   * The roots a confidential receipt's TEE evidence must verify under (docs/confidential.md): Intel's and
   * NVIDIA's unless `--tee-anchors` names a file (a devnet's simulated root, a test's).
   */
  tee?: { anchors: TrustAnchors; anchorsSource: string } | undefined;
};

/** Flags as the CLI parses them (`aipg validator start --gateway … --mode crosscheck`); all optional. */
export type ValidatorFlags = {
  network?: string | undefined;
  rpc?: string | undefined;
  deployment?: string | undefined;
  grid?: string | undefined;
  keystore?: string | undefined;
  passwordFile?: string | undefined;
  /** `<url>` or `<gateway address>=<url>`, comma-separated for several. */
  gateway?: string | string[] | undefined;
  mode?: string | undefined;
  /** GGUF files, comma-separated or repeated. */
  gguf?: string | string[] | undefined;
  modelDir?: string | undefined;
  presets?: string | boolean | undefined;
  threads?: string | number | undefined;
  gpuLayers?: string | number | undefined;
  contextSize?: string | number | undefined;
  dataDir?: string | undefined;
  pollInterval?: string | number | undefined;
  logRange?: string | number | undefined;
  confirmations?: string | number | undefined;
  finalize?: string | undefined;
  withdrawMin?: string | undefined;
  metricsPort?: string | number | undefined;
  metricsHost?: string | undefined;
  logLevel?: string | undefined;
  teeAnchors?: string | undefined;
};

export type ValidatorEnv = Readonly<Record<string, string | undefined>>;

/** Environment variables the validator reads (only here). */
export const VALIDATOR_ENV = {
  operatorKey: 'AIPG_OPERATOR_KEY',
  keystore: 'AIPG_KEYSTORE',
  keystorePassword: 'AIPG_KEYSTORE_PASSWORD',
  gateway: 'AIPG_GATEWAY_URL',
  rpc: 'AIPG_RPC_URL',
  network: 'AIPG_NETWORK',
  grid: 'AIPG_GRID',
  deployment: 'AIPG_DEPLOYMENT',
  mode: 'AIPG_VALIDATOR_MODE',
  dataDir: 'AIPG_VALIDATOR_DATA',
  metricsPort: 'AIPG_METRICS_PORT',
  logLevel: 'AIPG_LOG_LEVEL',
  teeAnchors: 'AIPG_TEE_ANCHORS',
} as const;

export const VALIDATOR_DEFAULTS = {
  gateway: 'http://127.0.0.1:8080',
  mode: 'reexecute' as CheckerMode,
  threads: 1,
  contextSize: 4096,
  pollIntervalMs: 2_000,
  logRange: 2_000,
  confirmations: 0,
  finalize: 'mine' as FinalizeMode,
  withdrawMin: '10',
  metricsHost: '127.0.0.1',
  logLevel: 'info',
} as const;

const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export async function createValidatorOptions(
  flags: ValidatorFlags,
  env: ValidatorEnv,
): Promise<ValidatorOptions> {
  const deploymentPath = flags.deployment ?? env[VALIDATOR_ENV.deployment];
  const deployment = deploymentPath ? await readDeployment(deploymentPath) : undefined;

  const networkName =
    flags.network ?? env[VALIDATOR_ENV.network] ?? networkOfChainId(deployment?.chainId) ?? 'devnet';
  if (!(networkName in NETWORKS))
    throw new ValidatorConfigError(
      `--network ${networkName} is not one of ${Object.keys(NETWORKS).join(', ')}`,
    );
  const network = networkName as NetworkKind;
  const chainId = NETWORKS[network].chainId;
  if (deployment && deployment.chainId !== chainId)
    throw new ValidatorConfigError(
      `the deployment file ${deploymentPath} is for chain ${deployment.chainId}, not ${network} (chain ${chainId})`,
    );

  const gridValue = flags.grid ?? env[VALIDATOR_ENV.grid] ?? deployment?.grid;
  if (!gridValue)
    throw new ValidatorConfigError('no Grid address: pass --grid 0x… or --deployment <deployment.json>');
  if (!isAddress(gridValue, { strict: false }))
    throw new ValidatorConfigError(`--grid ${gridValue} is not an address`);

  const mode = flags.mode ?? env[VALIDATOR_ENV.mode] ?? VALIDATOR_DEFAULTS.mode;
  if (!CHECKER_MODES.includes(mode as CheckerMode))
    throw new ValidatorConfigError(`--mode ${mode} is not one of ${CHECKER_MODES.join(', ')}`);

  const dataDir = resolve(
    flags.dataDir ?? env[VALIDATOR_ENV.dataDir] ?? join(homedir(), '.aipg', 'validator'),
  );
  const metricsPortValue = flags.metricsPort ?? env[VALIDATOR_ENV.metricsPort];
  const logLevel = flags.logLevel ?? env[VALIDATOR_ENV.logLevel] ?? VALIDATOR_DEFAULTS.logLevel;
  if (!(LOG_LEVELS as readonly string[]).includes(logLevel))
    throw new ValidatorConfigError(`--log-level ${logLevel} is not one of ${LOG_LEVELS.join(', ')}`);
  const finalize = flags.finalize ?? VALIDATOR_DEFAULTS.finalize;
  if (!['mine', 'all', 'off'].includes(finalize))
    throw new ValidatorConfigError(`--finalize ${finalize} is not one of mine, all, off`);
  const withdrawValue = flags.withdrawMin ?? VALIDATOR_DEFAULTS.withdrawMin;
  let withdrawMin: bigint | null;
  if (withdrawValue === 'off' || withdrawValue === 'never') withdrawMin = null;
  else {
    try {
      withdrawMin = parseAipg(withdrawValue);
    } catch {
      throw new ValidatorConfigError(`--withdraw-min ${withdrawValue} is not an AIPG amount (or "off")`);
    }
  }

  return {
    network,
    chainId,
    rpcUrl: flags.rpc ?? env[VALIDATOR_ENV.rpc] ?? deployment?.rpcUrl ?? NETWORKS[network].rpcUrl,
    grid: getAddress(gridValue),
    startBlock: deployment ? BigInt(deployment.deployBlock) : null,
    operatorKey: await resolveOperatorKey(flags, env),
    gateways: parseGateways(flags.gateway ?? env[VALIDATOR_ENV.gateway] ?? VALIDATOR_DEFAULTS.gateway),
    mode: mode as CheckerMode,
    gguf: list(flags.gguf).map((p) => resolve(p)),
    modelDir: resolve(flags.modelDir ?? join(dataDir, 'models')),
    presets: parseBool('--presets', flags.presets, true),
    threads: parseIntFlag('--threads', flags.threads ?? VALIDATOR_DEFAULTS.threads, 1, 1024),
    gpuLayers:
      flags.gpuLayers === undefined || flags.gpuLayers === 'auto'
        ? flags.gpuLayers === 'auto'
          ? 'auto'
          : 0
        : parseIntFlag('--gpu-layers', flags.gpuLayers, 0, 100_000),
    contextSize: parseIntFlag(
      '--context-size',
      flags.contextSize ?? VALIDATOR_DEFAULTS.contextSize,
      64,
      1 << 20,
    ),
    dataDir,
    pollIntervalMs:
      flags.pollInterval === undefined
        ? VALIDATOR_DEFAULTS.pollIntervalMs
        : parseIntFlag('--poll-interval', flags.pollInterval, 50, 3_600_000),
    logRange: parseIntFlag('--log-range', flags.logRange ?? VALIDATOR_DEFAULTS.logRange, 1, 1_000_000),
    confirmations: parseIntFlag(
      '--confirmations',
      flags.confirmations ?? VALIDATOR_DEFAULTS.confirmations,
      0,
      1_000,
    ),
    finalize: finalize as FinalizeMode,
    withdrawMin,
    metrics:
      metricsPortValue === undefined
        ? null
        : {
            port: parseIntFlag('--metrics-port', metricsPortValue, 0, 65_535),
            host: flags.metricsHost ?? VALIDATOR_DEFAULTS.metricsHost,
          },
    logLevel: logLevel as ValidatorOptions['logLevel'],
    tee: await teeAnchors(flags.teeAnchors ?? env[VALIDATOR_ENV.teeAnchors]),
  };
}

async function teeAnchors(file: string | undefined): Promise<NonNullable<ValidatorOptions['tee']>> {
  if (file === undefined) return { anchors: PRODUCTION_ANCHORS, anchorsSource: 'production' };
  try {
    return { anchors: parseAnchors(await readFile(file, 'utf8')), anchorsSource: file };
  } catch (error) {
    throw new ValidatorConfigError(
      `--tee-anchors ${file}: ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/** `url`, or `0xGatewayAddress=url`, comma-separated. */
export function parseGateways(value: string | readonly string[]): GatewayEndpoint[] {
  const items = list(value);
  if (items.length === 0) throw new ValidatorConfigError('no gateway: pass --gateway <url>');
  return items.map((item) => {
    const eq = item.indexOf('=');
    const [addr, url] =
      eq > 0 && item.startsWith('0x') ? [item.slice(0, eq), item.slice(eq + 1)] : [null, item];
    if (addr !== null && !isAddress(addr, { strict: false }))
      throw new ValidatorConfigError(`--gateway ${item}: ${addr} is not an address`);
    let parsed: URL;
    try {
      parsed = new URL(url);
    } catch {
      throw new ValidatorConfigError(`--gateway ${item}: ${url} is not a URL`);
    }
    if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
      throw new ValidatorConfigError(`--gateway ${item}: use http:// or https:// (the audit API is HTTP)`);
    return { url: parsed.toString().replace(/\/+$/, ''), address: addr === null ? null : getAddress(addr) };
  });
}

function list(value: string | readonly string[] | undefined): string[] {
  if (value === undefined) return [];
  return (typeof value === 'string' ? [value] : value)
    .flatMap((v) => v.split(','))
    .map((v) => v.trim())
    .filter((v) => v.length > 0);
}

function networkOfChainId(chainId: number | undefined): NetworkKind | undefined {
  if (chainId === undefined) return undefined;
  return (Object.keys(NETWORKS) as NetworkKind[]).find((n) => NETWORKS[n].chainId === chainId);
}

function parseIntFlag(flag: string, value: string | number, min: number, max: number): number {
  const n =
    typeof value === 'number' ? value : /^\d+$/.test(value.trim()) ? Number(value.trim()) : Number.NaN;
  if (!Number.isInteger(n) || n < min || n > max)
    throw new ValidatorConfigError(`${flag} ${value} must be an integer from ${min} to ${max}`);
  return n;
}

function parseBool(flag: string, value: string | boolean | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new ValidatorConfigError(`${flag} ${value} must be true or false`);
}

async function resolveOperatorKey(flags: ValidatorFlags, env: ValidatorEnv): Promise<Hex> {
  const rawKey = env[VALIDATOR_ENV.operatorKey]?.trim();
  const keystore = flags.keystore ?? env[VALIDATOR_ENV.keystore];
  if (rawKey && keystore)
    throw new ValidatorConfigError(`both ${VALIDATOR_ENV.operatorKey} and a keystore are set: use one`);
  if (rawKey) {
    const key = rawKey.startsWith('0x') ? rawKey : `0x${rawKey}`;
    // The value itself is never echoed: it may be a slightly mistyped real key.
    if (!/^0x[0-9a-fA-F]{64}$/.test(key))
      throw new ValidatorConfigError(`${VALIDATOR_ENV.operatorKey} is not a 32-byte hex key`);
    return key as Hex;
  }
  if (keystore) {
    let password = env[VALIDATOR_ENV.keystorePassword];
    if (flags.passwordFile) {
      try {
        password = (await readFile(flags.passwordFile, 'utf8')).replace(/\r?\n$/, '');
      } catch (cause) {
        throw new ValidatorConfigError(`cannot read password file ${flags.passwordFile}`, { cause });
      }
    }
    if (password === undefined)
      throw new ValidatorConfigError(
        `the keystore needs a password: set ${VALIDATOR_ENV.keystorePassword} or pass --password-file`,
      );
    let json: string;
    try {
      json = await readFile(keystore, 'utf8');
    } catch (cause) {
      throw new ValidatorConfigError(`cannot read keystore ${keystore}`, { cause });
    }
    return decryptKeystore(json, password);
  }
  throw new ValidatorConfigError(
    `no operator key: set ${VALIDATOR_ENV.operatorKey} or pass --keystore <file>`,
  );
}
