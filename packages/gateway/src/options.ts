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
import type { Address, Hex } from 'viem';
import { getAddress, isAddress } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';
import { z } from 'zod';
import { ConfigError } from './errors.ts';

/**
 * Everything the gateway is configured with. Built once by `createGatewayOptions` (flags, then
 * environment, then defaults); nothing else in the gateway reads `process.env`.
 */
export type GatewayOptions = {
  /** Interface the HTTP server listens on. */
  host: string;
  /** TCP port; 0 picks a free one (tests, embedding). */
  port: number;
  /** JSON-RPC endpoint of the chain the Grid Diamond lives on (the first of `rpcUrls`). */
  rpcUrl: string;
  /**
   * Every JSON-RPC endpoint given (`--rpc-url a,b`): calls go to the first that answers, so one
   * provider's outage does not stop the gateway.
   */
  rpcUrls: string[];
  /** Grid Diamond address. */
  grid: Address;
  /** Gateway key: signs `settle` transactions and webhooks; payers approve its address. */
  privateKey: Hex;
  /** The address of `privateKey`. */
  gateway: Address;
  /** Expected chain id; read from the RPC when undefined. */
  chainId: number | undefined;
  database: {
    /** `postgres://…`: a PostgreSQL server (pg Pool). Undefined: embedded PGlite. */
    url: string | undefined;
    /** PGlite data directory; `memory://` keeps everything in memory (tests). */
    dir: string;
    /** Schema for every table (default `public`); tests use one per run. */
    schema: string;
    /** pg Pool size (PostgreSQL server only). */
    poolSize: number;
  };
  log: { level: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'trace' | 'silent' };
  /**
   * A separate Prometheus `/metrics` server (AIPG_METRICS_PORT), as the worker and validator have; null:
   * none (the API port serves `/metrics` either way).
   */
  metrics?: { port: number; host: string } | null | undefined;
  /** Deprecated environment names this configuration was read from (logged as warnings at start). */
  deprecations?: readonly string[] | undefined;
  tokenizers: {
    /**
     * Directory of model tokenizer files (`extractTokenizerFile` of a model's GGUF; any file name).
     * A model is served only when a file here hashes to its on-chain `tokenizerHash`.
     */
    dir: string;
  };
  http: {
    /** Largest accepted request body in bytes (413 above). */
    bodyLimitBytes: number;
    /** Longest time a shutdown waits for in-flight jobs before closing anyway. */
    shutdownTimeoutMs: number;
  };
  rateLimit: {
    /** Sustained requests per minute per API key (token bucket refill). */
    requestsPerMinute: number;
    /** Bucket size: requests a key may send at once. */
    burst: number;
    /** Unauthenticated endpoints (key creation), per client IP. */
    anonymousRequestsPerMinute: number;
    /** Sustained requests per minute per payer, all its API keys together (minting keys adds nothing). */
    payerRequestsPerMinute: number;
    /** Bucket size per payer, all its keys together. */
    payerBurst: number;
    /**
     * Chain reads unauthenticated requests may cause on a cache miss (a smart-account key signature, an
     * unknown validator's bond), per minute for the whole gateway; above it such requests get 429.
     */
    anonymousChainReadsPerMinute: number;
  };
  jobs: {
    /** `max_tokens` when the request gives none. */
    defaultMaxTokens: number;
    /** Largest `max_tokens` accepted. */
    maxMaxTokens: number;
    /** Workers tried for one job (a worker failing before its first token hands the job on). */
    maxAttempts: number;
    /** How long a job waits for a worker with free capacity before 503. */
    queueTimeoutMs: number;
    /** A worker must send its first token within this time, or the job moves on. */
    firstTokenTimeoutMs: number;
    /** Whole job limit. */
    jobTimeoutMs: number;
    /** Tolerance on a receipt's `completedAt` against the gateway clock. */
    clockSkewSec: number;
  };
  hub: {
    /** Ping interval; a worker silent for 3 intervals is dropped. */
    heartbeatMs: number;
    /** Time a new connection has to send a valid `hello`. */
    helloTimeoutMs: number;
    /** How often connected workers' bonds are re-checked on chain. */
    bondRecheckMs: number;
    /** Largest WebSocket frame accepted from a worker. */
    maxFrameBytes: number;
  };
  chain: {
    /** How long a payer's deposit/allowance read is reused. */
    balanceCacheMs: number;
    /** How long the model registry and bonds are reused. */
    registryCacheMs: number;
    /**
     * Bounded staleness: past its cache time a value is still answered (and refreshed in the
     * background) until it is this old; during an RPC outage requests are served from these values
     * until then. Keep it well under the Grid's withdrawal and unbonding delays.
     */
    maxStaleMs: number;
  };
  network: {
    /** Block the Grid was deployed in: where the dashboard's event indexer starts (found by search when unset). */
    deployBlock: number | undefined;
    /**
     * Follow the chain in this process (the default). False when the standalone indexer (`aipg indexer
     * start`) follows it into this database: the gateway then serves what that one stores.
     */
    indexer: boolean;
  };
  settlement: {
    enabled: boolean;
    /** Settle at least this often while receipts wait. */
    intervalMs: number;
    /** Settle as soon as this many receipts wait. */
    minReceipts: number;
    /** Most receipts in one batch. */
    maxBatchSize: number;
    /** First RPC retry delay; doubles up to 60 s. */
    retryBaseMs: number;
  };
  keys: {
    /** Longest accepted distance between now and a key request's `expires`. */
    maxMessageTtlSec: number;
    /** HMAC secret API keys derive from; default: derived from `privateKey`. */
    secret: Hex | undefined;
    /**
     * How long a key is remembered in memory after it was looked up (no database read per request).
     * A key revoked through this gateway is forgotten at once; through another replica, within this.
     */
    cacheMs: number;
  };
  audit: {
    /** Accepted clock distance of a validator's signed request. */
    maxSkewSec: number;
    /** Longest a cross-check (`POST /v1/audit/score`) may take, every attempt included. */
    scoreTimeoutMs: number;
    /** Workers tried for one cross-check when one fails. */
    scoreMaxAttempts: number;
    /** Cross-checks one validator may have running at once (429 above). */
    maxScoresPerValidator: number;
  };
  reputation: {
    /** Follow audit verdicts and slashes on chain and feed them to routing. */
    enabled: boolean;
    /** How often it reads the events the network indexer stored, when another process indexes. */
    pollIntervalMs: number;
    /** A worker is not routed to (unless nobody else can run the job) this long after a FAIL or slash. */
    failCooldownMs: number;
    /** After the cool-down, a worker's routing score is cut heavily for this long. */
    penaltyWindowMs: number;
  };
  webhooks: {
    maxAttempts: number;
    timeoutMs: number;
    retryBaseMs: number;
    /**
     * Devnets only: let webhooks reach loopback, private, link-local and other non-public addresses
     * (refused by default, at submit and at every delivery after DNS resolution).
     */
    allowPrivate: boolean;
  };
  images: {
    /** How long delivered images stay retrievable (`response_format: url` links expire then). */
    retentionMs: number;
    /** How long image jobs' committed latents are kept for validators (past settlement and its audit). */
    auditRetentionMs: number;
  };
  idempotency: {
    /** How long a stored response is replayed. */
    ttlSec: number;
    /** How long a duplicate waits for the first request to finish before 409. */
    waitMs: number;
  };
  /** The confidential tier (docs/confidential.md): how workers' TEE evidence is checked. */
  tee: {
    /** Trust anchors evidence must verify under: Intel's and NVIDIA's roots unless a file names others. */
    anchors: TrustAnchors;
    /** Where `anchors` came from (`production`, or the file's path): logged, shown on `/v1/attestation`. */
    anchorsSource: string;
    /** How often each attested worker is challenged for fresh evidence. */
    recheckMs: number;
    /** How long a worker has to answer a challenge. */
    attestTimeoutMs: number;
    /** Evidence older than this (its NVIDIA token's `iat`) is stale. */
    maxAgeSec: number;
  };
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

/** Environment variables read, by option key: the daemons' one vocabulary (docs/operators/environment.md). */
const ENV: Record<string, EnvVar> = {
  host: DAEMON_ENV.gatewayHost,
  port: DAEMON_ENV.gatewayPort,
  rpcUrl: DAEMON_ENV.rpcUrl,
  grid: DAEMON_ENV.grid,
  privateKey: DAEMON_ENV.operatorKey,
  chainId: DAEMON_ENV.chainId,
  databaseUrl: DAEMON_ENV.databaseUrl,
  databaseDir: DAEMON_ENV.databaseDir,
  databaseSchema: DAEMON_ENV.databaseSchema,
  logLevel: DAEMON_ENV.logLevel,
  tokenizersDir: DAEMON_ENV.tokenizersDir,
  metricsPort: DAEMON_ENV.metricsPort,
  metricsHost: DAEMON_ENV.metricsHost,
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

const int = (min: number, max = Number.MAX_SAFE_INTEGER) => z.coerce.number().int().min(min).max(max);
const bool = z.union([
  z.boolean(),
  z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1'),
]);
const hex32 = z.string().regex(/^0x[0-9a-fA-F]{64}$/, 'expected 0x followed by 64 hex digits');

const schema = z.object({
  host: z.string().min(1).default('127.0.0.1'),
  port: int(0, 65535).default(8080),
  // One URL or several, comma-separated (tried in order).
  rpcUrl: z
    .string()
    .transform((v) =>
      v
        .split(',')
        .map((u) => u.trim())
        .filter((u) => u.length > 0),
    )
    .pipe(z.array(z.url({ protocol: /^(https?|wss?)$/ })).min(1, 'expected at least one RPC URL')),
  grid: z.string().refine((v) => isAddress(v, { strict: false }), 'expected an address'),
  privateKey: hex32,
  chainId: int(1).optional(),
  databaseUrl: z
    .string()
    .regex(/^postgres(ql)?:\/\//, 'expected postgres://…')
    .optional(),
  databaseDir: z.string().min(1).default('.aipg/gateway-db'),
  databaseSchema: z
    .string()
    .regex(/^[a-z_][a-z0-9_]{0,62}$/, 'lowercase letters, digits and _')
    .default('public'),
  'database.poolSize': int(1, 200).default(10),
  logLevel: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  metricsPort: int(0, 65535).optional(),
  metricsHost: z.string().min(1).default('127.0.0.1'),
  tokenizersDir: z.string().min(1).default('.aipg/tokenizers'),
  'http.bodyLimitBytes': int(1024, 64 * 1024 * 1024).default(1024 * 1024),
  'http.shutdownTimeoutMs': int(0).default(30_000),
  'rateLimit.requestsPerMinute': int(1).default(600),
  'rateLimit.burst': int(1).default(60),
  'rateLimit.anonymousRequestsPerMinute': int(1).default(30),
  'rateLimit.payerRequestsPerMinute': int(1).default(1_200),
  'rateLimit.payerBurst': int(1).default(120),
  'rateLimit.anonymousChainReadsPerMinute': int(1).default(60),
  'jobs.defaultMaxTokens': int(1).default(512),
  'jobs.maxMaxTokens': int(1, 1_000_000).default(32_768),
  'jobs.maxAttempts': int(1, 10).default(3),
  'jobs.queueTimeoutMs': int(0).default(30_000),
  'jobs.firstTokenTimeoutMs': int(100).default(60_000),
  'jobs.jobTimeoutMs': int(100).default(300_000),
  'jobs.clockSkewSec': int(0).default(300),
  'hub.heartbeatMs': int(50).default(10_000),
  'hub.helloTimeoutMs': int(50).default(10_000),
  'hub.bondRecheckMs': int(100).default(60_000),
  // Image results carry their images and latents in one frame (`imageResultBound`).
  'hub.maxFrameBytes': int(1024).default(64 * 1024 * 1024),
  'chain.balanceCacheMs': int(0).default(2_000),
  'chain.registryCacheMs': int(0).default(10_000),
  'chain.maxStaleMs': int(0).default(120_000),
  'network.deployBlock': int(0).optional(),
  'network.indexer': bool.default(true),
  'settlement.enabled': bool.default(true),
  'settlement.intervalMs': int(10).default(30_000),
  'settlement.minReceipts': int(1).default(100),
  'settlement.maxBatchSize': int(1, 10_000).default(1_000),
  'settlement.retryBaseMs': int(1).default(1_000),
  'keys.maxMessageTtlSec': int(1).default(86_400),
  'keys.secret': hex32.optional(),
  'keys.cacheMs': int(0).default(5_000),
  'audit.maxSkewSec': int(1).default(60),
  'audit.scoreTimeoutMs': int(100).default(60_000),
  'audit.scoreMaxAttempts': int(1, 10).default(3),
  'audit.maxScoresPerValidator': int(1, 1_000).default(4),
  'reputation.enabled': bool.default(true),
  'reputation.pollIntervalMs': int(10).default(5_000),
  'reputation.failCooldownMs': int(0).default(24 * 3_600_000),
  'reputation.penaltyWindowMs': int(0).default(7 * 24 * 3_600_000),
  'webhooks.maxAttempts': int(1, 20).default(5),
  'webhooks.timeoutMs': int(100).default(10_000),
  'webhooks.retryBaseMs': int(1).default(1_000),
  'webhooks.allowPrivate': bool.default(false),
  'images.retentionMs': int(60_000).default(3_600_000),
  'images.auditRetentionMs': int(60_000).default(3 * 24 * 3_600_000),
  'idempotency.ttlSec': int(1).default(86_400),
  'idempotency.waitMs': int(0).default(60_000),
  'tee.anchorsFile': z.string().min(1).optional(),
  'tee.recheckMs': int(1_000).default(600_000),
  'tee.attestTimeoutMs': int(100).default(10_000),
  'tee.maxAgeSec': int(60).default(3_600),
});

/** Flat key of the schema ↔ nested option path. */
const NESTED: Record<string, string> = {
  databaseUrl: 'database.url',
  databaseDir: 'database.dir',
  databaseSchema: 'database.schema',
  logLevel: 'log.level',
  tokenizersDir: 'tokenizers.dir',
};

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
  for (const key of Object.keys(schema.shape)) {
    const nestedName = NESTED[key];
    const fromFlag = flags[key] ?? (nestedName === undefined ? undefined : flags[nestedName]);
    const variable = ENV[key];
    const value = fromFlag ?? (variable === undefined ? undefined : vars.get(variable));
    if (value !== undefined) raw[key] = value;
  }
  if (raw.privateKey === undefined && vars.get(DAEMON_ENV.keystore) !== undefined)
    throw new ConfigError(
      'invalid gateway configuration',
      `privateKey: ${DAEMON_ENV.keystore.name} is set: build the options with loadGatewayOptions, which decrypts it`,
    );
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((i) => {
      const key = String(i.path[0] ?? '');
      const variable = ENV[key];
      const message = /received undefined/.test(i.message) ? 'required' : i.message;
      return `${key}${variable ? ` (${vars.source(variable)})` : ''}: ${message}`;
    });
    throw new ConfigError('invalid gateway configuration', lines.join('; '));
  }
  const o = parsed.data;
  const privateKey = o.privateKey as Hex;
  const settlement = {
    enabled: o['settlement.enabled'],
    intervalMs: o['settlement.intervalMs'],
    minReceipts: o['settlement.minReceipts'],
    maxBatchSize: o['settlement.maxBatchSize'],
    retryBaseMs: o['settlement.retryBaseMs'],
  };
  if (settlement.minReceipts > settlement.maxBatchSize) settlement.minReceipts = settlement.maxBatchSize;
  return {
    host: o.host,
    port: o.port,
    rpcUrl: o.rpcUrl[0]!,
    rpcUrls: o.rpcUrl,
    grid: getAddress(o.grid),
    privateKey,
    gateway: privateKeyToAddress(privateKey),
    chainId: o.chainId,
    database: {
      url: o.databaseUrl,
      dir: o.databaseDir,
      schema: o.databaseSchema,
      poolSize: o['database.poolSize'],
    },
    log: { level: o.logLevel },
    metrics: o.metricsPort === undefined ? null : { port: o.metricsPort, host: o.metricsHost },
    deprecations: [...vars.deprecations],
    tokenizers: { dir: o.tokenizersDir },
    http: { bodyLimitBytes: o['http.bodyLimitBytes'], shutdownTimeoutMs: o['http.shutdownTimeoutMs'] },
    rateLimit: {
      requestsPerMinute: o['rateLimit.requestsPerMinute'],
      burst: o['rateLimit.burst'],
      anonymousRequestsPerMinute: o['rateLimit.anonymousRequestsPerMinute'],
      payerRequestsPerMinute: o['rateLimit.payerRequestsPerMinute'],
      payerBurst: o['rateLimit.payerBurst'],
      anonymousChainReadsPerMinute: o['rateLimit.anonymousChainReadsPerMinute'],
    },
    jobs: {
      defaultMaxTokens: Math.min(o['jobs.defaultMaxTokens'], o['jobs.maxMaxTokens']),
      maxMaxTokens: o['jobs.maxMaxTokens'],
      maxAttempts: o['jobs.maxAttempts'],
      queueTimeoutMs: o['jobs.queueTimeoutMs'],
      firstTokenTimeoutMs: o['jobs.firstTokenTimeoutMs'],
      jobTimeoutMs: o['jobs.jobTimeoutMs'],
      clockSkewSec: o['jobs.clockSkewSec'],
    },
    hub: {
      heartbeatMs: o['hub.heartbeatMs'],
      helloTimeoutMs: o['hub.helloTimeoutMs'],
      bondRecheckMs: o['hub.bondRecheckMs'],
      maxFrameBytes: o['hub.maxFrameBytes'],
    },
    chain: {
      balanceCacheMs: o['chain.balanceCacheMs'],
      registryCacheMs: o['chain.registryCacheMs'],
      maxStaleMs: o['chain.maxStaleMs'],
    },
    network: { deployBlock: o['network.deployBlock'], indexer: o['network.indexer'] },
    settlement,
    keys: {
      maxMessageTtlSec: o['keys.maxMessageTtlSec'],
      secret: o['keys.secret'] as Hex | undefined,
      cacheMs: o['keys.cacheMs'],
    },
    audit: {
      maxSkewSec: o['audit.maxSkewSec'],
      scoreTimeoutMs: o['audit.scoreTimeoutMs'],
      scoreMaxAttempts: o['audit.scoreMaxAttempts'],
      maxScoresPerValidator: o['audit.maxScoresPerValidator'],
    },
    reputation: {
      enabled: o['reputation.enabled'],
      pollIntervalMs: o['reputation.pollIntervalMs'],
      failCooldownMs: o['reputation.failCooldownMs'],
      penaltyWindowMs: o['reputation.penaltyWindowMs'],
    },
    webhooks: {
      maxAttempts: o['webhooks.maxAttempts'],
      timeoutMs: o['webhooks.timeoutMs'],
      retryBaseMs: o['webhooks.retryBaseMs'],
      allowPrivate: o['webhooks.allowPrivate'],
    },
    images: { retentionMs: o['images.retentionMs'], auditRetentionMs: o['images.auditRetentionMs'] },
    idempotency: { ttlSec: o['idempotency.ttlSec'], waitMs: o['idempotency.waitMs'] },
    tee: {
      ...teeAnchors(o['tee.anchorsFile']),
      recheckMs: o['tee.recheckMs'],
      attestTimeoutMs: o['tee.attestTimeoutMs'],
      maxAgeSec: o['tee.maxAgeSec'],
    },
  };
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
