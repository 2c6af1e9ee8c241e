/**
 * The daemons' one environment vocabulary: every `AIPG_*` variable the gateway, the worker and the
 * validator read, one name per concept, with the names it had before (still read, with a one-line
 * deprecation notice, so no operator's setup breaks). docs/operators/environment.md documents each one;
 * test/docs.test.ts checks that it does.
 */

export type DaemonName = 'gateway' | 'worker' | 'validator';

export type EnvVar = {
  /** The name to use. */
  readonly name: string;
  /** Earlier names, still read when `name` is unset. */
  readonly deprecated?: readonly string[];
  /** The daemons that read it. */
  readonly daemons: readonly DaemonName[];
  /** One line for the operator guides. */
  readonly description: string;
};

const ALL: readonly DaemonName[] = ['gateway', 'worker', 'validator'];
const NODES: readonly DaemonName[] = ['worker', 'validator'];
const GATEWAY: readonly DaemonName[] = ['gateway'];

const v = (
  name: string,
  daemons: readonly DaemonName[],
  description: string,
  deprecated?: readonly string[],
): EnvVar => (deprecated ? { name, daemons, description, deprecated } : { name, daemons, description });

/** Every variable the daemons read, by concept. Daemons read these names through `createEnvReader` only. */
export const DAEMON_ENV = {
  // the chain
  rpcUrl: v(
    'AIPG_RPC_URL',
    ALL,
    'JSON-RPC endpoint of the chain; several, comma-separated, are tried in order',
  ),
  grid: v('AIPG_GRID', ALL, 'address of the Grid Diamond', ['AIPG_GRID_ADDRESS']),
  network: v(
    'AIPG_NETWORK',
    NODES,
    'devnet, base or base-sepolia (default: from the deployment file, else devnet)',
  ),
  deployment: v(
    'AIPG_DEPLOYMENT',
    NODES,
    'deployment file (`aipg chain up` / `aipg devnet` write one): Grid, chain, RPC',
  ),
  chainId: v('AIPG_CHAIN_ID', GATEWAY, 'chain id the RPC must serve (default: whatever it serves)'),
  deployBlock: v(
    'AIPG_GRID_DEPLOY_BLOCK',
    GATEWAY,
    'block the Grid was deployed in: where event indexing starts',
  ),
  // keys
  operatorKey: v(
    'AIPG_OPERATOR_KEY',
    ALL,
    'the daemon’s hot key, 0x + 64 hex digits (or use AIPG_KEYSTORE); never logged',
    ['AIPG_GATEWAY_PRIVATE_KEY'],
  ),
  keystore: v('AIPG_KEYSTORE', ALL, 'Ethereum V3 JSON keystore holding the operator key'),
  keystorePassword: v('AIPG_KEYSTORE_PASSWORD', ALL, 'password of AIPG_KEYSTORE; never logged'),
  keystorePasswordFile: v('AIPG_KEYSTORE_PASSWORD_FILE', ALL, 'file holding the password of AIPG_KEYSTORE'),
  // operation
  logLevel: v('AIPG_LOG_LEVEL', ALL, 'fatal, error, warn, info (default), debug, trace or silent'),
  metricsPort: v(
    'AIPG_METRICS_PORT',
    ALL,
    'serve Prometheus /metrics (and /healthz) on this port, 0 = any free port (the gateway also serves /metrics on its API port)',
  ),
  metricsHost: v('AIPG_METRICS_HOST', ALL, 'interface of the metrics server (default 127.0.0.1)'),
  dataDir: v('AIPG_DATA_DIR', NODES, 'where the daemon keeps its state across restarts', [
    'AIPG_WORKER_DATA_DIR',
    'AIPG_VALIDATOR_DATA',
  ]),
  // worker and validator
  gatewayUrl: v(
    'AIPG_GATEWAY_URL',
    NODES,
    'the gateway: the worker connects to it, the validator reads its audit API (validator: several, comma-separated, each `url` or `0xGatewayAddress=url`)',
  ),
  validatorMode: v('AIPG_VALIDATOR_MODE', ['validator'], 'reexecute (default) or crosscheck'),
  teeAnchors: v(
    'AIPG_TEE_ANCHORS',
    ['gateway', 'validator'],
    'trust anchors file for TEE evidence (default: Intel’s and NVIDIA’s roots)',
  ),
  teeSimulated: v(
    'AIPG_TEE_SIMULATED',
    ['worker'],
    'devnet only: the simulated TEE root file (confidential jobs in a simulated TEE)',
  ),
  openaiApiKey: v(
    'OPENAI_API_KEY',
    ['worker'],
    'bearer token of an `openai` backend given by flags; never logged',
  ),
  // the gateway's own
  gatewayHost: v('AIPG_GATEWAY_HOST', GATEWAY, 'interface the API listens on (default 127.0.0.1)'),
  gatewayPort: v('AIPG_GATEWAY_PORT', GATEWAY, 'port the API listens on, 0 = any (default 8080)'),
  databaseUrl: v('DATABASE_URL', GATEWAY, 'postgres://… of a PostgreSQL server (default: embedded PGlite)'),
  databaseDir: v('AIPG_GATEWAY_DB_DIR', GATEWAY, 'PGlite data directory (default .aipg/gateway-db)'),
  databaseSchema: v('AIPG_GATEWAY_DB_SCHEMA', GATEWAY, 'schema of every table (default public)'),
  tokenizersDir: v(
    'AIPG_GATEWAY_TOKENIZERS_DIR',
    GATEWAY,
    'models’ tokenizer files (default .aipg/tokenizers)',
  ),
  bodyLimitBytes: v('AIPG_GATEWAY_BODY_LIMIT_BYTES', GATEWAY, 'largest request body (default 1 MiB)'),
  rateLimitRpm: v('AIPG_GATEWAY_RATE_LIMIT_RPM', GATEWAY, 'requests per minute per API key (default 600)'),
  rateLimitBurst: v(
    'AIPG_GATEWAY_RATE_LIMIT_BURST',
    GATEWAY,
    'requests an API key may send at once (default 60)',
  ),
  rateLimitPayerRpm: v(
    'AIPG_GATEWAY_RATE_LIMIT_PAYER_RPM',
    GATEWAY,
    'requests per minute per payer, all keys (default 1200)',
  ),
  defaultMaxTokens: v(
    'AIPG_GATEWAY_DEFAULT_MAX_TOKENS',
    GATEWAY,
    '`max_tokens` when a request gives none (default 512)',
  ),
  maxAttempts: v('AIPG_GATEWAY_MAX_ATTEMPTS', GATEWAY, 'workers tried for one job (default 3)'),
  settlement: v('AIPG_GATEWAY_SETTLEMENT', GATEWAY, 'settle batches on chain: true (default) or false'),
  settleIntervalMs: v(
    'AIPG_GATEWAY_SETTLE_INTERVAL_MS',
    GATEWAY,
    'settle at least this often (default 30000)',
  ),
  settleMinReceipts: v(
    'AIPG_GATEWAY_SETTLE_MIN_RECEIPTS',
    GATEWAY,
    'settle as soon as this many receipts wait (default 100)',
  ),
  settleMaxBatch: v('AIPG_GATEWAY_SETTLE_MAX_BATCH', GATEWAY, 'most receipts in one batch (default 1000)'),
  keySecret: v(
    'AIPG_GATEWAY_KEY_SECRET',
    GATEWAY,
    'HMAC secret API keys derive from (default: from the operator key); never logged',
  ),
  networkIndexer: v(
    'AIPG_GATEWAY_NETWORK_INDEXER',
    GATEWAY,
    'follow the chain for the network API and dashboard in this process: true (default), or false where `aipg indexer start` runs it',
  ),
  reputation: v(
    'AIPG_GATEWAY_REPUTATION',
    GATEWAY,
    'follow audit verdicts and slashes for routing: true (default) or false',
  ),
} as const satisfies Record<string, EnvVar>;

export type EnvSource = Readonly<Record<string, string | undefined>>;

export type EnvReader = {
  /** The variable's value (its name first, then a deprecated one), trimmed; undefined when unset or empty. */
  get(variable: EnvVar): string | undefined;
  /** The name the value of `variable` was read from (for error messages); its own name when unset. */
  source(variable: EnvVar): string;
  /** One line per deprecated name read (the daemon logs them as warnings at start). */
  readonly deprecations: readonly string[];
};

const value = (env: EnvSource, name: string) => {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
};

/**
 * Reads the vocabulary from `env` (the daemon's options builder is the only caller; it gets `env` from
 * its entry point). A deprecated name is read when the new one is unset, and noted once.
 */
export function createEnvReader(env: EnvSource): EnvReader {
  const deprecations: string[] = [];
  const noted = new Set<string>();
  const note = (line: string) => {
    if (noted.has(line)) return;
    noted.add(line);
    deprecations.push(line);
  };
  const find = (variable: EnvVar): { name: string; value: string | undefined } => {
    const own = value(env, variable.name);
    for (const old of variable.deprecated ?? []) {
      if (value(env, old) === undefined) continue;
      if (own !== undefined) {
        note(`${old} is deprecated and ignored: ${variable.name} is set (remove ${old})`);
        continue;
      }
      note(`${old} is deprecated: rename it ${variable.name}`);
      return { name: old, value: value(env, old) };
    }
    return { name: variable.name, value: own };
  };
  return {
    get: (variable) => find(variable).value,
    source: (variable) => find(variable).name,
    deprecations,
  };
}

/** Every name the vocabulary reads, current and deprecated (the operator guides list each). */
export function envNames(): { name: string; deprecated: readonly string[] }[] {
  return Object.values(DAEMON_ENV).map((x: EnvVar) => ({ name: x.name, deprecated: x.deprecated ?? [] }));
}
