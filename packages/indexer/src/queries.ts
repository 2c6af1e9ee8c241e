import { gatewayFaultReason, gridAbi } from '@aipg/chain';
import { AUDIT_VERDICTS, type AuditVote, auditVoteToUint, computeImageFee } from '@aipg/core';
import { formatUnits, type Hex } from 'viem';
import type { EventKind } from './events.ts';
import type { IndexerStatus } from './indexer.ts';
import type { Sql } from './sql.ts';
import { type Amount, amount, checksum, iso, type NetworkHub, type NetworkHubWorker } from './types.ts';

/**
 * Every read behind `/v1/network/*`: SQL over the indexed chain tables and the gateway's own job
 * records, plus the hub's in-memory list of connected workers. Nothing here touches the chain.
 */

/** True once the Grid ABI carries audit events (the AuditFacet issue); until then audits are empty. */
export const AUDITS_ENABLED = gridAbi.some(
  (item) => item.type === 'event' && /Attest|Audit/.test((item as { name: string }).name),
);

/** Kinds the activity feed shows unless asked otherwise (per-payer/per-worker settlement lines and admin events are left out). */
export const DEFAULT_ACTIVITY_KINDS: readonly (EventKind | 'job')[] = [
  'job',
  'batch',
  'bond',
  'unbond',
  'slash',
  'audit',
  'attestation',
  'deposit',
  'earnings',
  'model',
];

type Row = Record<string, unknown>;
const num = (v: unknown): number | null => (v === null || v === undefined ? null : Number(v));
const round = (v: number | null, digits = 1): number | null =>
  v === null || !Number.isFinite(v) ? null : Math.round(v * 10 ** digits) / 10 ** digits;
const snake = (name: string) => name.replace(/([a-z0-9])([A-Z])/g, '$1_$2').toLowerCase();

export type QueryDeps = {
  db: Sql;
  hub?: NetworkHub | undefined;
  status(): IndexerStatus;
  /** Bumped whenever indexed data or the live feed moved: cached reads older than that are stale. */
  generation(): number;
};

export type ActivityItem = {
  /** Stable id: `ev:<block>:<logIndex>` for chain events, `job:<jobId>` for jobs. */
  id: string;
  /** `job_completed`, `job_failed`, or the chain event's name in snake case (`batch_settled`, `bond_slashed`…). */
  type: string;
  kind: EventKind | 'job';
  time: string;
  block: number | null;
  tx: string | null;
  role: 'worker' | 'validator' | null;
  account: string | null;
  related: string | null;
  model: { id: string; name: string | null } | null;
  batch_id: string | null;
  amount: Amount | null;
  details: Record<string, unknown>;
};

// ── models ──────────────────────────────────────────────────────────────────────────────────

async function params(db: Sql): Promise<Record<string, string>> {
  const rows = await db.query<{ key: string; value: string }>('SELECT key, value FROM network_params');
  return Object.fromEntries(rows.map((r) => [r.key, r.value]));
}

function online(hub: NetworkHub | undefined): readonly NetworkHubWorker[] {
  return hub?.workers() ?? [];
}

function withPremium(wei: bigint, bps: number): bigint {
  return wei + (wei * BigInt(bps)) / 10_000n;
}

/**
 * Image jobs are told apart from text jobs by `jobs.kind`: their receipts' units are prompt bytes and
 * pixel-steps, not tokens, and their `ttft_ms` is their total time, so every token and first-token
 * statistic counts text jobs only. Only these parameters of an image job are ever read here (never its
 * prompt, negative prompt or images: not even the images' hashes, which address them at
 * `/v1/images/files/…`).
 */
const TEXT = `j.kind <> 'image'`;
const IMAGE = `j.kind = 'image'`;
const IMG_N = `(j.image->'params'->>'n')::float8`;
const IMG_STEPS = `(j.image->'params'->>'steps')::float8`;

/** The example the rate card prices an image model at: one 1024×1024 image at 20 steps. */
export const IMAGE_EXAMPLE = { width: 1024, height: 1024, steps: 20, n: 1 } as const;

/** What the workers online for an image model accept, together (null when none is online). */
function imageOffer(sessions: readonly NetworkHubWorker[], id: string) {
  const offers = sessions.flatMap((s) =>
    [...s.models].flatMap(([mid, m]) => (mid.toLowerCase() === id && m.image ? [m.image] : [])),
  );
  if (offers.length === 0) return null;
  return {
    sizes: [...new Set(offers.flatMap((o) => o.sizes.map(([w, h]) => `${w}x${h}`)))],
    min_steps: Math.min(...offers.map((o) => o.minSteps)),
    max_steps: Math.max(...offers.map((o) => o.maxSteps)),
    max_n: Math.max(...offers.map((o) => o.maxN)),
    schedulers: [...new Set(offers.flatMap((o) => o.schedulers))],
  };
}

export async function modelsView(deps: QueryDeps, windowS = 300, latencyWindowS = 3_600) {
  const { db } = deps;
  const [models, p, recent, latency, queue, totals] = await Promise.all([
    db.query<Row>(
      `SELECT id, name, kind, weights_hash, tokenizer_hash, parameter_count::text AS parameter_count, min_vram_mb,
         input_per_m::text AS input_per_m, output_per_m::text AS output_per_m, per_mp_step::text AS per_mp_step, active,
         registered_block::text AS registered_block, extract(epoch FROM registered_at)::float8 AS registered_at
       FROM network_models ORDER BY active DESC, registered_block, name`,
    ),
    params(db),
    db.query<Row>(
      `SELECT j.model_id, count(*) FILTER (WHERE j.status = 'succeeded')::int AS ok,
         count(*) FILTER (WHERE j.status = 'failed')::int AS failed,
         COALESCE(sum(r.output_units) FILTER (WHERE ${TEXT}), 0)::text AS output_tokens,
         COALESCE(sum(r.input_units) FILTER (WHERE ${TEXT}), 0)::text AS input_tokens,
         COALESCE(sum(${IMG_N}) FILTER (WHERE ${IMAGE} AND j.status = 'succeeded'), 0)::int AS images,
         COALESCE(sum(r.output_units) FILTER (WHERE ${IMAGE}), 0)::text AS pixel_steps
       FROM jobs j LEFT JOIN receipts r ON r.job_id = j.id
       WHERE j.completed_at >= now() - make_interval(secs => $1) GROUP BY j.model_id`,
      [windowS],
    ),
    db.query<Row>(
      // Seconds per step of an image job: its total time over the steps it ran (steps × n).
      `SELECT j.model_id, percentile_cont(0.5) WITHIN GROUP (ORDER BY j.ttft_ms) FILTER (WHERE ${TEXT}) AS ttft,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY j.tokens_per_second) FILTER (WHERE ${TEXT}) AS tps,
         count(*) FILTER (WHERE ${TEXT})::int AS n,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY j.total_ms / (${IMG_STEPS} * ${IMG_N}))
           FILTER (WHERE ${IMAGE} AND j.total_ms IS NOT NULL) AS ms_per_step,
         count(*) FILTER (WHERE ${IMAGE} AND j.total_ms IS NOT NULL)::int AS image_jobs
       FROM jobs j WHERE j.status = 'succeeded' AND j.completed_at >= now() - make_interval(secs => $1)
       GROUP BY j.model_id`,
      [latencyWindowS],
    ),
    db.query<Row>(
      `SELECT model_id, count(*) FILTER (WHERE status = 'queued')::int AS queued,
         count(*) FILTER (WHERE status = 'running')::int AS running
       FROM jobs WHERE status IN ('queued', 'running') GROUP BY model_id`,
    ),
    db.query<Row>(
      `SELECT model_id, count(*)::int AS jobs, COALESCE(sum(output_units), 0)::text AS output_tokens,
         COALESCE(sum(input_units), 0)::text AS input_tokens, COALESCE(sum(fee), 0)::text AS fees
       FROM receipts GROUP BY model_id`,
    ),
  ]);
  const byModel = (rows: Row[]) => new Map(rows.map((r) => [String(r.model_id).toLowerCase(), r]));
  const recentBy = byModel(recent);
  const latencyBy = byModel(latency);
  const queueBy = byModel(queue);
  const totalsBy = byModel(totals);
  const premiumBps = Number(p.confidentialPremiumBps ?? 0);
  const sessions = online(deps.hub);
  const data = models.map((m) => {
    const id = String(m.id);
    const r = recentBy.get(id);
    const l = latencyBy.get(id);
    const q = queueBy.get(id);
    const t = totalsBy.get(id);
    let workers = 0;
    let capacity = 0;
    let inFlight = 0;
    for (const s of sessions) {
      for (const [mid, sm] of s.models) {
        if (mid.toLowerCase() !== id) continue;
        workers += 1;
        capacity += sm.maxConcurrency;
        inFlight += sm.inFlight;
      }
    }
    const input = BigInt(String(m.input_per_m));
    const output = BigInt(String(m.output_per_m));
    const outputTokens = Number(r?.output_tokens ?? 0);
    const ok = Number(r?.ok ?? 0);
    const isImage = m.kind === 'image';
    const perMpStep = BigInt(String(m.per_mp_step ?? '0'));
    const images = Number(r?.images ?? 0);
    const msPerStep = num(l?.ms_per_step);
    return {
      id,
      name: String(m.name),
      kind: m.kind as 'text' | 'image',
      weights_hash: String(m.weights_hash),
      /** sha256 of the tokenizer file gateways render its text with (zero for an image model without one). */
      tokenizer_hash: (m.tokenizer_hash as string | null) ?? null,
      parameter_count: (m.parameter_count as string | null) ?? null,
      min_vram_mb: num(m.min_vram_mb),
      active: Boolean(m.active),
      registered_block: Number(m.registered_block),
      registered_at: iso(num(m.registered_at)),
      rates: {
        input_per_m: amount(input),
        output_per_m: amount(output),
        per_megapixel_step: amount(String(m.per_mp_step)),
        confidential_input_per_m: amount(withPremium(input, premiumBps)),
        confidential_output_per_m: amount(withPremium(output, premiumBps)),
      },
      workers_online: workers,
      capacity,
      in_flight: inFlight,
      queue: { queued: Number(q?.queued ?? 0), running: Number(q?.running ?? 0) },
      recent: {
        window_s: windowS,
        jobs: ok,
        failed: Number(r?.failed ?? 0),
        jobs_per_minute: round((ok * 60) / windowS, 2),
        tokens_per_second: round(outputTokens / windowS, 2),
        input_tokens: Number(r?.input_tokens ?? 0),
        output_tokens: outputTokens,
      },
      latency: {
        window_s: latencyWindowS,
        jobs: Number(l?.n ?? 0),
        median_ttft_ms: round(num(l?.ttft), 1),
        median_tokens_per_second: round(num(l?.tps), 1),
      },
      totals: {
        jobs: Number(t?.jobs ?? 0),
        // An image model's receipts count prompt bytes and pixel-steps, not tokens (`image.totals`).
        input_tokens: isImage ? '0' : String(t?.input_tokens ?? '0'),
        output_tokens: isImage ? '0' : String(t?.output_tokens ?? '0'),
        fees: amount(String(t?.fees ?? '0')),
      },
      /** Image models only (null for text): the image rate card and statistics. */
      image: isImage
        ? {
            /** One 1024×1024 image at 20 steps at this rate, whatever sizes the workers offer. */
            example: {
              ...IMAGE_EXAMPLE,
              size: `${IMAGE_EXAMPLE.width}x${IMAGE_EXAMPLE.height}`,
              price: amount(
                computeImageFee({ params: IMAGE_EXAMPLE, rates: { perMegapixelStep: perMpStep } }),
              ),
            },
            /** What the workers online accept, together; null when none is online. */
            offered: imageOffer(sessions, id),
            recent: {
              window_s: windowS,
              jobs: ok,
              images,
              images_per_minute: round((images * 60) / windowS, 2),
              megapixel_steps: round(Number(r?.pixel_steps ?? 0) / 1e6, 3),
            },
            latency: {
              window_s: latencyWindowS,
              jobs: Number(l?.image_jobs ?? 0),
              /** Median over succeeded image jobs of total time / (steps × n). */
              median_seconds_per_step: msPerStep === null ? null : round(msPerStep / 1000, 4),
            },
            totals: {
              megapixel_steps: round(Number(t?.output_tokens ?? 0) / 1e6, 3),
            },
          }
        : null,
    };
  });
  return {
    object: 'list' as const,
    confidential_premium_bps: premiumBps,
    indexed_block: deps.status().indexedBlock,
    data,
  };
}

// ── summary ─────────────────────────────────────────────────────────────────────────────────

export async function summaryView(deps: QueryDeps) {
  const { db } = deps;
  const [p, bonds, jobs, day, batches, lastBatch, slashes, models] = await Promise.all([
    params(db),
    db.query<Row>(
      `SELECT role, count(*)::int AS n, COALESCE(sum(amount), 0)::text AS active, COALESCE(sum(unbonding), 0)::text AS unbonding,
         array_agg(amount::text) AS amounts
       FROM network_bonds WHERE amount > 0 OR unbonding > 0 GROUP BY role`,
    ),
    db.query<Row>(
      `SELECT count(*) FILTER (WHERE j.status = 'succeeded')::int AS ok,
         COALESCE(sum(r.output_units) FILTER (WHERE ${TEXT}), 0)::text AS out,
         COALESCE(sum(${IMG_N}) FILTER (WHERE ${IMAGE} AND j.status = 'succeeded'), 0)::int AS images
       FROM jobs j LEFT JOIN receipts r ON r.job_id = j.id WHERE j.completed_at >= now() - interval '5 minutes'`,
    ),
    db.query<Row>(
      `SELECT count(*) FILTER (WHERE j.status = 'succeeded')::int AS ok, count(*) FILTER (WHERE j.status = 'failed')::int AS failed,
         COALESCE(sum(r.output_units) FILTER (WHERE ${TEXT}), 0)::text AS out, COALESCE(sum(r.fee), 0)::text AS fees,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY j.ttft_ms) FILTER (WHERE j.status = 'succeeded' AND ${TEXT}) AS ttft,
         COALESCE(sum(${IMG_N}) FILTER (WHERE ${IMAGE} AND j.status = 'succeeded'), 0)::int AS images
       FROM jobs j LEFT JOIN receipts r ON r.job_id = j.id WHERE j.completed_at >= now() - interval '24 hours'`,
    ),
    db.query<Row>(
      `SELECT count(*)::int AS n, COALESCE(sum(amount), 0)::text AS total,
         COALESCE(sum((args->>'receiptCount')::numeric), 0)::text AS receipts
       FROM network_events WHERE name = 'BatchSettled'`,
    ),
    db.query<Row>(
      `SELECT batch_id::text AS batch_id, amount::text AS total, args->>'receiptCount' AS receipts, tx_hash,
         extract(epoch FROM block_time)::float8 AS t, block_number::text AS block
       FROM network_events WHERE name = 'BatchSettled' ORDER BY block_number DESC, log_index DESC LIMIT 1`,
    ),
    db.query<Row>(
      // every slash is one BondSlashed (a FalseAttestationSlashed repeats the validator's)
      `SELECT count(*)::int AS n, COALESCE(sum(amount), 0)::text AS total FROM network_events WHERE name = 'BondSlashed'`,
    ),
    db.query<Row>(
      `SELECT count(*) FILTER (WHERE active)::int AS active, count(*)::int AS n,
         count(*) FILTER (WHERE active AND kind = 'image')::int AS active_image FROM network_models`,
    ),
  ]);
  const role = (r: 'worker' | 'validator') => {
    const b = bonds.find((x) => x.role === r);
    const minimum = BigInt(p[`${r}MinimumBond`] ?? '0');
    const amounts = ((b?.amounts as string[] | undefined) ?? []).map((a) => BigInt(a));
    return {
      bonded: amounts.filter((a) => a > 0n && a >= minimum).length,
      stake: amount(String(b?.active ?? '0')),
      unbonding: amount(String(b?.unbonding ?? '0')),
      minimum: amount(minimum),
    };
  };
  const sessions = online(deps.hub);
  const lb = lastBatch[0];
  return {
    object: 'network.summary' as const,
    workers: { online: sessions.length, ...role('worker') },
    validators: role('validator'),
    models: {
      active: Number(models[0]?.active ?? 0),
      registered: Number(models[0]?.n ?? 0),
      /** Active image models (the rest of `active` are text models). */
      active_image: Number(models[0]?.active_image ?? 0),
    },
    throughput: {
      window_s: 300,
      jobs_per_minute: round((Number(jobs[0]?.ok ?? 0) * 60) / 300, 2),
      /** Output tokens of text jobs. */
      tokens_per_second: round(Number(jobs[0]?.out ?? 0) / 300, 2),
      images_per_minute: round((Number(jobs[0]?.images ?? 0) * 60) / 300, 2),
    },
    last_24h: {
      jobs: Number(day[0]?.ok ?? 0),
      failed: Number(day[0]?.failed ?? 0),
      output_tokens: String(day[0]?.out ?? '0'),
      images: Number(day[0]?.images ?? 0),
      fees: amount(String(day[0]?.fees ?? '0')),
      median_ttft_ms: round(num(day[0]?.ttft), 1),
    },
    settlement: {
      batches: Number(batches[0]?.n ?? 0),
      receipts: String(batches[0]?.receipts ?? '0'),
      total: amount(String(batches[0]?.total ?? '0')),
      last_batch: lb
        ? {
            batch_id: String(lb.batch_id),
            receipts: Number(lb.receipts),
            total: amount(String(lb.total)),
            tx: String(lb.tx_hash),
            block: Number(lb.block),
            time: iso(num(lb.t)),
          }
        : null,
    },
    slashes: { count: Number(slashes[0]?.n ?? 0), total: amount(String(slashes[0]?.total ?? '0')) },
    revenue_shares_bps: {
      worker: num(p.workerBps),
      validator: num(p.validatorBps),
      protocol: num(p.protocolBps),
    },
    confidential_premium_bps: Number(p.confidentialPremiumBps ?? 0),
    audits: { enabled: AUDITS_ENABLED },
    indexer: indexerView(deps.status()),
  };
}

export function indexerView(s: IndexerStatus) {
  return {
    from_block: s.fromBlock,
    indexed_block: s.indexedBlock,
    head_block: s.headBlock,
    lag_blocks:
      s.headBlock !== null && s.indexedBlock !== null ? Math.max(0, s.headBlock - s.indexedBlock) : null,
    head_time: iso(s.headTimestamp),
    reorgs: s.reorgs,
    last_reorg_block: s.lastReorgBlock,
    leader: s.leader,
    last_error: s.lastError,
    last_sync_at: s.lastSyncAt ? new Date(s.lastSyncAt).toISOString() : null,
  };
}

// ── workers and validators ──────────────────────────────────────────────────────────────────

/** The chain's clock for countdowns: the head block's time, never behind the wall clock. */
export function chainNow(status: IndexerStatus): number {
  return Math.max(Math.floor(Date.now() / 1000), status.headTimestamp ?? 0);
}

function bondView(r: Row, minimum: bigint, now: number) {
  const stake = BigInt(String(r.amount));
  const unbonding = BigInt(String(r.unbonding));
  const readyAt = Number(r.ready ?? 0);
  return {
    active: stake > 0n && stake >= minimum,
    stake: amount(stake),
    unbonding: amount(unbonding),
    unbond_ready_at: unbonding > 0n ? iso(readyAt) : null,
    unbond_seconds_left: unbonding > 0n ? Math.max(0, readyAt - now) : null,
    withdrawable: unbonding > 0n && readyAt <= now,
    minimum: amount(minimum),
    operator: checksum(r.operator as string | null),
    slashes: { count: Number(r.slash_count ?? 0), amount: amount(String(r.slashed ?? '0')) },
    first_bonded_at: iso(num(r.since)),
  };
}

const BOND_COLUMNS = `b.owner, b.operator, b.amount::text AS amount, b.unbonding::text AS unbonding,
  b.unbond_ready_at::text AS ready, b.slashed::text AS slashed, b.slash_count,
  extract(epoch FROM b.first_bonded_at)::float8 AS since,
  a.gross::text AS gross, a.earned::text AS earned, a.withdrawn::text AS withdrawn`;

function earningsView(r: Row | undefined) {
  const earned = BigInt(String(r?.earned ?? '0'));
  const withdrawn = BigInt(String(r?.withdrawn ?? '0'));
  return {
    gross: amount(String(r?.gross ?? '0')),
    earned: amount(earned),
    withdrawn: amount(withdrawn),
    available: amount(earned - withdrawn),
  };
}

function sessionView(s: NetworkHubWorker) {
  return {
    session_id: s.id,
    operator: checksum(s.operator),
    models: [...s.models].map(([id, m]) => ({
      id: id.toLowerCase(),
      name: m.name,
      max_concurrency: m.maxConcurrency,
      in_flight: m.inFlight,
    })),
    hardware: {
      gpus: s.hardware.gpus.map((g) => ({ name: g.name, vram_mb: g.vramMb })),
      vram_mb: s.hardware.gpus.reduce((a, g) => a + g.vramMb, 0),
      cpu_cores: s.hardware.cpuCores,
      memory_mb: s.hardware.memoryMb,
    },
    version: s.version,
    connected_at: s.connectedAt.toISOString(),
  };
}

// ── audits (AuditFacet events in `network_events`) ─────────────────────────────────────────
// Vote: 1 PASS, 2 FAIL. Verdict: 1 PASS, 2 FAIL, 3 INCONCLUSIVE. A leaf is audited at most once.

/** A finalized verdict, or null (none yet, or a number the contract never emits). */
const verdictOf = (n: unknown): 'pass' | 'fail' | 'inconclusive' | null => {
  const v = AUDIT_VERDICTS[Number(n)];
  return v && v !== 'none' ? v : null;
};
/** A revealed vote, or null. */
const voteOf = (n: unknown): AuditVote | null =>
  Number(n) === auditVoteToUint.pass ? 'pass' : Number(n) === auditVoteToUint.fail ? 'fail' : null;

/** Per worker: finalized audits, PASS / FAIL / INCONCLUSIVE counts and the pass rate PASS / (PASS + FAIL). */
async function workerAudits(db: Sql, only?: string) {
  const rows = await db.query<Row>(
    `SELECT account AS w, count(*)::int AS total,
       count(*) FILTER (WHERE (args->>'verdict')::int = 1)::int AS passed,
       count(*) FILTER (WHERE (args->>'verdict')::int = 2)::int AS failed,
       count(*) FILTER (WHERE (args->>'verdict')::int = 3)::int AS inconclusive,
       COALESCE(sum((args->>'slashed')::numeric), 0)::text AS slashed
     FROM network_events WHERE name = 'AuditFinalized' ${only ? 'AND account = $1' : ''} GROUP BY 1`,
    only ? [only.toLowerCase()] : [],
  );
  return new Map(rows.map((r) => [String(r.w), r]));
}

function workerAuditView(r: Row | undefined) {
  const passed = Number(r?.passed ?? 0);
  const failed = Number(r?.failed ?? 0);
  return {
    total: Number(r?.total ?? 0),
    passed,
    failed,
    inconclusive: Number(r?.inconclusive ?? 0),
    pass_rate: passed + failed > 0 ? round(passed / (passed + failed), 4) : null,
    slashed: amount(String(r?.slashed ?? '0')),
  };
}

/**
 * Per validator (bond owner): attestations, how many of its votes on decided (PASS/FAIL) audits matched
 * the verdict, audit rewards (finder shares and pass rewards) and false-attestation slashes.
 */
async function validatorAudits(db: Sql, only?: string) {
  const filter = only ? 'AND a.account = $1' : '';
  const args = only ? [only.toLowerCase()] : [];
  const [commits, votes, rewards, slashes] = await Promise.all([
    db.query<Row>(
      `SELECT a.account AS v, count(*)::int AS n,
         count(*) FILTER (WHERE r.name IS NULL AND f.name IS NOT NULL)::int AS unrevealed
       FROM network_events a
       LEFT JOIN network_events r ON r.name = 'Attested' AND r.account = a.account AND r.args->>'leaf' = a.args->>'leaf'
       LEFT JOIN network_events f ON f.name = 'AuditFinalized' AND f.args->>'leaf' = a.args->>'leaf'
       WHERE a.name = 'VoteCommitted' ${filter} GROUP BY 1`,
      args,
    ),
    db.query<Row>(
      `SELECT a.account AS v, count(*)::int AS done,
         count(*) FILTER (WHERE (a.args->>'vote')::int = 1)::int AS pass_votes,
         count(*) FILTER (WHERE (a.args->>'vote')::int = 2)::int AS fail_votes,
         count(f.name) FILTER (WHERE (f.args->>'verdict')::int IN (1, 2))::int AS decided,
         count(f.name) FILTER (WHERE (f.args->>'verdict')::int = (a.args->>'vote')::int)::int AS agreed,
         count(*) FILTER (WHERE f.name IS NULL)::int AS pending
       FROM network_events a
       LEFT JOIN network_events f ON f.name = 'AuditFinalized' AND f.args->>'leaf' = a.args->>'leaf'
       WHERE a.name = 'Attested' ${filter} GROUP BY 1`,
      args,
    ),
    db.query<Row>(
      `SELECT a.account AS v, count(*)::int AS n, COALESCE(sum(a.amount), 0)::text AS total
       FROM network_events a WHERE a.name = 'ValidatorRewarded' ${filter} GROUP BY 1`,
      args,
    ),
    db.query<Row>(
      `SELECT a.account AS v, count(*)::int AS n, COALESCE(sum(a.amount), 0)::text AS total
       FROM network_events a WHERE a.name = 'FalseAttestationSlashed' ${filter} GROUP BY 1`,
      args,
    ),
  ]);
  const by = (rows: Row[]) => new Map(rows.map((r) => [String(r.v), r]));
  return { commits: by(commits), votes: by(votes), rewards: by(rewards), slashes: by(slashes) };
}

function validatorAuditView(a: Awaited<ReturnType<typeof validatorAudits>>, owner: string) {
  const v = a.votes.get(owner);
  const r = a.rewards.get(owner);
  const s = a.slashes.get(owner);
  const decided = Number(v?.decided ?? 0);
  const agreed = Number(v?.agreed ?? 0);
  const c = a.commits.get(owner);
  return {
    /** Hidden votes committed; revealed ones are `done`; `unrevealed`: finalized without a reveal (slashed). */
    committed: Number(c?.n ?? 0),
    unrevealed: Number(c?.unrevealed ?? 0),
    done: Number(v?.done ?? 0),
    agreed,
    agreement_rate: decided > 0 ? round(agreed / decided, 4) : null,
    decided,
    pending: Number(v?.pending ?? 0),
    pass_votes: Number(v?.pass_votes ?? 0),
    fail_votes: Number(v?.fail_votes ?? 0),
    rewards: { count: Number(r?.n ?? 0), amount: amount(String(r?.total ?? '0')) },
    false_attestations: { count: Number(s?.n ?? 0), amount: amount(String(s?.total ?? '0')) },
  };
}

export type AuditItem = {
  leaf: string;
  batch_id: string | null;
  /** How this address took part: the audited worker, or an attesting validator. */
  role: 'worker' | 'validator';
  worker: string | null;
  /** This validator's vote (null for the worker's row). */
  vote: 'pass' | 'fail' | null;
  /** null while the audit is open. */
  verdict: 'pass' | 'fail' | 'inconclusive' | null;
  /** For a validator: whether its vote matched a PASS/FAIL verdict. */
  agreed: boolean | null;
  slashed: Amount | null;
  reward: Amount | null;
  false_attestation_slash: Amount | null;
  time: string;
  block: number;
  tx: string;
};

/** The audits an address took part in (as the audited worker or an attesting validator), newest first. */
export async function recentAudits(db: Sql, address: string, limit = 20): Promise<AuditItem[]> {
  const rows = await db.query<Row>(
    `WITH mine AS (
       SELECT 'validator' AS role, args->>'leaf' AS leaf, batch_id::text AS batch_id, (args->>'vote')::int AS vote,
         block_number, log_index, block_time, tx_hash
       FROM network_events WHERE name = 'Attested' AND account = $1
       UNION ALL
       SELECT 'worker', args->>'leaf', batch_id::text, NULL, block_number, log_index, block_time, tx_hash
       FROM network_events WHERE name = 'AuditFinalized' AND account = $1
     )
     SELECT m.role, m.leaf, m.batch_id, m.vote, m.block_number::text AS block, m.tx_hash,
       extract(epoch FROM COALESCE(f.block_time, m.block_time))::float8 AS t,
       f.account AS worker, (f.args->>'verdict')::int AS verdict, f.args->>'slashed' AS slashed,
       (SELECT sum(r.amount)::text FROM network_events r
         WHERE r.name = 'ValidatorRewarded' AND r.account = $1 AND r.args->>'leaf' = m.leaf) AS reward,
       (SELECT sum(s.amount)::text FROM network_events s
         WHERE s.name = 'FalseAttestationSlashed' AND s.account = $1 AND s.args->>'leaf' = m.leaf) AS false_slash
     FROM mine m
     LEFT JOIN network_events f ON f.name = 'AuditFinalized' AND f.args->>'leaf' = m.leaf
     ORDER BY COALESCE(f.block_number, m.block_number) DESC, m.log_index DESC
     LIMIT $2`,
    [address.toLowerCase(), limit],
  );
  return rows.map((r) => {
    const verdict = r.verdict == null ? null : verdictOf(r.verdict);
    const vote = r.vote == null ? null : voteOf(r.vote);
    const decided = verdict === 'pass' || verdict === 'fail';
    return {
      leaf: String(r.leaf),
      batch_id: (r.batch_id as string | null) ?? null,
      role: r.role as AuditItem['role'],
      worker: checksum(r.worker as string | null),
      vote,
      verdict,
      agreed: r.role === 'validator' && decided ? vote === verdict : null,
      slashed: r.slashed == null ? null : amount(String(r.slashed)),
      reward: r.reward == null ? null : amount(String(r.reward)),
      false_attestation_slash: r.false_slash == null ? null : amount(String(r.false_slash)),
      time: iso(Number(r.t))!,
      block: Number(r.block),
      tx: String(r.tx_hash),
    };
  });
}

export type AuditSummaryItem = {
  leaf: string;
  batch_id: string | null;
  worker: string | null;
  /** Validators seated when the audit opened (fixed from stake checkpoints). */
  seats: string[];
  /** Seated validators whose hidden vote is on chain, and those who revealed it (with the vote). */
  committed: string[];
  revealed: { validator: string; vote: 'pass' | 'fail' | null }[];
  counts: { seats: number; committed: number; revealed: number };
  /** Commit deadline (reveals open after it). */
  commit_deadline: string | null;
  /** null while the audit is open. */
  verdict: 'pass' | 'fail' | 'inconclusive' | null;
  slashed: Amount | null;
  opened_at: string;
  block: number;
  tx: string;
};

/** Audits by the time they opened (their first commitment), newest first, with seats, commits and reveals. */
export async function auditsView(deps: QueryDeps, limit = 20) {
  const rows = await deps.db.query<Row>(
    `SELECT o.args->>'leaf' AS leaf, o.batch_id::text AS batch_id, o.account AS worker, o.args->'validators' AS seats,
       extract(epoch FROM o.block_time)::float8 AS t, o.block_number::text AS block, o.tx_hash,
       (SELECT (x.args->>'deadline')::float8 FROM network_events x
         WHERE x.name = 'AuditRandomnessFixed' AND x.batch_id = o.batch_id LIMIT 1) AS deadline,
       (SELECT COALESCE(json_agg(c.account ORDER BY c.block_number, c.log_index), '[]'::json) FROM network_events c
         WHERE c.name = 'VoteCommitted' AND c.args->>'leaf' = o.args->>'leaf') AS committed,
       (SELECT COALESCE(json_agg(json_build_object('validator', r.account, 'vote', (r.args->>'vote')::int)
           ORDER BY r.block_number, r.log_index), '[]'::json) FROM network_events r
         WHERE r.name = 'Attested' AND r.args->>'leaf' = o.args->>'leaf') AS revealed,
       (f.args->>'verdict')::int AS verdict, f.args->>'slashed' AS slashed
     FROM network_events o
     LEFT JOIN network_events f ON f.name = 'AuditFinalized' AND f.args->>'leaf' = o.args->>'leaf'
     WHERE o.name = 'AuditOpened'
     ORDER BY o.block_number DESC, o.log_index DESC LIMIT $1`,
    [limit],
  );
  const list = (v: unknown) => (typeof v === 'string' ? JSON.parse(v) : v) as unknown[];
  const data: AuditSummaryItem[] = rows.map((r) => {
    const seats = list(r.seats).map((a) => checksum(String(a)));
    const committed = list(r.committed).map((a) => checksum(String(a)));
    const revealed = (list(r.revealed) as { validator: string; vote: number }[]).map((x) => ({
      validator: checksum(x.validator),
      vote: voteOf(x.vote),
    }));
    return {
      leaf: String(r.leaf),
      batch_id: (r.batch_id as string | null) ?? null,
      worker: checksum(r.worker as string | null),
      seats,
      committed,
      revealed,
      counts: { seats: seats.length, committed: committed.length, revealed: revealed.length },
      commit_deadline: iso(num(r.deadline)),
      verdict: r.verdict == null ? null : verdictOf(r.verdict),
      slashed: r.slashed == null ? null : amount(String(r.slashed)),
      opened_at: iso(Number(r.t))!,
      block: Number(r.block),
      tx: String(r.tx_hash),
    };
  });
  return { object: 'list' as const, audits_enabled: AUDITS_ENABLED, data };
}

// ── gateways (BatchSettled, and GatewayFaultReported in `network_gateway_faults`) ─────────────

/** One validator's report that a gateway served audit evidence that does not hash to what the worker signed. */
export type GatewayFaultItem = {
  /** The reporting validator (bond owner). */
  validator: string;
  batch_id: string;
  /** The receipt's leaf. */
  leaf: string;
  /** The reason code (`RECEIPT_REQUEST_HASH`, `PROMPT_MISMATCH`…), or the raw bytes32 when it is no ASCII code. */
  reason: string;
  evidence_hash: string;
  time: string;
  block: number;
  tx: string;
};

export type GatewayItem = {
  address: string;
  /** What the gateway settled on chain. */
  batches: {
    count: number;
    /** Receipt numbers settled (ranges include jobs that failed without a receipt). */
    receipts: string;
    total: Amount;
    last_batch_id: string | null;
    last_at: string | null;
  };
  /** Validators' gateway fault reports against it (public records: no bond is slashed). */
  faults: {
    reports: number;
    /** Distinct receipts (leaves) reported, by distinct validators, over distinct batches. */
    receipts: number;
    validators: number;
    batches: number;
    /** Reports per reason code, most frequent first. */
    by_reason: { reason: string; count: number }[];
    last_at: string | null;
    /** The latest reports, newest first (at most `reports` of the query). */
    latest: GatewayFaultItem[];
  };
};

function faultItem(r: Row): GatewayFaultItem {
  return {
    validator: checksum(String(r.validator)),
    batch_id: String(r.batch_id),
    leaf: String(r.leaf),
    reason: String(r.reason),
    evidence_hash: String(r.evidence_hash),
    time: iso(Number(r.t))!,
    block: Number(r.block),
    tx: String(r.tx_hash),
  };
}

const faultColumns = (t: string) => `${t}.validator, ${t}.batch_id::text AS batch_id, ${t}.leaf, ${t}.reason,
  ${t}.evidence_hash, extract(epoch FROM ${t}.block_time)::float8 AS t, ${t}.block_number::text AS block, ${t}.tx_hash`;

/**
 * Every gateway that settled a batch or was reported: its settlements and the gateway faults validators
 * reported against it (counts by reason and the latest `reports` reports), faulted gateways first, then by
 * AIPG settled.
 */
export async function gatewaysView(deps: QueryDeps, reports = 5) {
  const { db } = deps;
  const [batches, faults, reasons, latest] = await Promise.all([
    db.query<Row>(
      `SELECT account AS g, count(*)::int AS n, COALESCE(sum((args->>'receiptCount')::numeric), 0)::text AS receipts,
         COALESCE(sum(amount), 0)::text AS total, extract(epoch FROM max(block_time))::float8 AS last,
         (array_agg(batch_id::text ORDER BY block_number DESC, log_index DESC))[1] AS last_batch
       FROM network_events WHERE name = 'BatchSettled' AND account IS NOT NULL GROUP BY 1`,
    ),
    db.query<Row>(
      `SELECT gateway AS g, count(*)::int AS reports, count(DISTINCT leaf)::int AS receipts,
         count(DISTINCT validator)::int AS validators, count(DISTINCT batch_id)::int AS batches,
         extract(epoch FROM max(block_time))::float8 AS last
       FROM network_gateway_faults GROUP BY 1`,
    ),
    db.query<Row>(
      'SELECT gateway AS g, reason, count(*)::int AS n FROM network_gateway_faults GROUP BY 1, 2 ORDER BY 3 DESC, 2',
    ),
    db.query<Row>(
      `SELECT x.g, ${faultColumns('x')} FROM (
         SELECT f.*, f.gateway AS g,
           row_number() OVER (PARTITION BY f.gateway ORDER BY f.block_number DESC, f.log_index DESC) AS rn
         FROM network_gateway_faults f) x
       WHERE x.rn <= $1 ORDER BY x.block_number DESC, x.log_index DESC`,
      [reports],
    ),
  ]);
  const batchBy = new Map(batches.map((r) => [String(r.g), r]));
  const faultBy = new Map(faults.map((r) => [String(r.g), r]));
  const reasonsBy = new Map<string, { reason: string; count: number }[]>();
  for (const r of reasons) {
    const list = reasonsBy.get(String(r.g)) ?? [];
    list.push({ reason: String(r.reason), count: Number(r.n) });
    reasonsBy.set(String(r.g), list);
  }
  const latestBy = new Map<string, GatewayFaultItem[]>();
  for (const r of latest) {
    const list = latestBy.get(String(r.g)) ?? [];
    list.push(faultItem(r));
    latestBy.set(String(r.g), list);
  }
  const data: GatewayItem[] = [...new Set([...batchBy.keys(), ...faultBy.keys()])].map((g) => {
    const b = batchBy.get(g);
    const f = faultBy.get(g);
    return {
      address: checksum(g),
      batches: {
        count: Number(b?.n ?? 0),
        receipts: String(b?.receipts ?? '0'),
        total: amount(String(b?.total ?? '0')),
        last_batch_id: (b?.last_batch as string | null | undefined) ?? null,
        last_at: iso(num(b?.last)),
      },
      faults: {
        reports: Number(f?.reports ?? 0),
        receipts: Number(f?.receipts ?? 0),
        validators: Number(f?.validators ?? 0),
        batches: Number(f?.batches ?? 0),
        by_reason: reasonsBy.get(g) ?? [],
        last_at: iso(num(f?.last)),
        latest: latestBy.get(g) ?? [],
      },
    };
  });
  const wei = (x: GatewayItem) => BigInt(x.batches.total.wei);
  data.sort(
    (a, b) =>
      b.faults.receipts - a.faults.receipts ||
      (wei(b) > wei(a) ? 1 : wei(b) < wei(a) ? -1 : 0) ||
      a.address.localeCompare(b.address),
  );
  return { object: 'list' as const, audits_enabled: AUDITS_ENABLED, data };
}

export async function workersView(deps: QueryDeps, only?: string) {
  const { db } = deps;
  const filter = only ? 'AND b.owner = $1' : '';
  const args = only ? [only.toLowerCase()] : [];
  const jobFilter = only ? 'AND lower(j.worker) = $1' : '';
  const [p, bonds, jobs, served, stats, auditsBy] = await Promise.all([
    params(db),
    db.query<Row>(
      `SELECT ${BOND_COLUMNS} FROM network_bonds b LEFT JOIN network_accounts a ON a.address = b.owner
       WHERE b.role = 'worker' ${filter}`,
      args,
    ),
    db.query<Row>(
      `SELECT lower(j.worker) AS w, count(*) FILTER (WHERE j.status = 'succeeded')::int AS ok,
         count(*) FILTER (WHERE j.status = 'failed')::int AS failed,
         COALESCE(sum(r.output_units) FILTER (WHERE ${TEXT}), 0)::text AS out,
         COALESCE(sum(${IMG_N}) FILTER (WHERE ${IMAGE} AND j.status = 'succeeded'), 0)::int AS images,
         COALESCE(sum(r.fee), 0)::text AS fees, extract(epoch FROM max(j.completed_at))::float8 AS last,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY j.ttft_ms) FILTER (WHERE j.status = 'succeeded' AND ${TEXT}) AS ttft,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY j.tokens_per_second) FILTER (WHERE j.status = 'succeeded' AND ${TEXT}) AS tps
       FROM jobs j LEFT JOIN receipts r ON r.job_id = j.id
       WHERE j.worker IS NOT NULL AND j.completed_at IS NOT NULL ${jobFilter} GROUP BY 1`,
      args,
    ),
    db.query<Row>(
      `SELECT lower(j.worker) AS w, j.model_id, max(j.model_name) AS name FROM jobs j
       WHERE j.status = 'succeeded' AND j.worker IS NOT NULL ${jobFilter} GROUP BY 1, 2`,
      args,
    ),
    db.query<Row>(
      `SELECT lower(owner) AS w, reliability, ewma_ttft_ms, ewma_tps FROM worker_stats ${only ? 'WHERE lower(owner) = $1' : ''}`,
      args,
    ),
    workerAudits(db, only),
  ]);
  const minimum = BigInt(p.workerMinimumBond ?? '0');
  const now = chainNow(deps.status());
  const jobsBy = new Map(jobs.map((r) => [String(r.w), r]));
  const statsBy = new Map(stats.map((r) => [String(r.w), r]));
  const servedBy = new Map<string, { id: string; name: string }[]>();
  for (const r of served) {
    const list = servedBy.get(String(r.w)) ?? [];
    list.push({ id: String(r.model_id).toLowerCase(), name: String(r.name) });
    servedBy.set(String(r.w), list);
  }
  const sessions = new Map<string, NetworkHubWorker[]>();
  for (const s of online(deps.hub)) {
    const k = s.owner.toLowerCase();
    if (only && k !== only.toLowerCase()) continue;
    sessions.set(k, [...(sessions.get(k) ?? []), s]);
  }
  const owners = new Set([...bonds.map((b) => String(b.owner)), ...sessions.keys()]);
  const bondBy = new Map(bonds.map((b) => [String(b.owner), b]));
  const data = [...owners].map((owner) => {
    const b = bondBy.get(owner) ?? { amount: '0', unbonding: '0' };
    const j = jobsBy.get(owner);
    const st = statsBy.get(owner);
    const live = (sessions.get(owner) ?? []).map(sessionView);
    const models = new Map<string, { id: string; name: string; online: boolean }>();
    for (const m of servedBy.get(owner) ?? []) models.set(m.id, { ...m, online: false });
    for (const s of live)
      for (const m of s.models) models.set(m.id, { id: m.id, name: m.name, online: true });
    const gpus = live.flatMap((s) => s.hardware.gpus);
    return {
      address: checksum(owner),
      online: live.length > 0,
      ...bondView(b, minimum, now),
      models: [...models.values()],
      hardware: live[0]
        ? {
            gpus,
            vram_mb: gpus.reduce((a, g) => a + g.vram_mb, 0),
            cpu_cores: live[0].hardware.cpu_cores,
            memory_mb: live[0].hardware.memory_mb,
          }
        : null,
      sessions: live,
      jobs: {
        served: Number(j?.ok ?? 0),
        failed: Number(j?.failed ?? 0),
        output_tokens: String(j?.out ?? '0'),
        images: Number(j?.images ?? 0),
        fees: amount(String(j?.fees ?? '0')),
        last_at: iso(num(j?.last)),
        median_ttft_ms: round(num(j?.ttft), 1),
        median_tokens_per_second: round(num(j?.tps), 1),
      },
      reliability: st ? round(Number(st.reliability), 3) : null,
      earnings: earningsView(b),
      audits: workerAuditView(auditsBy.get(owner)),
    };
  });
  data.sort(
    (a, b) =>
      Number(b.online) - Number(a.online) ||
      (BigInt(b.stake.wei) > BigInt(a.stake.wei) ? 1 : BigInt(b.stake.wei) < BigInt(a.stake.wei) ? -1 : 0) ||
      a.address.localeCompare(b.address),
  );
  return { object: 'list' as const, audits_enabled: AUDITS_ENABLED, data };
}

export async function validatorsView(deps: QueryDeps, only?: string) {
  const { db } = deps;
  const [p, bonds, auditsBy] = await Promise.all([
    params(db),
    db.query<Row>(
      `SELECT ${BOND_COLUMNS} FROM network_bonds b LEFT JOIN network_accounts a ON a.address = b.owner
       WHERE b.role = 'validator' ${only ? 'AND b.owner = $1' : ''}`,
      only ? [only.toLowerCase()] : [],
    ),
    validatorAudits(db, only),
  ]);
  const minimum = BigInt(p.validatorMinimumBond ?? '0');
  const now = chainNow(deps.status());
  const data = bonds.map((b) => ({
    address: checksum(String(b.owner)),
    ...bondView(b, minimum, now),
    audits: validatorAuditView(auditsBy, String(b.owner)),
    rewards: earningsView(b),
  }));
  data.sort((a, b) =>
    BigInt(b.stake.wei) > BigInt(a.stake.wei) ? 1 : BigInt(b.stake.wei) < BigInt(a.stake.wei) ? -1 : 0,
  );
  return { object: 'list' as const, audits_enabled: AUDITS_ENABLED, data };
}

// ── activity ────────────────────────────────────────────────────────────────────────────────

const EVENT_COLUMNS = `e.block_number::text AS block, e.log_index, e.tx_hash, extract(epoch FROM e.block_time)::float8 AS t,
  e.name, e.kind, e.role, e.account, e.related, e.model_id, e.batch_id::text AS batch_id, e.amount::text AS amount, e.args,
  m.name AS model_name`;

export function eventItem(r: Row): ActivityItem {
  const name = String(r.name);
  const args = { ...(r.args as Record<string, unknown>) };
  delete args.registry;
  return {
    id: `ev:${r.block}:${r.log_index}`,
    type: snake(name),
    kind: r.kind as EventKind,
    time: iso(Number(r.t))!,
    block: Number(r.block),
    tx: String(r.tx_hash),
    role: (r.role as ActivityItem['role']) ?? null,
    account: checksum(r.account as string | null),
    related: checksum(r.related as string | null),
    model: r.model_id ? { id: String(r.model_id), name: (r.model_name as string | null) ?? null } : null,
    batch_id: (r.batch_id as string | null) ?? null,
    amount: r.amount == null ? null : amount(String(r.amount)),
    details: {
      event: name,
      ...args,
      // the reason code a validator reported (`RECEIPT_REQUEST_HASH`…), decoded from its bytes32
      ...(name === 'GatewayFaultReported'
        ? { reason_code: gatewayFaultReason(String(args.reason) as Hex) }
        : {}),
    },
  };
}

// An image job's size, steps, count, scheduler and format only: never its prompt (`request`,
// `prompt_token_ids`), negative prompt, seed or images (`image.outputs`).
const JOB_COLUMNS = `j.id, j.kind, j.status, j.model_id, j.model_name, j.worker, j.payer,
  extract(epoch FROM j.completed_at)::float8 AS t, j.ttft_ms, j.tokens_per_second, j.total_ms, j.error->>'code' AS error_code,
  r.output_units::text AS output_units, r.input_units::text AS input_units, r.fee::text AS fee,
  (j.image->'params'->>'width')::int AS image_width, (j.image->'params'->>'height')::int AS image_height,
  (j.image->'params'->>'steps')::int AS image_steps, (j.image->'params'->>'n')::int AS image_n,
  j.image->'params'->>'scheduler' AS image_scheduler, j.image->'params'->>'format' AS image_format`;

/**
 * What the feed shows of an image job: model (on the item), size, steps, count, scheduler, format,
 * megapixel-steps, time and seconds per step. Never the prompt, the negative prompt or the images.
 */
function imageJobDetails(r: Row, ok: boolean): Record<string, unknown> {
  const width = Number(r.image_width);
  const height = Number(r.image_height);
  const steps = Number(r.image_steps);
  const n = Number(r.image_n);
  const totalMs = num(r.total_ms);
  return {
    job_id: String(r.id),
    kind: 'image',
    size: `${width}x${height}`,
    width,
    height,
    steps,
    n,
    scheduler: (r.image_scheduler as string | null) ?? null,
    format: (r.image_format as string | null) ?? null,
    megapixel_steps: round((width * height * steps * n) / 1e6, 3),
    total_ms: round(totalMs, 1),
    seconds_per_step: ok && totalMs !== null ? round(totalMs / 1000 / (steps * n), 4) : null,
    ...(ok ? {} : { error: (r.error_code as string | null) ?? 'failed' }),
  };
}

/**
 * A job as an activity item. Who paid is private: `related` (the payer) is set only when `viewer` is
 * that payer (authenticated with its API key); everyone else sees the worker, model, size and fee only.
 */
export function jobItem(r: Row, viewer?: string): ActivityItem {
  const ok = r.status === 'succeeded';
  const payer = (r.payer as string | null) ?? null;
  return {
    id: `job:${r.id}`,
    type: ok ? 'job_completed' : 'job_failed',
    kind: 'job',
    time: new Date(Number(r.t) * 1000).toISOString(),
    block: null,
    tx: null,
    role: r.worker ? 'worker' : null,
    account: checksum(r.worker as string | null),
    related: viewer !== undefined && payer?.toLowerCase() === viewer ? checksum(payer) : null,
    model: { id: String(r.model_id), name: String(r.model_name) },
    batch_id: null,
    amount: r.fee == null ? null : amount(String(r.fee)),
    details:
      r.kind === 'image'
        ? imageJobDetails(r, ok)
        : {
            job_id: String(r.id),
            input_tokens: num(r.input_units),
            output_tokens: num(r.output_units),
            ttft_ms: round(num(r.ttft_ms), 1),
            tokens_per_second: round(num(r.tokens_per_second), 1),
            total_ms: round(num(r.total_ms), 1),
            ...(ok ? {} : { error: (r.error_code as string | null) ?? 'failed' }),
          },
  };
}

export type ActivityQuery = {
  limit: number;
  /** Only items strictly older than this (unix ms): the previous page's last `time`. */
  before?: number | undefined;
  kinds: readonly (EventKind | 'job')[];
  /** Only items about this address (as account or counterparty). */
  address?: string | undefined;
  /**
   * The payer the caller proved to be (its API key), lowercase. Jobs match `address` as their worker;
   * as their payer only when `viewer` is that address. Unset: the public view.
   */
  viewer?: string | undefined;
};

export async function activityView(deps: QueryDeps, q: ActivityQuery) {
  const { db } = deps;
  // No time bound without `before`: a devnet's clock may run ahead of the wall clock (evm_increaseTime).
  const before = q.before ?? null;
  const chainKinds = q.kinds.filter((k) => k !== 'job');
  const address = q.address?.toLowerCase();
  const viewer = q.viewer?.toLowerCase();
  // A payer's own jobs only for that payer; a worker's jobs are public (without their payers).
  const jobMatch =
    viewer !== undefined && viewer === address
      ? 'AND (lower(j.worker) = $3 OR lower(j.payer) = $3)'
      : 'AND lower(j.worker) = $3';
  const [events, jobs] = await Promise.all([
    chainKinds.length === 0
      ? []
      : db.query<Row>(
          `SELECT ${EVENT_COLUMNS} FROM network_events e LEFT JOIN network_models m ON m.id = e.model_id
           WHERE e.name IS NOT NULL AND e.kind = ANY($1::text[]) AND ($2::float8 IS NULL OR e.block_time < to_timestamp($2::float8 / 1000))
             ${address ? 'AND (e.account = $4 OR e.related = $4)' : ''}
           ORDER BY e.block_time DESC, e.block_number DESC, e.log_index DESC LIMIT $3`,
          address ? [chainKinds, before, q.limit, address] : [chainKinds, before, q.limit],
        ),
    !q.kinds.includes('job')
      ? []
      : db.query<Row>(
          `SELECT ${JOB_COLUMNS} FROM jobs j LEFT JOIN receipts r ON r.job_id = j.id
           WHERE j.completed_at IS NOT NULL AND ($1::float8 IS NULL OR j.completed_at < to_timestamp($1::float8 / 1000))
             AND j.status IN ('succeeded', 'failed') ${address ? jobMatch : ''}
           ORDER BY j.completed_at DESC LIMIT $2`,
          address ? [before, q.limit, address] : [before, q.limit],
        ),
  ]);
  const items = [...events.map(eventItem), ...jobs.map((r) => jobItem(r, viewer))]
    .sort((a, b) => (a.time < b.time ? 1 : a.time > b.time ? -1 : (b.block ?? 0) - (a.block ?? 0)))
    .slice(0, q.limit);
  const last = items.at(-1);
  return {
    object: 'list' as const,
    data: items,
    has_more: items.length === q.limit,
    next_before: items.length === q.limit && last ? Date.parse(last.time) : null,
  };
}

/** New activity since a position (the live feed's poll). */
export async function activitySince(
  db: Sql,
  pos: { block: number; logIndex: number; jobsSince: number },
  kinds: readonly string[],
) {
  const [events, jobs] = await Promise.all([
    db.query<Row>(
      `SELECT ${EVENT_COLUMNS} FROM network_events e LEFT JOIN network_models m ON m.id = e.model_id
       WHERE (e.block_number, e.log_index) > ($1::bigint, $2::int) AND e.name IS NOT NULL AND e.kind = ANY($3::text[])
       ORDER BY e.block_number, e.log_index LIMIT 500`,
      [pos.block, pos.logIndex, kinds],
    ),
    db.query<Row>(
      `SELECT ${JOB_COLUMNS} FROM jobs j LEFT JOIN receipts r ON r.job_id = j.id
       WHERE j.completed_at IS NOT NULL AND j.completed_at >= to_timestamp($1::float8 / 1000)
         AND j.status IN ('succeeded', 'failed')
       ORDER BY j.completed_at LIMIT 500`,
      [pos.jobsSince],
    ),
  ]);
  return { events, jobs };
}

export async function feedPosition(db: Sql) {
  const rows = await db.query<Row>(
    `SELECT block_number::text AS block, log_index FROM network_events ORDER BY block_number DESC, log_index DESC LIMIT 1`,
  );
  return { block: Number(rows[0]?.block ?? -1), logIndex: Number(rows[0]?.log_index ?? -1) };
}

// ── time series ─────────────────────────────────────────────────────────────────────────────

export const WINDOWS = { '15m': 30, '1h': 60, '6h': 300, '24h': 900, '7d': 7_200 } as const;
export type WindowName = keyof typeof WINDOWS;
const WINDOW_SECONDS: Record<WindowName, number> = {
  '15m': 900,
  '1h': 3_600,
  '6h': 21_600,
  '24h': 86_400,
  '7d': 604_800,
};

export async function timeseriesView(
  deps: QueryDeps,
  q: { window: WindowName; bucket?: number | undefined; model?: string | undefined },
) {
  const { db } = deps;
  const windowS = WINDOW_SECONDS[q.window];
  const bucket = q.bucket ?? WINDOWS[q.window];
  const nowS = Math.floor(Date.now() / 1000);
  const end = Math.ceil((nowS + 1) / bucket) * bucket;
  const start = end - Math.ceil(windowS / bucket) * bucket;
  const model = q.model?.toLowerCase() ?? null;
  const [rows, rates, premium] = await Promise.all([
    db.query<Row>(
      `SELECT (floor(extract(epoch FROM j.completed_at) / $2) * $2)::bigint AS t,
         count(*) FILTER (WHERE j.status = 'succeeded')::int AS ok, count(*) FILTER (WHERE j.status = 'failed')::int AS failed,
         COALESCE(sum(r.output_units) FILTER (WHERE ${TEXT}), 0)::text AS out,
         COALESCE(sum(r.input_units) FILTER (WHERE ${TEXT}), 0)::text AS inp,
         COALESCE(sum(${IMG_N}) FILTER (WHERE ${IMAGE} AND j.status = 'succeeded'), 0)::int AS images,
         COALESCE(sum(r.fee), 0)::text AS fees,
         percentile_cont(0.5) WITHIN GROUP (ORDER BY j.ttft_ms) FILTER (WHERE j.status = 'succeeded' AND ${TEXT}) AS ttft
       FROM jobs j LEFT JOIN receipts r ON r.job_id = j.id
       WHERE j.completed_at >= to_timestamp($1) AND j.status IN ('succeeded', 'failed')
         AND ($3::text IS NULL OR j.model_id = $3)
       GROUP BY 1 ORDER BY 1`,
      [start, bucket, model],
    ),
    db.query<Row>(
      `SELECT e.model_id, m.name, m.kind, e.name AS event, extract(epoch FROM e.block_time)::float8 AS t, e.block_number::text AS block,
         COALESCE(e.args->'rates', e.args->'registry'->'rates') AS rates
       FROM network_events e JOIN network_models m ON m.id = e.model_id
       WHERE e.name IN ('ModelRegistered', 'ModelRatesUpdated') AND ($1::text IS NULL OR e.model_id = $1)
       ORDER BY e.block_number, e.log_index`,
      [model],
    ),
    db.query<Row>(
      `SELECT extract(epoch FROM block_time)::float8 AS t, (args->>'bps')::int AS bps FROM network_events
       WHERE name = 'ConfidentialPremiumUpdated' ORDER BY block_number, log_index`,
    ),
  ]);
  const byT = new Map(rows.map((r) => [Number(r.t), r]));
  const points = [];
  for (let t = start; t < end; t += bucket) {
    const r = byT.get(t);
    const out = Number(r?.out ?? 0);
    points.push({
      t: new Date(t * 1000).toISOString(),
      jobs: Number(r?.ok ?? 0),
      failed: Number(r?.failed ?? 0),
      input_tokens: Number(r?.inp ?? 0),
      output_tokens: out,
      tokens_per_second: round(out / bucket, 3),
      jobs_per_minute: round((Number(r?.ok ?? 0) * 60) / bucket, 3),
      images: Number(r?.images ?? 0),
      images_per_minute: round((Number(r?.images ?? 0) * 60) / bucket, 3),
      median_ttft_ms: round(num(r?.ttft), 1),
      fees: amount(String(r?.fees ?? '0')),
    });
  }
  const prices = new Map<
    string,
    {
      model_id: string;
      name: string;
      kind: 'text' | 'image';
      points: {
        t: string;
        block: number;
        input_per_m: Amount;
        output_per_m: Amount;
        per_megapixel_step: Amount;
      }[];
    }
  >();
  for (const r of rates) {
    const id = String(r.model_id);
    const kind = r.kind === 'image' ? 'image' : 'text';
    const entry = prices.get(id) ?? { model_id: id, name: String(r.name), kind, points: [] };
    const rc = (r.rates ?? {}) as {
      inputPerMTokens?: string;
      outputPerMTokens?: string;
      perMegapixelStep?: string;
    };
    entry.points.push({
      t: iso(Number(r.t))!,
      block: Number(r.block),
      input_per_m: amount(rc.inputPerMTokens ?? '0'),
      output_per_m: amount(rc.outputPerMTokens ?? '0'),
      per_megapixel_step: amount(rc.perMegapixelStep ?? '0'),
    });
    prices.set(id, entry);
  }
  return {
    object: 'network.timeseries' as const,
    window: q.window,
    window_s: windowS,
    bucket_s: bucket,
    from: new Date(start * 1000).toISOString(),
    to: new Date(end * 1000).toISOString(),
    model: model,
    points,
    /** Every rate change (step series): the last point before `from` holds at `from`. */
    prices: [...prices.values()],
    confidential_premium: premium.map((r) => ({ t: iso(Number(r.t)), bps: Number(r.bps) })),
  };
}

// ── operator ────────────────────────────────────────────────────────────────────────────────

export async function operatorView(deps: QueryDeps, address: string) {
  const lower = address.toLowerCase();
  const [p, workers, validators, recent, accounts, audited] = await Promise.all([
    params(deps.db),
    workersView(deps, lower),
    validatorsView(deps, lower),
    activityView(deps, { limit: 25, kinds: [...DEFAULT_ACTIVITY_KINDS, 'settlement'], address: lower }),
    deps.db.query<Row>(
      'SELECT gross::text AS gross, earned::text AS earned, withdrawn::text AS withdrawn FROM network_accounts WHERE address = $1',
      [lower],
    ),
    recentAudits(deps.db, lower),
  ]);
  const worker = workers.data.find((w) => w.address.toLowerCase() === lower) ?? null;
  const validator = validators.data[0] ?? null;
  const earnings = earningsView(accounts[0]);
  const addr = checksum(address);
  type Command = { action: string; command: string; available: boolean; note: string | null };
  const commands: Command[] = [];
  for (const [role, bond] of [
    ['worker', worker],
    ['validator', validator],
  ] as const) {
    const has = bond && (BigInt(bond.stake.wei) > 0n || BigInt(bond.unbonding.wei) > 0n);
    if (!has) {
      const minimum = p[`${role}MinimumBond`];
      commands.push({
        action: `Bond as a ${role}`,
        command: `aipg stake ${role} ${minimum ? formatUnits(BigInt(minimum), 18) : '<amount>'}`,
        available: true,
        note: `at least the ${role} minimum`,
      });
      continue;
    }
    commands.push({
      action: `Add to the ${role} bond`,
      command: `aipg stake ${role} <amount>`,
      available: true,
      note: null,
    });
    if (BigInt(bond.stake.wei) > 0n) {
      commands.push({
        action: `Unbond the ${role} bond`,
        command: `aipg unbond ${role}`,
        available: true,
        note: 'starts the unbonding delay; the bond stays slashable meanwhile',
      });
    }
    if (BigInt(bond.unbonding.wei) > 0n) {
      commands.push({
        action: `Withdraw the unbonded ${role} bond`,
        command: `aipg withdraw ${role}`,
        available: bond.withdrawable,
        note: bond.withdrawable ? null : `ready at ${bond.unbond_ready_at}`,
      });
      commands.push({
        action: 'Cancel the unbond',
        command: `aipg unbond ${role} --cancel`,
        available: true,
        note: null,
      });
    }
  }
  commands.push({
    action: 'Withdraw earnings',
    command: 'aipg withdraw earnings',
    available: BigInt(earnings.available.wei) > 0n,
    note: BigInt(earnings.available.wei) > 0n ? null : 'nothing to withdraw yet',
  });
  commands.push({ action: 'Full status', command: `aipg status ${addr}`, available: true, note: null });
  const workerRest = worker && (({ address: _a, earnings: _e, ...rest }) => rest)(worker);
  const validatorRest = validator && (({ address: _b, rewards: _r, ...rest }) => rest)(validator);
  return {
    object: 'network.operator' as const,
    address: addr,
    chain_time: iso(chainNow(deps.status())),
    worker: workerRest,
    validator: validatorRest,
    earnings,
    audits: { enabled: AUDITS_ENABLED, recent: audited },
    activity: recent.data,
    commands,
  };
}
