import type { Sql } from './sql.ts';

/**
 * The network feature's own numbered migrations, recorded in `network_migrations` (apart from the
 * gateway's `gateway_migrations`, so the two lists never collide). Never edit a released one: add the
 * next number. Every statement runs on PGlite and PostgreSQL alike.
 *
 * `network_events` is the one table of chain events: every log of the Grid Diamond, decoded when the
 * ABI knows it (`name`, `args`) and always kept raw (`topics`, `data`), so events of facets added
 * later (audits, attestations) land in the same table and an older row can be decoded again. The
 * `network_*` state tables are a pure function of the events: the indexer folds each event into them
 * in the same transaction, and rebuilds them from the events after a reorg.
 *
 * Needs the gateway's schema first (`jobs`, `receipts`): the index on `jobs.completed_at` serves the
 * activity feed and the windowed statistics.
 */
export const networkMigrations: readonly { id: number; name: string; sql: string }[] = [
  {
    id: 1,
    name: 'events and derived state',
    sql: `
CREATE TABLE network_cursor (
  id text PRIMARY KEY,
  chain_id integer NOT NULL,
  grid text NOT NULL,
  from_block bigint NOT NULL,
  next_block bigint NOT NULL,
  reorgs integer NOT NULL DEFAULT 0,
  last_reorg_block bigint,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE network_blocks (
  number bigint PRIMARY KEY,
  hash text NOT NULL,
  parent_hash text NOT NULL,
  timestamp bigint NOT NULL
);

CREATE TABLE network_events (
  block_number bigint NOT NULL,
  log_index integer NOT NULL,
  block_hash text NOT NULL,
  tx_hash text NOT NULL,
  block_time timestamptz NOT NULL,
  name text,
  kind text NOT NULL,
  role text,
  account text,
  related text,
  model_id text,
  batch_id numeric(78, 0),
  amount numeric(78, 0),
  args jsonb NOT NULL,
  topics jsonb NOT NULL,
  data text NOT NULL,
  PRIMARY KEY (block_number, log_index)
);
CREATE INDEX network_events_time ON network_events (block_time DESC, block_number DESC, log_index DESC);
CREATE INDEX network_events_account ON network_events (account, block_number DESC);
CREATE INDEX network_events_related ON network_events (related, block_number DESC);
CREATE INDEX network_events_name ON network_events (name, block_number);
CREATE INDEX network_events_model ON network_events (model_id, block_number) WHERE model_id IS NOT NULL;

CREATE TABLE network_bonds (
  role text NOT NULL,
  owner text NOT NULL,
  amount numeric(78, 0) NOT NULL DEFAULT 0,
  unbonding numeric(78, 0) NOT NULL DEFAULT 0,
  unbond_ready_at bigint NOT NULL DEFAULT 0,
  operator text,
  slashed numeric(78, 0) NOT NULL DEFAULT 0,
  slash_count integer NOT NULL DEFAULT 0,
  first_bonded_at timestamptz NOT NULL,
  updated_block bigint NOT NULL,
  PRIMARY KEY (role, owner)
);

CREATE TABLE network_accounts (
  address text PRIMARY KEY,
  gross numeric(78, 0) NOT NULL DEFAULT 0,
  earned numeric(78, 0) NOT NULL DEFAULT 0,
  withdrawn numeric(78, 0) NOT NULL DEFAULT 0,
  credits integer NOT NULL DEFAULT 0
);

CREATE TABLE network_models (
  id text PRIMARY KEY,
  name text NOT NULL,
  kind text NOT NULL,
  weights_hash text NOT NULL,
  parameter_count numeric(20, 0),
  min_vram_mb integer,
  input_per_m numeric(78, 0) NOT NULL DEFAULT 0,
  output_per_m numeric(78, 0) NOT NULL DEFAULT 0,
  per_mp_step numeric(78, 0) NOT NULL DEFAULT 0,
  active boolean NOT NULL DEFAULT true,
  registered_block bigint NOT NULL,
  registered_at timestamptz NOT NULL
);

CREATE TABLE network_params (
  key text PRIMARY KEY,
  value text NOT NULL,
  updated_block bigint NOT NULL
);

CREATE INDEX network_jobs_completed ON jobs (completed_at) WHERE completed_at IS NOT NULL
`,
  },
  {
    id: 2,
    name: 'model tokenizer hashes',
    // Models indexed before this migration take the hash from their stored ModelRegistered event (null
    // when that event predates the field).
    sql: `
ALTER TABLE network_models ADD COLUMN tokenizer_hash text;

UPDATE network_models SET tokenizer_hash = lower(e.args->>'tokenizerHash')
  FROM network_events e WHERE e.name = 'ModelRegistered' AND e.model_id = network_models.id
`,
  },
  {
    id: 3,
    name: 'gateway fault reports',
    // One row per `GatewayFaultReported` (a validator's record that a gateway served audit evidence that does
    // not hash to the receipt), with its reason decoded to its code; folded by `applyEvent`, rebuilt after a
    // reorg. Events stored before this build knew the event are decoded again when the indexer starts.
    sql: `
CREATE TABLE network_gateway_faults (
  block_number bigint NOT NULL,
  log_index integer NOT NULL,
  tx_hash text NOT NULL,
  block_time timestamptz NOT NULL,
  gateway text NOT NULL,
  batch_id numeric(78, 0) NOT NULL,
  leaf text NOT NULL,
  validator text NOT NULL,
  reason text NOT NULL,
  reason_hex text NOT NULL,
  evidence_hash text NOT NULL,
  PRIMARY KEY (block_number, log_index)
);
CREATE INDEX network_gateway_faults_gateway ON network_gateway_faults (gateway, block_number DESC, log_index DESC);
CREATE INDEX network_gateway_faults_validator ON network_gateway_faults (validator, block_number DESC)
`,
  },
];

/** Applies pending network migrations under a transaction-scoped advisory lock (replicas may start together). */
export async function migrateNetwork(db: Sql): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(727274002)');
    await tx.query(
      'CREATE TABLE IF NOT EXISTS network_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await tx.query<{ id: number }>('SELECT id FROM network_migrations')).map((r) => Number(r.id)),
    );
    const applied: number[] = [];
    for (const m of networkMigrations) {
      if (done.has(m.id)) continue;
      // Migrations hold no functions or quoted semicolons, so a split on `;` is exact.
      for (const statement of m.sql.split(';').map((s) => s.trim())) {
        if (statement) await tx.query(statement);
      }
      await tx.query('INSERT INTO network_migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
      applied.push(m.id);
    }
    return applied;
  });
}
