#!/usr/bin/env node
/**
 * `aipg-gateway`: starts a gateway from flags and environment (see the README for both).
 *
 *   tsx packages/gateway/src/bin/gateway.ts --rpc-url http://127.0.0.1:8545 --grid 0x… --port 8080
 *
 * Flags are `--kebab-case value` (or `--flag=value`); nested options via `--set settlement.intervalMs=5000`.
 * SIGINT / SIGTERM stop it gracefully; a second signal exits at once (@aipg/daemon's `runUntilSignalled`).
 */
import { runUntilSignalled } from '@aipg/daemon';
import { startGateway } from '../gateway.ts';
import { loadGatewayOptions } from '../options.ts';
import { parseFlags } from './flags.ts';

const HELP = `aipg-gateway: the AI Power Grid gateway

  Environment and flags: docs/operators/gateway.md (the variables: docs/operators/environment.md)

  --rpc-url URL[,URL…]   chain JSON-RPC, tried in order (AIPG_RPC_URL)
  --grid ADDRESS         Grid Diamond (AIPG_GRID)
  --keystore FILE        keystore of the gateway key (AIPG_KEYSTORE, password AIPG_KEYSTORE_PASSWORD or
  --password-file FILE     AIPG_KEYSTORE_PASSWORD_FILE); or the raw key in AIPG_OPERATOR_KEY
  --host HOST            listen address (AIPG_GATEWAY_HOST, default 127.0.0.1)
  --port N               listen port, 0 = any (AIPG_GATEWAY_PORT, default 8080)
  --database-url URL     PostgreSQL server (DATABASE_URL); default: embedded PGlite
  --database-dir DIR     PGlite data directory (AIPG_GATEWAY_DB_DIR, default .aipg/gateway-db)
  --log-level LEVEL      fatal|error|warn|info|debug|trace|silent (AIPG_LOG_LEVEL)
  --metrics-port N       also serve /metrics and /healthz on this port (AIPG_METRICS_PORT)
  --tokenizers-dir DIR   models' tokenizer files, matched by their on-chain hash
                         (AIPG_GATEWAY_TOKENIZERS_DIR, default .aipg/tokenizers)
  --set key=value        any option by its dotted name, e.g. settlement.intervalMs=5000

  SIGINT / SIGTERM drain (in-flight jobs finish, receipts are settled); a second one exits at once.
  Exit codes: 0 stopped cleanly, 1 could not start or stopped on an error, 130 / 143 a second SIGINT / SIGTERM.
`;

async function main(): Promise<number> {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) {
    process.stdout.write(HELP);
    return 0;
  }
  return runUntilSignalled({
    name: 'aipg-gateway',
    start: async () => startGateway(await loadGatewayOptions(flags, process.env)),
    draining: () => 'refusing new requests, finishing the jobs in flight, settling their receipts',
  });
}

main().then(
  (code) => process.exit(code),
  (error: unknown) => {
    const e = error as { shortMessage?: string; details?: string; message?: string };
    process.stderr.write(
      `aipg-gateway: ${e.shortMessage ?? e.message ?? String(error)}${e.details ? `: ${e.details}` : ''}\n`,
    );
    process.exit(1);
  },
);
