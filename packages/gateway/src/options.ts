import { readFileSync } from 'node:fs';
import {
  createEnvReader,
  DAEMON_ENV,
  type EnvReader,
  type EnvVar,
  loadOperatorKey,
  operatorKeySource,
} from '@aipg/daemon';
import { PRODUCTION_ANCHORS, parseAnchors, type TrustAnchors } from '@aipg/tee';
import type { Hex } from 'viem';
import { getAddress, isAddress } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';
import { z } from 'zod';
import { ConfigError } from './errors.ts';

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1'),
]);
const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected 0x followed by 64 hex digits');

/**
 * Everything the gateway is configured with, as one schema: each option's validation, default and
 * meaning in one place. `GatewayOptions` is derived from it. Built once by `createGatewayOptions`
 * (flags, then environment, then defaults); nothing else in the gateway reads `process.env`.
 */
const settings = z.object({
  /** Interface the HTTP server listens on. */
  host: z.string().min(1).default('127.0.0.1'),
  /** TCP port; 0 picks a free one (tests, embedding). */
  port: int(0, 65535).default(8080),
  /**
   * Every JSON-RPC endpoint of the chain the Grid Diamond lives on (`--rpc-url a,b`, comma-separated): calls
   * go to the first that answers, so one provider's outage does not stop the gateway.
   */
  rpcUrls: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((u) => u.trim())
        .filter((u) => u.length > 0),
    )
    .pipe(z.array(z.url({ protocol: /^(https?|wss?)$/ })).min(1, 'expected at least one RPC URL')),
  /** Grid Diamond address. */
  grid: z
    .string()
    .refine((v) => isAddress(v, { strict: false }), 'expected an address')
    .transform((v) => getAddress(v)),
  /** Gateway key: signs `settle` transactions and webhooks; payers approve its address. */
  privateKey: hex32.transform((v) => v as Hex),
  /** Expected chain id; read from the RPC when undefined. */
  chainId: int(1).optional(),
  database: z.object({
    /** `postgres://…`: a PostgreSQL server (pg Pool). Undefined: embedded PGlite. */
    url: z
      .string()
      .regex(/^postgres(ql)?:\/\//, 'expected postgres://…')
      .optional(),
    /** PGlite data directory; `memory://` keeps everything in memory (tests). */
    dir: z.string().min(1).default('.aipg/gateway-db'),
    /** Schema for every table (default `public`); tests use one per run. */
    schema: z
      .string()
      .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lowercase letters, digits and _')
      .default('public'),
    /** pg Pool size (PostgreSQL server only). */
    poolSize: int(1, 200).default(10),
    /**
     * Embedded PGlite only: a job's receipt and result are appended to a journal (`<dir>-journal`) and its
     * client answered at once; the database commits them right after, with whatever joins them, and a
     * restart commits what a killed process left there first. `false`: every answer waits for its commit.
     * A PostgreSQL server is always waited for (several processes share it; a journal is one machine's).
     */
    journal: bool.default(true),
    /**
     * How long a journaled commit may wait for other writes to join it (reads never wait that long). 0: it
     * runs right after the answer is sent, which measured best at one request at a time (0 → 6.6–6.9 ms
     * added at c=1, 1 → 7.0–7.1, 5 → 7.9–8.9; `npm run bench -- --only portkey`).
     */
    commitDelayMs: int(0, 600_000).default(0),
    /**
     * Embedded PGlite only: how often the gateway vacuums the tables whose dead row versions passed
     * autovacuum's default rule (PGlite runs no autovacuum; `Database.vacuum`). 0: never (the database
     * then grows by every old version of every row). A PostgreSQL server's autovacuum does it itself.
     */
    vacuumIntervalMs: int(0, 86_400_000).default(60_000),
  }),
  log: z.object({
    level: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  }),
  /**
   * A separate Prometheus `/metrics` server (AIPG_METRICS_PORT), as the worker and validator have; without
   * a port, none (the API port serves `/metrics` either way).
   */
  metrics: z.object({
    port: int(0, 65535).optional(),
    host: z.string().min(1).default('127.0.0.1'),
  }),
  tokenizers: z.object({
    /**
     * Directory of model tokenizer files (`extractTokenizerFile` of a model's GGUF; any file name).
     * A model is served only when a file here hashes to its on-chain `tokenizerHash`.
     */
    dir: z.string().min(1).default('.aipg/tokenizers'),
  }),
  http: z.object({
    /** Largest accepted request body in bytes (413 above). */
    bodyLimitBytes: int(1024, 64 * 1024 * 1024).default(1024 * 1024),
    /** Longest time a shutdown waits for in-flight jobs before closing anyway. */
    shutdownTimeoutMs: int(0).default(30_000),
  }),
  rateLimit: z.object({
    /** Sustained requests per minute per API key (token bucket refill). */
    requestsPerMinute: int(1).default(600),
    /** Bucket size: requests a key may send at once. */
    burst: int(1).default(60),
    /** Unauthenticated endpoints (key creation), per client IP. */
    anonymousRequestsPerMinute: int(1).default(30),
    /** Sustained requests per minute per payer, all its API keys together (minting keys adds nothing). */
    payerRequestsPerMinute: int(1).default(1_200),
    /** Bucket size per payer, all its keys together. */
    payerBurst: int(1).default(120),
    /**
     * Chain reads unauthenticated requests may cause on a cache miss (a smart-account key signature, an
     * unknown validator's bond), per minute for the whole gateway; above it such requests get 429.
     */
    anonymousChainReadsPerMinute: int(1).default(60),
  }),
  jobs: z.object({
    /** `max_tokens` when the request gives none (at most `maxMaxTokens`). */
    defaultMaxTokens: int(1).default(512),
    /** Largest `max_tokens` accepted. */
    maxMaxTokens: int(1, 1_000_000).default(32_768),
    /** Workers tried for one job (a worker failing before its first token hands the job on). */
    maxAttempts: int(1, 10).default(3),
    /** How long a job waits for a worker with free capacity before 503. */
    queueTimeoutMs: int(0).default(30_000),
    /** A worker must send its first token within this time, or the job moves on. */
    firstTokenTimeoutMs: int(100).default(60_000),
    /** Whole job limit. */
    jobTimeoutMs: int(100).default(300_000),
    /** Tolerance on a receipt's `completedAt` against the gateway clock. */
    clockSkewSec: int(0).default(300),
  }),
  hub: z.object({
    /** Ping interval; a worker silent for 3 intervals is dropped. */
    heartbeatMs: int(50).default(10_000),
    /** Time a new connection has to send a valid `hello`. */
    helloTimeoutMs: int(50).default(10_000),
    /** How often connected workers' bonds are re-checked on chain. */
    bondRecheckMs: int(100).default(60_000),
    /** Largest WebSocket frame accepted from a worker (image results carry images and latents in one). */
    maxFrameBytes: int(1024).default(64 * 1024 * 1024),
  }),
  chain: z.object({
    /** How long a payer's deposit/allowance read is reused. */
    balanceCacheMs: int(0).default(2_000),
    /** How long the model registry and bonds are reused. */
    registryCacheMs: int(0).default(10_000),
    /**
     * Bounded staleness: past its cache time a value is still answered (and refreshed in the
     * background) until it is this old; during an RPC outage requests are served from these values
     * until then. Keep it well under the Grid's withdrawal and unbonding delays.
     */
    maxStaleMs: int(0).default(120_000),
  }),
  network: z.object({
    /** Block the Grid was deployed in: where the dashboard's event indexer starts (found by search when unset). */
    deployBlock: int(0).optional(),
    /**
     * Follow the chain in this process (the default). False when the standalone indexer (`aipg indexer
     * start`) follows it into this database: the gateway then serves what that one stores.
     */
    indexer: bool.default(true),
  }),
  settlement: z.object({
    enabled: bool.default(true),
    /** Settle at least this often while receipts wait. */
    intervalMs: int(10).default(30_000),
    /** Settle as soon as this many receipts wait (at most `maxBatchSize`). */
    minReceipts: int(1).default(100),
    /** Most receipts in one batch. */
    maxBatchSize: int(1, 10_000).default(1_000),
    /** First RPC retry delay; doubles up to 60 s. */
    retryBaseMs: int(1).default(1_000),
  }),
  keys: z.object({
    /** Longest accepted distance between now and a key request's `expires`. */
    maxMessageTtlSec: int(1).default(86_400),
    /** HMAC secret API keys derive from; default: derived from `privateKey`. */
    secret: hex32.transform((v) => v as Hex).optional(),
    /**
     * How long a key is remembered in memory after it was looked up (no database read per request).
     * A key revoked through this gateway is forgotten at once; through another replica, within this.
     */
    cacheMs: int(0).default(5_000),
  }),
  audit: z.object({
    /** Accepted clock distance of a validator's signed request. */
    maxSkewSec: int(1).default(60),
    /** Longest a cross-check (`POST /v1/audit/score`) may take, every attempt included. */
    scoreTimeoutMs: int(100).default(60_000),
    /** Workers tried for one cross-check when one fails. */
    scoreMaxAttempts: int(1, 10).default(3),
    /** Cross-checks one validator may have running at once (429 above). */
    maxScoresPerValidator: int(1, 1_000).default(4),
  }),
  reputation: z.object({
    /** Count audit verdicts and slashes (as the network indexer stored them) and feed them to routing. */
    enabled: bool.default(true),
    /** How often it reads the events the network indexer stored, when another process indexes. */
    pollIntervalMs: int(10).default(5_000),
    /** A worker is not routed to (unless nobody else can run the job) this long after a FAIL or slash. */
    failCooldownMs: int(0).default(24 * 3_600_000),
    /** After the cool-down, a worker's routing score is cut heavily for this long. */
    penaltyWindowMs: int(0).default(7 * 24 * 3_600_000),
  }),
  webhooks: z.object({
    maxAttempts: int(1, 20).default(5),
    timeoutMs: int(100).default(10_000),
    retryBaseMs: int(1).default(1_000),
    /**
     * Devnets only: let webhooks reach loopback, private, link-local and other non-public addresses
     * (refused by default, at submit and at every delivery after DNS resolution).
     */
    allowPrivate: bool.default(false),
  }),
  images: z.object({
    /** How long delivered images stay retrievable (`response_format: url` links expire then). */
    retentionMs: int(60_000).default(3_600_000),
    /** How long image jobs' committed latents are kept for validators (past settlement and its audit). */
    auditRetentionMs: int(60_000).default(3 * 24 * 3_600_000),
  }),
  idempotency: z.object({
    /** How long a stored response is replayed. */
    ttlSec: int(1).default(86_400),
    /** How long a duplicate waits for the first request to finish before 409. */
    waitMs: int(0).default(60_000),
  }),
  /** The confidential tier (docs/confidential.md): how workers' TEE evidence is checked. */
  tee: z.object({
    /** A file of trust anchors evidence must verify under; default: Intel's and NVIDIA's roots. */
    anchorsFile: z.string().min(1).optional(),
    /** How often each attested worker is challenged for fresh evidence. */
    recheckMs: int(1_000).default(600_000),
    /** How long a worker has to answer a challenge. */
    attestTimeoutMs: int(100).default(10_000),
    /** Evidence older than this (its NVIDIA token's `iat`) is stale. */
    maxAgeSec: int(60).default(3_600),
  }),
});

/** What `settings` parses to, completed: the values options derive from others. */
const gatewayOptions = settings.transform(({ tee: { anchorsFile, ...tee }, ...o }) => ({
  ...o,
  /** JSON-RPC endpoint of the chain (the first of `rpcUrls`). */
  rpcUrl: o.rpcUrls[0]!,
  /** The address of `privateKey`. */
  gateway: privateKeyToAddress(o.privateKey),
  metrics: o.metrics.port === undefined ? null : { port: o.metrics.port, host: o.metrics.host },
  jobs: { ...o.jobs, defaultMaxTokens: Math.min(o.jobs.defaultMaxTokens, o.jobs.maxMaxTokens) },
  settlement: { ...o.settlement, minReceipts: Math.min(o.settlement.minReceipts, o.settlement.maxBatchSize) },
  /**
   * `anchors`: the trust anchors evidence must verify under; `anchorsSource`: where they came from
   * (`production`, or the file's path): logged, shown on `/v1/attestation`.
   */
  tee: { ...teeAnchors(anchorsFile), ...tee },
}));

type Parsed = z.output<typeof gatewayOptions>;

/** Everything the gateway is configured with: what `settings` (above) parses to. */
export type GatewayOptions = Omit<Parsed, 'metrics'> & {
  /** A separate `/metrics` server; null or absent: none. */
  metrics?: Parsed['metrics'] | undefined;
  /** Deprecated environment names this configuration was read from (logged as warnings at start). */
  deprecations?: readonly string[] | undefined;
};

/** Flags as the CLI parses them: strings or typed values, dotted names for nested options. */
export type GatewayFlags = {
  host?: string | undefined;
  port?: number | string | undefined;
  rpcUrl?: string | undefined;
  grid?: string | undefined;
  privateKey?: string | undefined;
  chainId?: number | string | undefined;
  databaseUrl?: string | undefined;
  databaseDir?: string | undefined;
  databaseSchema?: string | undefined;
  logLevel?: string | undefined;
  tokenizersDir?: string | undefined;
  metricsPort?: number | string | undefined;
  metricsHost?: string | undefined;
} & {
  /** Any nested option by its dotted name, e.g. `{ 'settlement.intervalMs': 5000 }`. */
  [dotted: string]: unknown;
};

/** Flag names of options whose flag is not their dotted path (the CLI's `--database-url`, …). */
const FLAG_NAMES: Record<string, string> = {
  rpcUrls: 'rpcUrl',
  'database.url': 'databaseUrl',
  'database.dir': 'databaseDir',
  'database.schema': 'databaseSchema',
  'log.level': 'logLevel',
  'metrics.port': 'metricsPort',
  'metrics.host': 'metricsHost',
  'tokenizers.dir': 'tokenizersDir',
};

/** Environment variables read, by option path: the daemons' one vocabulary (docs/operators/environment.md). */
const ENV: Record<string, EnvVar> = {
  host: DAEMON_ENV.gatewayHost,
  port: DAEMON_ENV.gatewayPort,
  rpcUrls: DAEMON_ENV.rpcUrl,
  grid: DAEMON_ENV.grid,
  privateKey: DAEMON_ENV.operatorKey,
  chainId: DAEMON_ENV.chainId,
  'database.url': DAEMON_ENV.databaseUrl,
  'database.dir': DAEMON_ENV.databaseDir,
  'database.schema': DAEMON_ENV.databaseSchema,
  'log.level': DAEMON_ENV.logLevel,
  'tokenizers.dir': DAEMON_ENV.tokenizersDir,
  'metrics.port': DAEMON_ENV.metricsPort,
  'metrics.host': DAEMON_ENV.metricsHost,
  'network.deployBlock': DAEMON_ENV.deployBlock,
  'network.indexer': DAEMON_ENV.networkIndexer,
  'http.bodyLimitBytes': DAEMON_ENV.bodyLimitBytes,
  'rateLimit.requestsPerMinute': DAEMON_ENV.rateLimitRpm,
  'rateLimit.burst': DAEMON_ENV.rateLimitBurst,
  'rateLimit.payerRequestsPerMinute': DAEMON_ENV.rateLimitPayerRpm,
  'jobs.defaultMaxTokens': DAEMON_ENV.defaultMaxTokens,
  'jobs.maxAttempts': DAEMON_ENV.maxAttempts,
  'settlement.enabled': DAEMON_ENV.settlement,
  'settlement.intervalMs': DAEMON_ENV.settleIntervalMs,
  'settlement.minReceipts': DAEMON_ENV.settleMinReceipts,
  'settlement.maxBatchSize': DAEMON_ENV.settleMaxBatch,
  'keys.secret': DAEMON_ENV.keySecret,
  'reputation.enabled': DAEMON_ENV.reputation,
  'tee.anchorsFile': DAEMON_ENV.teeAnchors,
};

/** Every option's dotted path (`host`, `database.url`, …), from the schema. */
const PATHS: readonly string[] = Object.entries(settings.shape).flatMap(([key, field]) =>
  field instanceof z.ZodObject ? Object.keys(field.shape).map((sub) => `${key}.${sub}`) : [key],
);

/** The name an operator knows an option by: its flag, or its dotted path. */
const nameOf = (path: string) => FLAG_NAMES[path] ?? path;

/**
 * Builds the gateway's options: each value from `flags` first, then `env`, then the default.
 * Throws a `ConfigError` naming every invalid or missing value.
 */
export function createGatewayOptions(
  flags: GatewayFlags = {},
  env: Record<string, string | undefined> = {},
): GatewayOptions {
  const vars = createEnvReader(env);
  const raw: Record<string, unknown> = {};
  for (const path of PATHS) {
    const [group, leaf] = path.split('.') as [string, string | undefined];
    if (leaf !== undefined) raw[group] ??= {};
    const variable = ENV[path];
    const value =
      flags[nameOf(path)] ?? flags[path] ?? (variable === undefined ? undefined : vars.get(variable));
    if (value === undefined) continue;
    if (leaf === undefined) raw[group] = value;
    else (raw[group] as Record<string, unknown>)[leaf] = value;
  }
  if (raw.privateKey === undefined && vars.get(DAEMON_ENV.keystore) !== undefined)
    throw new ConfigError(
      'invalid gateway configuration',
      `privateKey: ${DAEMON_ENV.keystore.name} is set: build the options with loadGatewayOptions, which decrypts it`,
    );
  const parsed = gatewayOptions.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const nested = `${String(i.path[0] ?? '')}.${String(i.path[1] ?? '')}`;
      const path = PATHS.includes(nested) ? nested : String(i.path[0] ?? '');
      const variable = ENV[path];
      const message = /received undefined/.test(i.message) ? 'required' : i.message;
      return `${nameOf(path)}${variable ? ` (${vars.source(variable)})` : ''}: ${message}`;
    });
    throw new ConfigError('invalid gateway configuration', lines.join('; '));
  }
  return { ...parsed.data, deprecations: [...vars.deprecations] };
}

/** The trust anchors of `file` (a devnet's or a test's), or Intel's and NVIDIA's production roots. */
function teeAnchors(file: string | undefined): { anchors: TrustAnchors; anchorsSource: string } {
  if (file === undefined) return { anchors: PRODUCTION_ANCHORS, anchorsSource: 'production' };
  try {
    return { anchors: parseAnchors(readFileSync(file, 'utf8')), anchorsSource: file };
  } catch (error) {
    throw new ConfigError(
      'invalid gateway configuration',
      `tee.anchorsFile (${DAEMON_ENV.teeAnchors.name}): ${error instanceof Error ? error.message : String(error)}`,
    );
  }
}

/**
 * `createGatewayOptions`, with the operator key also taken from a keystore (AIPG_KEYSTORE, decrypted with
 * AIPG_KEYSTORE_PASSWORD or AIPG_KEYSTORE_PASSWORD_FILE) when no raw key is given: the entry point's builder.
 */
export async function loadGatewayOptions(
  flags: GatewayFlags = {},
  env: Record<string, string | undefined> = {},
): Promise<GatewayOptions> {
  if (flags.privateKey !== undefined) return createGatewayOptions(flags, env);
  const vars: EnvReader = createEnvReader(env);
  const source = operatorKeySource(vars, {
    keystore: typeof flags.keystore === 'string' ? flags.keystore : undefined,
    passwordFile: typeof flags.passwordFile === 'string' ? flags.passwordFile : undefined,
  });
  if (source.key !== undefined) return createGatewayOptions(flags, env);
  const privateKey = await loadOperatorKey(source, (message) => new ConfigError(message));
  const options = createGatewayOptions({ ...flags, privateKey }, env);
  return { ...options, deprecations: [...new Set([...(options.deprecations ?? []), ...vars.deprecations])] };
}
