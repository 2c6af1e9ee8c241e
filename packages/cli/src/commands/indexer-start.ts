import { createDaemonLogger } from '@aipg/daemon';
import { openGatewayDatabase } from '@aipg/gateway';
import { startIndexerService } from '@aipg/indexer';
import { defineCommand } from '../command.ts';
import { connect } from '../connect.ts';
import { CliError } from '../errors.ts';
import { table } from '../output.ts';

const DEFAULT_PORT = 8090;
const DEFAULT_DB_DIR = '.aipg/gateway-db';
const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

/** A whole number flag in [min, max]; `what` names it in the error. */
function integer(value: string | undefined, what: string, min: number, max = Number.MAX_SAFE_INTEGER) {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value.trim()) || !Number.isSafeInteger(n) || n < min || n > max) {
    throw new CliError(
      `invalid ${what} "${value}"`,
      'USAGE',
      `expected a whole number from ${min} to ${max}`,
    );
  }
  return n;
}

export const indexerStart = defineCommand({
  path: ['indexer', 'start'],
  summary: 'run the network indexer as its own process: follow the Grid, serve /v1/network and the dashboard',
  description: [
    "Follows the Grid's events into the gateway's database and serves the network API (/v1/network/*) and the",
    'dashboard on its own port. The gateways on that database must run with their own indexer off',
    '(AIPG_GATEWAY_NETWORK_INDEXER=false, or --set network.indexer=false), so one process follows the chain;',
    "they keep serving /v1/network from what this one stores. The API also reads the gateway's jobs, receipts",
    "and API keys, so point it at the gateway's database: PostgreSQL (--database-url, env DATABASE_URL) beside",
    'running gateways. Embedded PGlite (--database-dir) belongs to one process: use it only where no gateway',
    'holds that directory. SIGINT / SIGTERM drain and stop it. See packages/indexer/README.md.',
  ].join('\n'),
  options: {
    'database-url': { type: 'string' },
    'database-dir': { type: 'string' },
    'database-schema': { type: 'string' },
    host: { type: 'string' },
    port: { type: 'string' },
    'deploy-block': { type: 'string' },
    'poll-interval': { type: 'string' },
    'log-range': { type: 'string' },
    confirmations: { type: 'string' },
    'dashboard-dir': { type: 'string' },
    'log-level': { type: 'string' },
  },
  optionsHelp: [
    ['--database-url <url>', "the gateway's PostgreSQL (env DATABASE_URL)"],
    [
      '--database-dir <dir>',
      `a PGlite directory no gateway holds (env AIPG_GATEWAY_DB_DIR, default ${DEFAULT_DB_DIR})`,
    ],
    ['--database-schema <name>', 'schema of the gateway tables (env AIPG_GATEWAY_DB_SCHEMA, default public)'],
    ['--host <host>', 'listen address (default 127.0.0.1)'],
    ['--port <n>', `listen port, 0 for any free port (default ${DEFAULT_PORT})`],
    ['--deploy-block <n>', "where indexing starts (default: the deployment file's, else found by search)"],
    ['--poll-interval <ms>', 'pause between polls once caught up (default 1000)'],
    ['--log-range <n>', 'largest eth_getLogs range, halved while the RPC refuses it (default 2000)'],
    ['--confirmations <n>', 'blocks to stay behind the head (default 0: reorgs are undone)'],
    ['--dashboard-dir <dir>', 'the built dashboard (default packages/dashboard/dist)'],
    ['--log-level <level>', 'fatal|error|warn|info|debug|trace|silent (default info)'],
  ],
  examples: [
    'DATABASE_URL=postgres://aipg@db/aipg aipg indexer start --port 8090 --deployment .aipg/deployment.json',
    'aipg indexer start --grid 0x… --rpc-url https://mainnet.base.org --database-dir /var/lib/aipg/indexer-db',
  ],
  async run({ flags, config, io, waitForShutdown }) {
    const str = (name: string) => {
      const v = flags[name];
      return typeof v === 'string' && v.trim() !== '' ? v.trim() : undefined;
    };
    const level = str('log-level') ?? 'info';
    if (!(LOG_LEVELS as readonly string[]).includes(level)) {
      throw new CliError(
        `invalid --log-level "${level}"`,
        'USAGE',
        `expected one of ${LOG_LEVELS.join(', ')}`,
      );
    }
    const port = integer(str('port'), '--port', 0, 65_535) ?? DEFAULT_PORT;
    const deployBlock = integer(str('deploy-block'), '--deploy-block', 0);
    const pollIntervalMs = integer(str('poll-interval'), '--poll-interval', 10);
    const maxBlockRange = integer(str('log-range'), '--log-range', 1, 1_000_000);
    const confirmations = integer(str('confirmations'), '--confirmations', 0, 1_000);
    const url = str('database-url') ?? config.database.url;
    if (url !== undefined && !/^postgres(ql)?:\/\//.test(url)) {
      throw new CliError(
        'invalid database URL',
        'USAGE',
        'expected postgres://… (or leave it out for PGlite)',
      );
    }
    const dir = str('database-dir') ?? config.database.dir ?? DEFAULT_DB_DIR;
    const schema = str('database-schema') ?? config.database.schema ?? 'public';
    if (!/^[a-z_][a-z0-9_]{0,62}$/.test(schema)) {
      throw new CliError(`invalid --database-schema "${schema}"`, 'USAGE', 'expected a lower-case SQL name');
    }

    // Listen first: a Ctrl-C while it connects or catches up still stops it cleanly.
    const shutdown = waitForShutdown();
    const logger = createDaemonLogger({
      service: 'indexer',
      level,
      destination: { write: (line: string) => io.stderr.write(line) },
    });
    const chain = await connect(config);
    const store = await openGatewayDatabase({ url, dir, schema, poolSize: 4 }).catch((error: unknown) => {
      throw new CliError(
        url ? 'cannot open the gateway database' : `cannot open the PGlite database in ${dir}`,
        'CONFIG',
        `${(error as Error).message.split('\n')[0]}${url ? '' : ' (is a gateway running on that directory? PGlite belongs to one process: use PostgreSQL, DATABASE_URL, for both)'}`,
      );
    });
    try {
      if (store.journalReplayed.entries > 0)
        logger.info({
          msg: 'commit journal of a stopped gateway replayed',
          entries: store.journalReplayed.entries,
          committed_now: store.journalReplayed.committedNow,
        });
      const service = await startIndexerService({
        logger,
        db: store.db,
        publicClient: chain.publicClient,
        deployment: {
          grid: chain.grid,
          chainId: chain.chainId,
          deployBlock: deployBlock ?? chain.deployment?.deployBlock,
        },
        // Replicas of this service on one PostgreSQL: one follows (PGlite has one process anyway).
        leases: store.db.kind === 'postgres' ? store.leases : undefined,
        authenticate: store.authenticate,
        host: str('host'),
        port,
        options: {
          // Only what was given: the indexer's defaults stand for the rest.
          indexer: Object.fromEntries(
            Object.entries({ pollIntervalMs, maxBlockRange, confirmations }).filter(
              ([, v]) => v !== undefined,
            ),
          ),
          dashboardDir: str('dashboard-dir'),
        },
      }).catch((error: unknown) => {
        if (/EADDRINUSE/.test(String((error as Error).message ?? error))) {
          throw new CliError(
            `port ${port} is already in use`,
            'USAGE',
            'pass --port <n>, or --port 0 for any free port',
          );
        }
        throw error;
      });
      const w = (line = '') => io.stdout.write(`${line}\n`);
      w('AIPG network indexer is up');
      w(
        table([
          ['network API', `${service.url}/v1/network/status`],
          ['dashboard', `${service.url}/`],
          ['Grid', `${chain.grid} (chain ${chain.chainId})`],
          ['database', url ? `PostgreSQL, schema ${schema}` : `PGlite ${dir}`],
        ]),
      );
      w('Press Ctrl-C to stop.');
      const signal = await shutdown;
      logger.info({ msg: 'signal received, shutting down', signal });
      await service.stop();
      w('indexer stopped');
      return 0;
    } finally {
      await store.close();
    }
  },
});
