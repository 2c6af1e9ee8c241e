import type { Sql } from './db.ts';

/**
 * Numbered migrations, applied in order once each and recorded in `gateway_migrations`. Never edit
 * a released migration: add the next number. Every statement runs on PGlite and PostgreSQL alike.
 */
export const migrations: readonly { id: number; name: string; sql: string }[] = [
  {
    id: 1,
    name: 'initial',
    sql: `
CREATE TABLE api_keys (
  id text PRIMARY KEY,
  key_hash text NOT NULL UNIQUE,
  payer text NOT NULL,
  name text,
  nonce text NOT NULL,
  message text NOT NULL,
  signature text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  revoked_at timestamptz,
  last_used_at timestamptz,
  UNIQUE (payer, nonce)
);
CREATE INDEX api_keys_payer ON api_keys (payer);

CREATE TABLE payers (
  address text PRIMARY KEY,
  created_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE jobs (
  id text PRIMARY KEY,
  kind text NOT NULL,
  mode text NOT NULL,
  api_key_id text NOT NULL REFERENCES api_keys (id),
  payer text NOT NULL,
  model_id text NOT NULL,
  model_name text NOT NULL,
  request jsonb NOT NULL,
  params jsonb NOT NULL,
  pricing jsonb NOT NULL,
  status text NOT NULL,
  reserved_fee numeric(78, 0) NOT NULL DEFAULT 0,
  fee numeric(78, 0),
  worker text,
  operator text,
  attempts integer NOT NULL DEFAULT 0,
  prompt_token_ids jsonb,
  output_token_ids jsonb,
  output_text text,
  finish_reason text,
  error jsonb,
  ttft_ms double precision,
  total_ms double precision,
  tokens_per_second double precision,
  idempotency_scope text,
  idempotency_key text,
  webhook_url text,
  webhook_status text,
  webhook_attempts integer NOT NULL DEFAULT 0,
  webhook_next_at timestamptz,
  webhook_last_error text,
  instance_id text,
  lease_until timestamptz,
  created_at timestamptz NOT NULL DEFAULT now(),
  started_at timestamptz,
  first_token_at timestamptz,
  completed_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX jobs_payer_active ON jobs (payer) WHERE status IN ('queued', 'running');
CREATE INDEX jobs_queued ON jobs (created_at) WHERE status = 'queued';
CREATE INDEX jobs_running_lease ON jobs (lease_until) WHERE status = 'running';
CREATE INDEX jobs_webhook ON jobs (webhook_next_at) WHERE webhook_status = 'pending';
CREATE UNIQUE INDEX jobs_idempotency ON jobs (idempotency_scope, idempotency_key) WHERE idempotency_key IS NOT NULL;

CREATE TABLE batches (
  id serial PRIMARY KEY,
  root text NOT NULL UNIQUE,
  receipt_count integer NOT NULL,
  total numeric(78, 0) NOT NULL,
  status text NOT NULL,
  tx_hash text,
  settled_block numeric(78, 0),
  tree jsonb NOT NULL,
  attempts integer NOT NULL DEFAULT 0,
  last_error text,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  settled_at timestamptz
);
CREATE INDEX batches_pending ON batches (id) WHERE status = 'pending';

CREATE TABLE receipts (
  job_id text PRIMARY KEY REFERENCES jobs (id),
  seq bigserial NOT NULL UNIQUE,
  gateway text NOT NULL,
  payer text NOT NULL,
  worker text NOT NULL,
  model_id text NOT NULL,
  request_hash text NOT NULL,
  output_hash text NOT NULL,
  input_units numeric(20, 0) NOT NULL,
  output_units numeric(20, 0) NOT NULL,
  fee numeric(78, 0) NOT NULL,
  completed_at numeric(20, 0) NOT NULL,
  confidential boolean NOT NULL,
  signature text NOT NULL,
  signer text NOT NULL,
  leaf_hash text NOT NULL,
  batch_id integer REFERENCES batches (id),
  settled boolean NOT NULL DEFAULT false,
  excluded text,
  created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX receipts_unbatched ON receipts (seq) WHERE batch_id IS NULL AND excluded IS NULL;
CREATE INDEX receipts_unsettled_payer ON receipts (payer) WHERE settled = false;
CREATE INDEX receipts_batch ON receipts (batch_id);

CREATE TABLE idempotency_keys (
  scope text NOT NULL,
  key text NOT NULL,
  fingerprint text NOT NULL,
  status text NOT NULL,
  locked_until timestamptz NOT NULL,
  response_status integer,
  response_headers jsonb,
  response_body text,
  job_id text,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys (expires_at);

CREATE TABLE worker_stats (
  owner text PRIMARY KEY,
  operator text,
  ewma_ttft_ms double precision,
  ewma_tps double precision,
  reliability double precision NOT NULL DEFAULT 1,
  jobs_ok integer NOT NULL DEFAULT 0,
  jobs_failed integer NOT NULL DEFAULT 0,
  receipts_rejected integer NOT NULL DEFAULT 0,
  penalized_until timestamptz,
  last_seen_at timestamptz,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE audit_requests (
  signature_hash text PRIMARY KEY,
  expires_at timestamptz NOT NULL
);

CREATE TABLE leases (
  name text PRIMARY KEY,
  holder text NOT NULL,
  expires_at timestamptz NOT NULL
);
`,
  },
  {
    id: 2,
    name: 'on-chain batch ids',
    sql: `
ALTER TABLE batches ADD COLUMN chain_batch_id numeric(78, 0);
CREATE INDEX batches_root_lower ON batches (lower(root));
`,
  },
  {
    id: 3,
    name: 'reputation',
    sql: `
CREATE TABLE reputation_cursor (
  id text PRIMARY KEY,
  chain_id integer NOT NULL,
  grid text NOT NULL,
  from_block numeric(78, 0) NOT NULL,
  next_block numeric(78, 0) NOT NULL,
  last_block_hash text,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE worker_audits (
  owner text PRIMARY KEY,
  passes integer NOT NULL DEFAULT 0,
  fails integer NOT NULL DEFAULT 0,
  inconclusive integer NOT NULL DEFAULT 0,
  slashes integer NOT NULL DEFAULT 0,
  slashed numeric(78, 0) NOT NULL DEFAULT 0,
  last_fail_at timestamptz,
  last_slash_at timestamptz,
  last_event_block numeric(78, 0) NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);
`,
  },
  {
    id: 4,
    name: 'receipt numbers',
    // Receipts are numbered per gateway (the number is signed into the receipt) and batches settle
    // contiguous ranges of numbers. Receipts signed before this have no number: they can never settle
    // on a Grid that checks it, so they are held out; their old local numbers stay below every new one.
    sql: `
CREATE TABLE receipt_counters (
  gateway text PRIMARY KEY,
  next_seq numeric(20, 0) NOT NULL,
  updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE dispatches (
  gateway text NOT NULL,
  seq numeric(20, 0) NOT NULL,
  job_id text NOT NULL REFERENCES jobs (id),
  worker text NOT NULL,
  status text NOT NULL,
  expires_at timestamptz NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  updated_at timestamptz NOT NULL DEFAULT now(),
  PRIMARY KEY (gateway, seq)
);
CREATE INDEX dispatches_inflight ON dispatches (gateway, seq) WHERE status = 'inflight';

UPDATE batches SET status = 'failed', last_error = 'recorded before receipt numbers', updated_at = now()
  WHERE status = 'pending';
UPDATE receipts SET excluded = 'signed before receipt numbers: cannot settle on this Grid'
  WHERE settled = false AND excluded IS NULL;
UPDATE receipts SET batch_id = NULL WHERE settled = false;

ALTER TABLE receipts ALTER COLUMN seq DROP DEFAULT;
DROP SEQUENCE IF EXISTS receipts_seq_seq;
ALTER TABLE receipts DROP CONSTRAINT receipts_seq_key;
ALTER TABLE receipts ALTER COLUMN seq TYPE numeric(20, 0);
ALTER TABLE receipts ADD CONSTRAINT receipts_gateway_seq_key UNIQUE (gateway, seq);

ALTER TABLE batches ADD COLUMN gateway text;
ALTER TABLE batches ADD COLUMN first_seq numeric(20, 0);
ALTER TABLE batches ADD COLUMN seq_count numeric(20, 0);
`,
  },
  {
    id: 5,
    name: 'samplers',
    // The sampler a worker's receipt commits to (part of requestHash): audit evidence serves it.
    sql: `
ALTER TABLE jobs ADD COLUMN sampler text;
`,
  },
  {
    id: 6,
    name: 'instances',
    // Which gateway process holds what: a process that stops beating is dead at once for its locks and
    // jobs (a restart on the same host and port retires its predecessor immediately).
    sql: `
CREATE TABLE gateway_instances (
  id text PRIMARY KEY,
  name text NOT NULL,
  alive_until timestamptz NOT NULL,
  started_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX gateway_instances_name ON gateway_instances (name);
ALTER TABLE idempotency_keys ADD COLUMN owner text;
`,
  },
  {
    id: 7,
    name: 'payer totals',
    // What each payer's escrow carries at this gateway, kept by triggers on every change of a job's
    // reservation or a receipt's settlement (so no code path can forget it): the balance check reads one
    // row it locks anyway instead of summing every unsettled receipt and running job of the payer.
    // Payers are keyed by their lowercase address, whatever spelling a job or receipt carries.
    sql: `
ALTER TABLE payers ADD COLUMN reserved numeric(78, 0) NOT NULL DEFAULT 0;
ALTER TABLE payers ADD COLUMN unsettled numeric(78, 0) NOT NULL DEFAULT 0;

DELETE FROM payers;
INSERT INTO payers (address, reserved, unsettled)
  SELECT address, SUM(reserved), SUM(unsettled) FROM (
    SELECT lower(payer) AS address, reserved_fee AS reserved, 0 AS unsettled FROM jobs
      WHERE status IN ('queued', 'running')
    UNION ALL
    SELECT lower(payer), 0, fee FROM receipts WHERE settled = false
  ) AS spend GROUP BY address;

CREATE FUNCTION aipg_payer_reserved() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  d numeric(78, 0) := 0;
BEGIN
  IF TG_OP <> 'DELETE' THEN
    IF NEW.status IN ('queued', 'running') THEN d := d + NEW.reserved_fee; END IF;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    IF OLD.status IN ('queued', 'running') THEN d := d - OLD.reserved_fee; END IF;
  END IF;
  IF d <> 0 THEN
    INSERT INTO payers (address, reserved)
      VALUES (lower(CASE WHEN TG_OP = 'DELETE' THEN OLD.payer ELSE NEW.payer END), d)
      ON CONFLICT (address) DO UPDATE SET reserved = payers.reserved + EXCLUDED.reserved;
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION aipg_payer_unsettled() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
  d numeric(78, 0) := 0;
BEGIN
  IF TG_OP <> 'DELETE' THEN
    IF NOT NEW.settled THEN d := d + NEW.fee; END IF;
  END IF;
  IF TG_OP <> 'INSERT' THEN
    IF NOT OLD.settled THEN d := d - OLD.fee; END IF;
  END IF;
  IF d <> 0 THEN
    INSERT INTO payers (address, unsettled)
      VALUES (lower(CASE WHEN TG_OP = 'DELETE' THEN OLD.payer ELSE NEW.payer END), d)
      ON CONFLICT (address) DO UPDATE SET unsettled = payers.unsettled + EXCLUDED.unsettled;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_payer_reserved AFTER INSERT OR DELETE OR UPDATE OF status, reserved_fee, payer ON jobs
  FOR EACH ROW EXECUTE FUNCTION aipg_payer_reserved();
CREATE TRIGGER receipts_payer_unsettled AFTER INSERT OR DELETE OR UPDATE OF settled, fee, payer ON receipts
  FOR EACH ROW EXECUTE FUNCTION aipg_payer_unsettled();

DROP INDEX jobs_payer_active;
DROP INDEX receipts_unsettled_payer;
`,
  },
  {
    id: 8,
    name: 'images',
    // Image jobs: their parameters and, once done, their images (as stored) on the job row; the image
    // bytes content-addressed (keccak256) until they expire, for `response_format: url` and retrieval;
    // each image's per-step latents (its committed trajectory) for the audit window.
    sql: `
ALTER TABLE jobs ADD COLUMN image jsonb;
CREATE TABLE images (
  hash text PRIMARY KEY,
  format text NOT NULL,
  bytes bytea NOT NULL,
  job_id text NOT NULL,
  created_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX images_expires ON images (expires_at);
CREATE TABLE trajectories (
  job_id text NOT NULL,
  image integer NOT NULL,
  latents bytea NOT NULL,
  expires_at timestamptz NOT NULL,
  PRIMARY KEY (job_id, image)
);
CREATE INDEX trajectories_expires ON trajectories (expires_at);
`,
  },
  {
    id: 9,
    name: 'attestations',
    // The confidential tier: every TEE evidence the gateway verified, by digest (confidential receipts
    // commit to one; validators fetch it to audit them). Ciphertext and hashes only: never a prompt.
    sql: `
CREATE TABLE attestations (
  digest text PRIMARY KEY,
  worker text NOT NULL,
  signer text NOT NULL,
  evidence jsonb NOT NULL,
  tcb_status text NOT NULL,
  simulated boolean NOT NULL,
  verified_at timestamptz NOT NULL DEFAULT now(),
  expires_at timestamptz NOT NULL
);
CREATE INDEX attestations_worker ON attestations (worker);
`,
  },
  {
    id: 10,
    name: 'payer totals per statement',
    // The payer totals of migration 7, kept per statement instead of per row: each statement that
    // changes jobs or receipts adds, per payer, the sum of what its rows changed (from the statement's
    // transition tables), in one upsert, payers in address order. A group commit's batch of N jobs of
    // one payer was N row-trigger calls and N new versions of the payer's row; it is now one. What the
    // totals hold is unchanged (the same rows count: jobs queued or running, receipts not settled).
    // Transition tables need one trigger per event, and an UPDATE trigger with them cannot name
    // columns: the function's sums are simply empty for an update that changed no amount.
    // `receipts_batch` indexes only batched receipts: a receipt is stored unbatched, and every lookup
    // by batch names one.
    sql: `
DROP TRIGGER jobs_payer_reserved ON jobs;
DROP TRIGGER receipts_payer_unsettled ON receipts;
DROP FUNCTION aipg_payer_reserved();
DROP FUNCTION aipg_payer_unsettled();

CREATE FUNCTION aipg_payer_reserved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO payers (address, reserved)
      SELECT lower(payer), sum(reserved_fee) FROM new_jobs WHERE status IN ('queued', 'running')
      GROUP BY 1 HAVING sum(reserved_fee) <> 0 ORDER BY 1
      ON CONFLICT (address) DO UPDATE SET reserved = payers.reserved + EXCLUDED.reserved;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO payers (address, reserved)
      SELECT lower(payer), -sum(reserved_fee) FROM old_jobs WHERE status IN ('queued', 'running')
      GROUP BY 1 HAVING sum(reserved_fee) <> 0 ORDER BY 1
      ON CONFLICT (address) DO UPDATE SET reserved = payers.reserved + EXCLUDED.reserved;
  ELSE
    INSERT INTO payers (address, reserved)
      SELECT address, sum(d) FROM (
        SELECT lower(payer) AS address, reserved_fee AS d FROM new_jobs WHERE status IN ('queued', 'running')
        UNION ALL
        SELECT lower(payer), -reserved_fee FROM old_jobs WHERE status IN ('queued', 'running')
      ) AS change GROUP BY address HAVING sum(d) <> 0 ORDER BY address
      ON CONFLICT (address) DO UPDATE SET reserved = payers.reserved + EXCLUDED.reserved;
  END IF;
  RETURN NULL;
END
$$;

CREATE FUNCTION aipg_payer_unsettled() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'INSERT' THEN
    INSERT INTO payers (address, unsettled)
      SELECT lower(payer), sum(fee) FROM new_receipts WHERE NOT settled
      GROUP BY 1 HAVING sum(fee) <> 0 ORDER BY 1
      ON CONFLICT (address) DO UPDATE SET unsettled = payers.unsettled + EXCLUDED.unsettled;
  ELSIF TG_OP = 'DELETE' THEN
    INSERT INTO payers (address, unsettled)
      SELECT lower(payer), -sum(fee) FROM old_receipts WHERE NOT settled
      GROUP BY 1 HAVING sum(fee) <> 0 ORDER BY 1
      ON CONFLICT (address) DO UPDATE SET unsettled = payers.unsettled + EXCLUDED.unsettled;
  ELSE
    INSERT INTO payers (address, unsettled)
      SELECT address, sum(d) FROM (
        SELECT lower(payer) AS address, fee AS d FROM new_receipts WHERE NOT settled
        UNION ALL
        SELECT lower(payer), -fee FROM old_receipts WHERE NOT settled
      ) AS change GROUP BY address HAVING sum(d) <> 0 ORDER BY address
      ON CONFLICT (address) DO UPDATE SET unsettled = payers.unsettled + EXCLUDED.unsettled;
  END IF;
  RETURN NULL;
END
$$;

CREATE TRIGGER jobs_payer_reserved_insert AFTER INSERT ON jobs
  REFERENCING NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION aipg_payer_reserved();
CREATE TRIGGER jobs_payer_reserved_update AFTER UPDATE ON jobs
  REFERENCING OLD TABLE AS old_jobs NEW TABLE AS new_jobs FOR EACH STATEMENT EXECUTE FUNCTION aipg_payer_reserved();
CREATE TRIGGER jobs_payer_reserved_delete AFTER DELETE ON jobs
  REFERENCING OLD TABLE AS old_jobs FOR EACH STATEMENT EXECUTE FUNCTION aipg_payer_reserved();
CREATE TRIGGER receipts_payer_unsettled_insert AFTER INSERT ON receipts
  REFERENCING NEW TABLE AS new_receipts FOR EACH STATEMENT EXECUTE FUNCTION aipg_payer_unsettled();
CREATE TRIGGER receipts_payer_unsettled_update AFTER UPDATE ON receipts
  REFERENCING OLD TABLE AS old_receipts NEW TABLE AS new_receipts FOR EACH STATEMENT EXECUTE FUNCTION aipg_payer_unsettled();
CREATE TRIGGER receipts_payer_unsettled_delete AFTER DELETE ON receipts
  REFERENCING OLD TABLE AS old_receipts FOR EACH STATEMENT EXECUTE FUNCTION aipg_payer_unsettled();

DROP INDEX receipts_batch;
CREATE INDEX receipts_batch ON receipts (batch_id) WHERE batch_id IS NOT NULL;
`,
  },
  {
    id: 11,
    name: 'batches without their tree',
    // A batch kept OpenZeppelin's dump of its Merkle tree: every leaf's values and every node, about
    // 0.5 KB per receipt, compressed on each insert (the dearest statement of a settlement pass) and
    // never read: the receipts of the batch's range, in number order, rebuild the tree exactly, which
    // is what resuming a batch and the audit's proofs do, checking the recorded root. The column stays,
    // emptied, so that a replica of the previous version sharing the server keeps working until it is
    // upgraded (it still writes and reads it).
    sql: `
ALTER TABLE batches ALTER COLUMN tree DROP NOT NULL;
UPDATE batches SET tree = NULL;
`,
  },
];

/** Applies pending migrations under a transaction-scoped advisory lock (replicas may start together). */
export async function migrate(db: Sql): Promise<number[]> {
  return db.transaction(async (tx) => {
    await tx.query('SELECT pg_advisory_xact_lock(727274001)');
    await tx.query(
      'CREATE TABLE IF NOT EXISTS gateway_migrations (id integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())',
    );
    const done = new Set(
      (await tx.query<{ id: number }>('SELECT id FROM gateway_migrations')).map((r) => Number(r.id)),
    );
    const applied: number[] = [];
    for (const m of migrations) {
      if (done.has(m.id)) continue;
      for (const statement of splitStatements(m.sql)) await tx.query(statement);
      await tx.query('INSERT INTO gateway_migrations (id, name) VALUES ($1, $2)', [m.id, m.name]);
      applied.push(m.id);
    }
    return applied;
  });
}

/**
 * Splits a migration on `;`, except inside a `$$`-quoted function body (migrations hold no other quoted
 * semicolons).
 */
export function splitStatements(sql: string): string[] {
  const out: string[] = [];
  for (const [i, part] of sql.split('$$').entries()) {
    if (i % 2 === 1) {
      out[out.length - 1] += `$$${part}$$`;
      continue;
    }
    const pieces = part.split(';');
    if (i > 0) out[out.length - 1] += pieces.shift() ?? '';
    out.push(...pieces);
  }
  return out.map((s) => s.trim()).filter((s) => s.length > 0);
}
