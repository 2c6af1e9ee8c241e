/**
 * The validator's configuration: flags first, then the environment, then defaults. The only place
 * the validator reads the environment.
 */
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { readDeployment } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import {
  createEnvReader,
  DAEMON_ENV,
  type Fail,
  loadOperatorKey,
  operatorKeySource,
  parseAddress,
  parseIntValue,
  parseLogLevel,
  parsePort,
  parseRpcUrls,
} from '@aipg/daemon';
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
  /** The JSON-RPC endpoint (the first of `rpcUrls`). */
  rpcUrl: string;
  /** Every endpoint given (`--rpc-url a,b`): calls go to the first that answers. Default: `[rpcUrl]`. */
  rpcUrls?: readonly string[] | undefined;
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
  /** Deprecated environment names this configuration was read from (logged as warnings at start). */
  deprecations?: readonly string[] | undefined;
};

/** Flags as the CLI parses them (`aipg validator start --gateway … --mode crosscheck`); all optional. */
export type ValidatorFlags = {
  network?: string | undefined;
  /** `--rpc-url`: one JSON-RPC URL or several, comma-separated. */
  rpcUrl?: string | undefined;
  /** @deprecated The earlier name of `rpcUrl`, still read (with a deprecation notice). */
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

/** Environment variables the validator reads (only here): @aipg/daemon's vocabulary. */
export const VALIDATOR_ENV = {
  operatorKey: DAEMON_ENV.operatorKey.name,
  keystore: DAEMON_ENV.keystore.name,
  keystorePassword: DAEMON_ENV.keystorePassword.name,
  keystorePasswordFile: DAEMON_ENV.keystorePasswordFile.name,
  gateway: DAEMON_ENV.gatewayUrl.name,
  rpc: DAEMON_ENV.rpcUrl.name,
  network: DAEMON_ENV.network.name,
  grid: DAEMON_ENV.grid.name,
  deployment: DAEMON_ENV.deployment.name,
  mode: DAEMON_ENV.validatorMode.name,
  dataDir: DAEMON_ENV.dataDir.name,
  metricsPort: DAEMON_ENV.metricsPort.name,
  metricsHost: DAEMON_ENV.metricsHost.name,
  logLevel: DAEMON_ENV.logLevel.name,
  teeAnchors: DAEMON_ENV.teeAnchors.name,
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

/** The validator's errors for @aipg/daemon's parsers and key loading. */
const fail: Fail = (message, options) => new ValidatorConfigError(message, { cause: options?.cause });

export async function createValidatorOptions(
  flags: ValidatorFlags,
  env: ValidatorEnv,
): Promise<ValidatorOptions> {
  const vars = createEnvReader(env);
  const from = (flag: unknown, flagName: string, variable: (typeof DAEMON_ENV)[keyof typeof DAEMON_ENV]) =>
    flag !== undefined ? flagName : vars.source(variable);
  const deploymentPath = flags.deployment ?? vars.get(DAEMON_ENV.deployment);
  const deployment = deploymentPath ? await readDeployment(deploymentPath) : undefined;

  const networkName =
    flags.network ?? vars.get(DAEMON_ENV.network) ?? networkOfChainId(deployment?.chainId) ?? 'devnet';
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

  const gridValue = flags.grid ?? vars.get(DAEMON_ENV.grid) ?? deployment?.grid;
  if (!gridValue)
    throw new ValidatorConfigError('no Grid address: pass --grid 0x… or --deployment <deployment.json>');
  const grid = parseAddress(gridValue, from(flags.grid, '--grid', DAEMON_ENV.grid), fail);

  const mode = flags.mode ?? vars.get(DAEMON_ENV.validatorMode) ?? VALIDATOR_DEFAULTS.mode;
  if (!CHECKER_MODES.includes(mode as CheckerMode))
    throw new ValidatorConfigError(`--mode ${mode} is not one of ${CHECKER_MODES.join(', ')}`);

  const dataDir = resolve(
    flags.dataDir ?? vars.get(DAEMON_ENV.dataDir) ?? join(homedir(), '.aipg', 'validator'),
  );
  const metricsPortValue = flags.metricsPort ?? vars.get(DAEMON_ENV.metricsPort);
  const logLevel = parseLogLevel(
    flags.logLevel ?? vars.get(DAEMON_ENV.logLevel) ?? VALIDATOR_DEFAULTS.logLevel,
    from(flags.logLevel, '--log-level', DAEMON_ENV.logLevel),
    fail,
  );
  const rpcFlag = flags.rpcUrl ?? flags.rpc;
  const rpcValue = rpcFlag ?? vars.get(DAEMON_ENV.rpcUrl);
  const rpcUrls =
    rpcValue === undefined
      ? [deployment?.rpcUrl ?? NETWORKS[network].rpcUrl]
      : parseRpcUrls(rpcValue, from(rpcFlag, '--rpc-url', DAEMON_ENV.rpcUrl), fail);
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
    rpcUrl: rpcUrls[0]!,
    rpcUrls,
    grid,
    startBlock: deployment ? BigInt(deployment.deployBlock) : null,
    operatorKey: await loadOperatorKey(
      operatorKeySource(vars, { keystore: flags.keystore, passwordFile: flags.passwordFile }),
      fail,
    ),
    gateways: parseGateways(flags.gateway ?? vars.get(DAEMON_ENV.gatewayUrl) ?? VALIDATOR_DEFAULTS.gateway),
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
            port: parsePort(
              metricsPortValue,
              from(flags.metricsPort, '--metrics-port', DAEMON_ENV.metricsPort),
              fail,
            ),
            host: flags.metricsHost ?? vars.get(DAEMON_ENV.metricsHost) ?? VALIDATOR_DEFAULTS.metricsHost,
          },
    logLevel,
    tee: await teeAnchors(flags.teeAnchors ?? vars.get(DAEMON_ENV.teeAnchors)),
    deprecations: [
      ...vars.deprecations,
      ...(flags.rpc === undefined
        ? []
        : ['the validator flag "rpc" is deprecated: pass "rpcUrl" (--rpc-url)']),
    ],
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
  return parseIntValue(value, flag, min, max, fail);
}

function parseBool(flag: string, value: string | boolean | undefined, fallback: boolean): boolean {
  if (value === undefined) return fallback;
  if (typeof value === 'boolean') return value;
  if (['true', '1', 'yes', 'on'].includes(value)) return true;
  if (['false', '0', 'no', 'off'].includes(value)) return false;
  throw new ValidatorConfigError(`${flag} ${value} must be true or false`);
}
