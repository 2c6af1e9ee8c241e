import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import { readDeployment } from '@aipg/chain';
import { WORKER_CONNECT_PATH } from '@aipg/core';
import {
  createEnvReader,
  DAEMON_ENV,
  type EnvReader,
  type Fail,
  loadOperatorKey,
  operatorKeySource,
  parseAddress,
  parseIntValue,
  parseLogLevel,
  parsePort,
  parseRpcUrls,
} from '@aipg/daemon';
import type { Address, Hex } from 'viem';
import { z } from 'zod';
import { WorkerConfigError, WorkerErrorCode } from '../errors.ts';
import { WORKER_VERSION } from '../version.ts';

export type BackendKind = 'llama-cpp' | 'ollama' | 'openai' | 'diffusion' | 'comfyui' | 'a1111';
export const BACKEND_KINDS = [
  'llama-cpp',
  'ollama',
  'openai',
  'diffusion',
  'comfyui',
  'a1111',
] as const satisfies readonly BackendKind[];
/** Backends that make images (an image model in the registry); the others serve text. */
export const IMAGE_BACKEND_KINDS: readonly BackendKind[] = ['diffusion', 'comfyui', 'a1111'];

/** Networks a worker joins. `devnet` is a local anvil (chain id 31337): CPU-only workers are allowed there. */
export type NetworkKind = 'devnet' | 'base' | 'base-sepolia';
export const NETWORKS = {
  devnet: { chainId: 31337, rpcUrl: 'http://127.0.0.1:8545' },
  base: { chainId: 8453, rpcUrl: 'https://mainnet.base.org' },
  'base-sepolia': { chainId: 84532, rpcUrl: 'https://sepolia.base.org' },
} as const satisfies Record<NetworkKind, { chainId: number; rpcUrl: string }>;

/** One model this worker serves on one backend. */
export type WorkerModelOptions = {
  backend: BackendKind;
  /** ModelRegistry name, e.g. "aipg-tiny-llama". */
  name: string;
  /**
   * sha256 of the weights file, as registered on chain. Optional for llama-cpp (the backend
   * hashes `gguf`); required for ollama / openai, whose servers hold the file.
   */
  weightsHash: Hex | undefined;
  /** llama-cpp: absolute path of the GGUF file. */
  gguf: string | undefined;
  /** diffusion: the model directory (`ensureImageModel`'s; its manifest gives the weights hash). */
  modelDir?: string | undefined;
  /** ollama / openai: base URL of the inference server. */
  url: string | undefined;
  /** ollama / openai: the model's name on that server (an Ollama tag, a vLLM model id). */
  backendModel: string | undefined;
  /** openai: bearer token for servers that want one (read from the env var named by `apiKeyEnv`). */
  apiKey: string | undefined;
  /** Jobs of this model run at once; more are refused with a retryable `WORKER_BUSY`. */
  maxConcurrency: number;
  /** llama-cpp: CPU threads (always set: the default oversubscribes small machines). */
  threads: number | undefined;
  /** llama-cpp: layers offloaded to the GPU (`'auto'`, a number, or 0 for CPU). */
  gpuLayers: number | 'auto' | undefined;
  /** llama-cpp: context size in tokens. */
  contextSize: number | undefined;
};

export type WorkerOptions = {
  network: NetworkKind;
  /** The chain the RPC must serve; receipts are signed for this chain and `grid`. */
  chainId: number;
  /** True on a local chain: CPU-only workers allowed. */
  devnet: boolean;
  /** `ws(s)://<gateway>/v1/workers/connect`. */
  gatewayUrl: string;
  /** The JSON-RPC endpoint (the first of `rpcUrls`). */
  rpcUrl: string;
  /** Every endpoint given (`--rpc-url a,b`): calls go to the first that answers. Default: `[rpcUrl]`. */
  rpcUrls?: readonly string[] | undefined;
  /** The GridDiamond address. */
  grid: Address;
  /** The operator (hot) key that signs the login and every receipt. Never logged. */
  operatorKey: Hex;
  models: WorkerModelOptions[];
  /** Prometheus `/metrics`; null = off. Port 0 picks a free port (see `status().metricsUrl`). */
  metrics: { port: number; host: string } | null;
  logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent';
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  /** How long a graceful stop waits for running jobs before aborting them. */
  drainTimeoutMs: number;
  /**
   * Where the worker keeps state across restarts (the highest receipt number it signed per gateway, so
   * a restarted worker never signs a number twice); undefined keeps it in memory only.
   */
  dataDir: string | undefined;
  /** The PATH searched for `nvidia-smi` / `rocm-smi`. */
  hardwareSearchPath: string | undefined;
  version: string;
  /**
   * A simulated TEE (the devnet's): the file of its serialized root (`SimulatedTee` of @aipg/tee). The
   * worker then takes confidential jobs, with evidence that verifies only under that root. Devnet only.
   */
  teeSimulated: string | undefined;
  /** Deprecated environment names or config keys this configuration was read from (logged at start). */
  deprecations?: readonly string[] | undefined;
};

/** Flags as the CLI parses them (`aipg worker start --gateway … --model …`); all optional. */
export type WorkerFlags = {
  config?: string | undefined;
  network?: string | undefined;
  gateway?: string | undefined;
  /** `--rpc-url`: one JSON-RPC URL or several, comma-separated. */
  rpcUrl?: string | undefined;
  /** @deprecated The earlier name of `rpcUrl`, still read (with a deprecation notice). */
  rpc?: string | undefined;
  deployment?: string | undefined;
  grid?: string | undefined;
  keystore?: string | undefined;
  passwordFile?: string | undefined;
  // the single-model case
  model?: string | undefined;
  backend?: string | undefined;
  gguf?: string | undefined;
  modelDir?: string | undefined;
  weightsHash?: string | undefined;
  backendUrl?: string | undefined;
  backendModel?: string | undefined;
  maxConcurrency?: string | number | undefined;
  threads?: string | number | undefined;
  gpuLayers?: string | number | undefined;
  contextSize?: string | number | undefined;
  // operation
  metricsPort?: string | number | undefined;
  metricsHost?: string | undefined;
  logLevel?: string | undefined;
  drainTimeout?: string | number | undefined;
  dataDir?: string | undefined;
  teeSimulated?: string | undefined;
};

export type WorkerEnv = Readonly<Record<string, string | undefined>>;

/** Environment variables the worker reads (only here): @aipg/daemon's vocabulary. */
export const WORKER_ENV = {
  operatorKey: DAEMON_ENV.operatorKey.name,
  keystore: DAEMON_ENV.keystore.name,
  keystorePassword: DAEMON_ENV.keystorePassword.name,
  keystorePasswordFile: DAEMON_ENV.keystorePasswordFile.name,
  gateway: DAEMON_ENV.gatewayUrl.name,
  rpc: DAEMON_ENV.rpcUrl.name,
  network: DAEMON_ENV.network.name,
  grid: DAEMON_ENV.grid.name,
  deployment: DAEMON_ENV.deployment.name,
  metricsPort: DAEMON_ENV.metricsPort.name,
  metricsHost: DAEMON_ENV.metricsHost.name,
  logLevel: DAEMON_ENV.logLevel.name,
  dataDir: DAEMON_ENV.dataDir.name,
  teeSimulated: DAEMON_ENV.teeSimulated.name,
  /** Bearer token for an `openai` backend given by flags (config files name their own variable). */
  openaiApiKey: DAEMON_ENV.openaiApiKey.name,
} as const;

export const WORKER_DEFAULTS = {
  gatewayUrl: 'ws://127.0.0.1:8080/v1/workers/connect',
  ollamaUrl: 'http://127.0.0.1:11434',
  openaiUrl: 'http://127.0.0.1:8000/v1',
  maxConcurrency: 1,
  metricsHost: '127.0.0.1',
  logLevel: 'info',
  reconnect: { initialDelayMs: 500, maxDelayMs: 30_000 },
  drainTimeoutMs: 10 * 60_000,
} as const;

/** Where a worker connects on its gateway (a gateway URL given without a path gets it). */
export const GATEWAY_WORKER_PATH = WORKER_CONNECT_PATH;

const bytes32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected a 0x-prefixed 32-byte hex string');
const positiveInt = z.number().int().positive();

const modelFileSchema = z.strictObject({
  backend: z.enum(BACKEND_KINDS),
  name: z.string().min(1).max(200),
  weightsHash: bytes32.optional(),
  gguf: z.string().min(1).optional(),
  modelDir: z.string().min(1).optional(),
  url: z.string().url().optional(),
  backendModel: z.string().min(1).optional(),
  /** Name of the environment variable holding the API key (keys never go in the file). */
  apiKeyEnv: z.string().min(1).optional(),
  maxConcurrency: positiveInt.max(1024).optional(),
  threads: positiveInt.optional(),
  gpuLayers: z.union([z.number().int().min(0), z.literal('auto')]).optional(),
  contextSize: positiveInt.optional(),
});

const configFileSchema = z.strictObject({
  network: z.enum(['devnet', 'base', 'base-sepolia']).optional(),
  gateway: z.string().min(1).optional(),
  rpcUrl: z.string().min(1).optional(),
  /** The earlier name of `rpcUrl`, still read. */
  rpc: z.string().min(1).optional(),
  deployment: z.string().min(1).optional(),
  grid: z.string().optional(),
  keystore: z.string().min(1).optional(),
  passwordFile: z.string().min(1).optional(),
  metricsPort: z.number().int().min(0).max(65_535).optional(),
  metricsHost: z.string().min(1).optional(),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).optional(),
  drainTimeoutMs: z.number().int().min(0).optional(),
  dataDir: z.string().min(1).optional(),
  models: z.array(modelFileSchema).min(1).max(64).optional(),
});
type ConfigFile = z.infer<typeof configFileSchema>;
type ModelFile = z.infer<typeof modelFileSchema>;

/**
 * Builds the worker's options: flags first, then the environment, then the `--config` file, then
 * defaults. The only place the worker reads the environment. Relative paths in the config file are
 * relative to the file. Throws `WorkerConfigError` with a one-line message naming the bad setting.
 */
export async function createWorkerOptions(flags: WorkerFlags, env: WorkerEnv): Promise<WorkerOptions> {
  const vars = createEnvReader(env);
  const file = flags.config ? await readConfigFile(flags.config) : undefined;
  const fileDir = flags.config ? dirname(resolve(flags.config)) : process.cwd();
  const fromFile = (p: string | undefined) => (p === undefined ? undefined : resolve(fileDir, p));
  const notes: string[] = [];
  if (file?.rpc !== undefined)
    notes.push(`config file ${flags.config}: "rpc" is deprecated: rename it "rpcUrl"`);
  if (flags.rpc !== undefined) notes.push('the worker flag "rpc" is deprecated: pass "rpcUrl" (--rpc-url)');

  const deploymentPath = flags.deployment ?? vars.get(DAEMON_ENV.deployment) ?? fromFile(file?.deployment);
  const deployment = deploymentPath ? await readDeployment(deploymentPath) : undefined;

  const networkName =
    flags.network ?? vars.get(DAEMON_ENV.network) ?? file?.network ?? networkOfChainId(deployment?.chainId);
  const network = parseNetwork(networkName ?? 'devnet');
  const chainId = NETWORKS[network].chainId;
  if (deployment && deployment.chainId !== chainId) {
    throw new WorkerConfigError(
      `the deployment file ${deploymentPath} is for chain ${deployment.chainId}, not ${network} (chain ${chainId})`,
    );
  }

  const gridValue = flags.grid ?? vars.get(DAEMON_ENV.grid) ?? file?.grid ?? deployment?.grid;
  if (!gridValue) {
    throw new WorkerConfigError('no Grid address: pass --grid 0x… or --deployment <deployment.json>');
  }
  const grid = parseAddress(
    gridValue,
    flags.grid !== undefined ? '--grid' : vars.source(DAEMON_ENV.grid),
    fail,
  );

  const operatorKey = await loadOperatorKey(
    {
      ...operatorKeySource(vars, { keystore: flags.keystore, passwordFile: flags.passwordFile }),
      ...(flags.keystore === undefined && vars.get(DAEMON_ENV.keystore) === undefined
        ? { keystore: fromFile(file?.keystore) }
        : {}),
      ...(flags.passwordFile === undefined && vars.get(DAEMON_ENV.keystorePasswordFile) === undefined
        ? { passwordFile: fromFile(file?.passwordFile) }
        : {}),
    },
    fail,
  );

  const models = flags.model
    ? [modelFromFlags(flags, env)]
    : (file?.models ?? []).map((m) => modelFromFile(m, env, fromFile));
  if (models.length === 0) {
    throw new WorkerConfigError(
      'no model to serve: pass --model <name> (with --gguf or --weights-hash) or --config worker.json',
    );
  }
  const names = new Set<string>();
  for (const m of models) {
    if (names.has(m.name)) throw new WorkerConfigError(`model ${m.name} is listed twice`);
    names.add(m.name);
  }

  const metricsPort = pick(
    flags.metricsPort,
    '--metrics-port',
    vars,
    DAEMON_ENV.metricsPort,
    file?.metricsPort,
  );
  const logLevel = pick(flags.logLevel, '--log-level', vars, DAEMON_ENV.logLevel, file?.logLevel);
  const rpc = pick(
    flags.rpcUrl ?? flags.rpc,
    '--rpc-url',
    vars,
    DAEMON_ENV.rpcUrl,
    file?.rpcUrl ?? file?.rpc,
  );
  const rpcUrls = rpc ? parseRpcUrls(String(rpc.value), rpc.from, fail) : [NETWORKS[network].rpcUrl];
  const metricsHost = flags.metricsHost ?? vars.get(DAEMON_ENV.metricsHost) ?? file?.metricsHost;

  return {
    network,
    chainId,
    devnet: network === 'devnet',
    gatewayUrl: normalizeGatewayUrl(
      flags.gateway ?? vars.get(DAEMON_ENV.gatewayUrl) ?? file?.gateway ?? WORKER_DEFAULTS.gatewayUrl,
    ),
    rpcUrl: rpcUrls[0]!,
    rpcUrls,
    grid,
    operatorKey,
    models,
    metrics:
      metricsPort === undefined
        ? null
        : {
            port: parsePort(metricsPort.value, metricsPort.from, fail),
            host: metricsHost ?? WORKER_DEFAULTS.metricsHost,
          },
    logLevel: logLevel
      ? parseLogLevel(String(logLevel.value), logLevel.from, fail)
      : WORKER_DEFAULTS.logLevel,
    reconnect: { ...WORKER_DEFAULTS.reconnect },
    drainTimeoutMs:
      flags.drainTimeout !== undefined
        ? parseIntFlag('--drain-timeout', flags.drainTimeout, 0, 24 * 3600) * 1000
        : (file?.drainTimeoutMs ?? WORKER_DEFAULTS.drainTimeoutMs),
    dataDir: resolvePath(flags.dataDir ?? vars.get(DAEMON_ENV.dataDir)) ?? fromFile(file?.dataDir),
    hardwareSearchPath: env.PATH,
    version: WORKER_VERSION,
    teeSimulated: simulatedTee(network, resolvePath(flags.teeSimulated ?? vars.get(DAEMON_ENV.teeSimulated))),
    deprecations: [...vars.deprecations, ...notes],
  };
}

/** The worker's errors for @aipg/daemon's parsers and key loading (a missing keystore file keeps its own code). */
const fail: Fail = (message, options) =>
  new WorkerConfigError(message, {
    cause: options?.cause,
    ...(options?.keystore ? { code: WorkerErrorCode.keystoreInvalid } : {}),
  });

/** A setting from its flag, else its variable, else the config file; with where it came from, for errors. */
function pick<T extends string | number>(
  flag: T | undefined,
  flagName: string,
  vars: EnvReader,
  variable: (typeof DAEMON_ENV)[keyof typeof DAEMON_ENV],
  fromConfig: T | undefined,
): { value: T | string; from: string } | undefined {
  if (flag !== undefined) return { value: flag, from: flagName };
  const fromEnv = vars.get(variable);
  if (fromEnv !== undefined) return { value: fromEnv, from: vars.source(variable) };
  if (fromConfig !== undefined) return { value: fromConfig, from: `config ${flagName.slice(2)}` };
  return undefined;
}

function simulatedTee(network: NetworkKind, file: string | undefined): string | undefined {
  if (file !== undefined && network !== 'devnet')
    throw new WorkerConfigError(
      `--tee-simulated is for the devnet only: on ${network} confidential jobs need a real TEE's evidence`,
    );
  return file;
}

function resolvePath(p: string | undefined): string | undefined {
  return p === undefined ? undefined : resolve(p);
}

/** `http(s)://host` → `ws(s)://host/v1/workers/connect`; a URL with a path is kept as given. */
export function normalizeGatewayUrl(value: string): string {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new WorkerConfigError(`--gateway ${value} is not a URL (expected ws://host:port or https://host)`);
  }
  if (url.protocol === 'http:') url.protocol = 'ws:';
  else if (url.protocol === 'https:') url.protocol = 'wss:';
  else if (url.protocol !== 'ws:' && url.protocol !== 'wss:') {
    throw new WorkerConfigError(`--gateway ${value}: use ws://, wss://, http:// or https://`);
  }
  if (url.pathname === '/' || url.pathname === '') url.pathname = GATEWAY_WORKER_PATH;
  return url.toString();
}

function parseNetwork(value: string): NetworkKind {
  if (value in NETWORKS) return value as NetworkKind;
  throw new WorkerConfigError(`--network ${value} is not one of ${Object.keys(NETWORKS).join(', ')}`);
}

function networkOfChainId(chainId: number | undefined): NetworkKind | undefined {
  if (chainId === undefined) return undefined;
  const entry = Object.entries(NETWORKS).find(([, n]) => n.chainId === chainId);
  return entry?.[0] as NetworkKind | undefined;
}

function parseIntFlag(flag: string, value: string | number, min: number, max: number): number {
  return parseIntValue(value, flag, min, max, fail);
}

function parseGpuLayers(value: string | number): number | 'auto' {
  return value === 'auto' ? 'auto' : parseIntFlag('--gpu-layers', value, 0, 100_000);
}

async function readConfigFile(path: string): Promise<ConfigFile> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    throw new WorkerConfigError(`cannot read config file ${path}`, { cause });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new WorkerConfigError(`config file ${path} is not valid JSON`, { cause });
  }
  const parsed = configFileSchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? issue.path.join('.') : '(top level)';
    throw new WorkerConfigError(`config file ${path}: ${where}: ${issue?.message ?? 'invalid'}`);
  }
  return parsed.data;
}

function checkModel(m: WorkerModelOptions, where: string): WorkerModelOptions {
  if (m.backend === 'llama-cpp' && !m.gguf) {
    throw new WorkerConfigError(`${where}: the llama-cpp backend needs a GGUF file (--gguf <path>)`);
  }
  if (m.backend === 'diffusion') {
    if (!m.modelDir)
      throw new WorkerConfigError(
        `${where}: the diffusion backend needs its model directory (--model-dir <dir>)`,
      );
    return m;
  }
  if (m.backend !== 'llama-cpp' && !m.weightsHash) {
    throw new WorkerConfigError(
      `${where}: the ${m.backend} backend needs --weights-hash (the sha256 of the weights file, as registered on chain)`,
    );
  }
  return m;
}

function defaultUrl(backend: BackendKind): string | undefined {
  if (backend === 'ollama') return WORKER_DEFAULTS.ollamaUrl;
  if (backend === 'openai') return WORKER_DEFAULTS.openaiUrl;
  if (backend === 'comfyui') return 'http://127.0.0.1:8188';
  if (backend === 'a1111') return 'http://127.0.0.1:7860';
  return undefined;
}

function modelFromFlags(flags: WorkerFlags, env: WorkerEnv): WorkerModelOptions {
  const backend = (flags.backend ?? 'llama-cpp') as BackendKind;
  if (!BACKEND_KINDS.includes(backend)) {
    throw new WorkerConfigError(`--backend ${flags.backend} is not one of ${BACKEND_KINDS.join(', ')}`);
  }
  if (flags.weightsHash !== undefined && !bytes32.safeParse(flags.weightsHash).success) {
    throw new WorkerConfigError(
      `--weights-hash ${flags.weightsHash} is not a 0x-prefixed 32-byte hex string`,
    );
  }
  const name = flags.model as string;
  return checkModel(
    {
      backend,
      name,
      weightsHash: flags.weightsHash as Hex | undefined,
      gguf: flags.gguf === undefined ? undefined : resolve(flags.gguf),
      modelDir: flags.modelDir === undefined ? undefined : resolve(flags.modelDir),
      url: flags.backendUrl ?? defaultUrl(backend),
      backendModel:
        flags.backendModel ?? (backend === 'llama-cpp' || backend === 'diffusion' ? undefined : name),
      apiKey: backend === 'openai' ? env[WORKER_ENV.openaiApiKey] : undefined,
      maxConcurrency:
        flags.maxConcurrency === undefined
          ? WORKER_DEFAULTS.maxConcurrency
          : parseIntFlag('--max-concurrency', flags.maxConcurrency, 1, 1024),
      threads: flags.threads === undefined ? undefined : parseIntFlag('--threads', flags.threads, 1, 1024),
      gpuLayers: flags.gpuLayers === undefined ? undefined : parseGpuLayers(flags.gpuLayers),
      contextSize:
        flags.contextSize === undefined
          ? undefined
          : parseIntFlag('--context-size', flags.contextSize, 1, 10_000_000),
    },
    `--model ${name}`,
  );
}

function modelFromFile(
  m: ModelFile,
  env: WorkerEnv,
  fromFile: (p: string | undefined) => string | undefined,
) {
  if (m.apiKeyEnv && env[m.apiKeyEnv] === undefined) {
    throw new WorkerConfigError(`model ${m.name}: apiKeyEnv names ${m.apiKeyEnv}, which is not set`);
  }
  return checkModel(
    {
      backend: m.backend,
      name: m.name,
      weightsHash: m.weightsHash as Hex | undefined,
      gguf: m.gguf === undefined ? undefined : isAbsolute(m.gguf) ? m.gguf : fromFile(m.gguf),
      modelDir:
        m.modelDir === undefined ? undefined : isAbsolute(m.modelDir) ? m.modelDir : fromFile(m.modelDir),
      url: m.url ?? defaultUrl(m.backend),
      backendModel:
        m.backendModel ?? (m.backend === 'llama-cpp' || m.backend === 'diffusion' ? undefined : m.name),
      apiKey: m.apiKeyEnv ? env[m.apiKeyEnv] : undefined,
      maxConcurrency: m.maxConcurrency ?? WORKER_DEFAULTS.maxConcurrency,
      threads: m.threads,
      gpuLayers: m.gpuLayers,
      contextSize: m.contextSize,
    },
    `model ${m.name}`,
  );
}
