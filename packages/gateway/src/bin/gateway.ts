#!/usr/bin/env node
/**
 * `aipg-gateway`: starts a gateway from flags and environment (see the README for both).
 *
 *   tsx packages/gateway/src/bin/gateway.ts --rpc-url http://127.0.0.1:8545 --grid 0x… --port 8080
 *
 * Flags are `--kebab-case value` (or `--flag=value`); nested options via `--set settlement.intervalMs=5000`.
 * SIGINT / SIGTERM stop it gracefully; a second signal exits at once.
 */
import { startGateway } from '../gateway.ts';
import { createGatewayOptions } from '../options.ts';
import { parseFlags } from './flags.ts';

const HELP = `aipg-gateway: the AI Power Grid gateway

  --rpc-url URL          chain JSON-RPC (AIPG_RPC_URL)
  --grid ADDRESS         Grid Diamond (AIPG_GRID_ADDRESS)
  --private-key HEX      gateway key (AIPG_GATEWAY_PRIVATE_KEY)
  --host HOST            listen address (AIPG_GATEWAY_HOST, default 127.0.0.1)
  --port N               listen port, 0 = any (AIPG_GATEWAY_PORT, default 8080)
  --database-url URL     PostgreSQL server (DATABASE_URL); default: embedded PGlite
  --database-dir DIR     PGlite data directory (AIPG_GATEWAY_DB_DIR, default .aipg/gateway-db)
  --log-level LEVEL      fatal|error|warn|info|debug|trace|silent (AIPG_LOG_LEVEL)
  --tokenizers-dir DIR   models' tokenizer files, matched by their on-chain hash
                         (AIPG_GATEWAY_TOKENIZERS_DIR, default .aipg/tokenizers)
  --set key=value        any option by its dotted name, e.g. settlement.intervalMs=5000
`;

async function main() {
  const flags = parseFlags(process.argv.slice(2));
  if (flags.help) {
    process.stdout.write(HELP);
    return;
  }
  const options = createGatewayOptions(flags, process.env);
  const gateway = await startGateway(options);
  let stopping = false;
  const onSignal = (signal: NodeJS.Signals) => {
    if (stopping) process.exit(130);
    stopping = true;
    gateway.common.logger.info({ msg: 'signal received, shutting down', signal });
    gateway.stop().then(
      () => process.exit(0),
      () => process.exit(1),
    );
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
}

main().catch((error: unknown) => {
  const e = error as { shortMessage?: string; details?: string; message?: string };
  process.stderr.write(
    `aipg-gateway: ${e.shortMessage ?? e.message ?? String(error)}${e.details ? `\n  ${e.details}` : ''}\n`,
  );
  process.exit(1);
});
