/**
 * The gateway's public JSON API (`/v1/network/*`), as the dashboard reads it. The shapes are
 * documented in packages/dashboard/README.md; the source of truth is
 * packages/gateway/src/network/queries.ts.
 */

export type Amount = { wei: string; aipg: string; display: string };

export type IndexerStatus = {
  from_block: number | null;
  indexed_block: number | null;
  head_block: number | null;
  lag_blocks: number | null;
  head_time: string | null;
  reorgs: number;
  last_reorg_block: number | null;
  leader: boolean;
  last_error: string | null;
  last_sync_at: string | null;
};

export type Summary = {
  workers: { online: number; bonded: number; stake: Amount; unbonding: Amount; minimum: Amount };
  validators: { bonded: number; stake: Amount; unbonding: Amount; minimum: Amount };
  /** `active_image` is absent from gateways older than the image flavour. */
  models: { active: number; registered: number; active_image?: number };
  throughput: {
    window_s: number;
    jobs_per_minute: number | null;
    tokens_per_second: number | null;
    images_per_minute?: number | null;
  };
  last_24h: {
    jobs: number;
    failed: number;
    output_tokens: string;
    images?: number;
    fees: Amount;
    median_ttft_ms: number | null;
  };
  settlement: {
    batches: number;
    receipts: string;
    total: Amount;
    last_batch: {
      batch_id: string;
      receipts: number;
      total: Amount;
      tx: string;
      block: number;
      time: string | null;
    } | null;
  };
  slashes: { count: number; total: Amount };
  revenue_shares_bps: { worker: number | null; validator: number | null; protocol: number | null };
  confidential_premium_bps: number;
  audits: { enabled: boolean };
  indexer: IndexerStatus;
};

export type Model = {
  id: string;
  name: string;
  kind: 'text' | 'image';
  weights_hash: string;
  parameter_count: string | null;
  min_vram_mb: number | null;
  active: boolean;
  registered_block: number;
  registered_at: string | null;
  rates: {
    input_per_m: Amount;
    output_per_m: Amount;
    per_megapixel_step: Amount;
    confidential_input_per_m: Amount;
    confidential_output_per_m: Amount;
  };
  workers_online: number;
  capacity: number;
  in_flight: number;
  queue: { queued: number; running: number };
  recent: {
    window_s: number;
    jobs: number;
    failed: number;
    jobs_per_minute: number | null;
    tokens_per_second: number | null;
    input_tokens: number;
    output_tokens: number;
  };
  latency: {
    window_s: number;
    jobs: number;
    median_ttft_ms: number | null;
    median_tokens_per_second: number | null;
  };
  totals: { jobs: number; input_tokens: string; output_tokens: string; fees: Amount };
  /** Image models only: null for text models, absent from gateways older than the image flavour. */
  image?: ModelImage | null;
};

/** An image model's rate card and statistics (`/v1/network/models` → `image`). */
export type ModelImage = {
  /** The price of one 1024×1024 image at 20 steps at the model's rate. */
  example: { width: number; height: number; steps: number; n: number; size: string; price: Amount };
  /** What the workers online accept, together; null when none is online. */
  offered: {
    sizes: string[];
    min_steps: number;
    max_steps: number;
    max_n: number;
    schedulers: string[];
  } | null;
  recent: {
    window_s: number;
    jobs: number;
    images: number;
    images_per_minute: number | null;
    megapixel_steps: number | null;
  };
  latency: { window_s: number; jobs: number; median_seconds_per_step: number | null };
  totals: { megapixel_steps: number | null };
};

export type Models = { confidential_premium_bps: number; indexed_block: number | null; data: Model[] };

type Bond = {
  active: boolean;
  stake: Amount;
  unbonding: Amount;
  unbond_ready_at: string | null;
  unbond_seconds_left: number | null;
  withdrawable: boolean;
  minimum: Amount;
  operator: string | null;
  slashes: { count: number; amount: Amount };
  first_bonded_at: string | null;
};

export type Earnings = { gross: Amount; earned: Amount; withdrawn: Amount; available: Amount };

export type Session = {
  session_id: string;
  operator: string;
  models: { id: string; name: string; max_concurrency: number; in_flight: number }[];
  hardware: {
    gpus: { name: string; vram_mb: number }[];
    vram_mb: number;
    cpu_cores: number;
    memory_mb: number;
  };
  version: string;
  connected_at: string;
};

export type Worker = Bond & {
  address: string;
  online: boolean;
  models: { id: string; name: string; online: boolean }[];
  hardware: {
    gpus: { name: string; vram_mb: number }[];
    vram_mb: number;
    cpu_cores: number;
    memory_mb: number;
  } | null;
  sessions: Session[];
  jobs: {
    served: number;
    failed: number;
    output_tokens: string;
    /** Images delivered (absent from gateways older than the image flavour). */
    images?: number;
    fees: Amount;
    last_at: string | null;
    median_ttft_ms: number | null;
    median_tokens_per_second: number | null;
  };
  reliability: number | null;
  earnings: Earnings;
  audits: {
    total: number;
    passed: number;
    failed: number;
    inconclusive?: number;
    pass_rate: number | null;
    slashed?: Amount;
  };
};

export type Validator = Bond & {
  address: string;
  audits: {
    /** Hidden votes committed; `done` are the revealed ones; `unrevealed`: finalized without a reveal. */
    committed?: number;
    unrevealed?: number;
    done: number;
    agreed: number;
    agreement_rate: number | null;
    decided?: number;
    pending?: number;
    rewards?: { count: number; amount: Amount };
    false_attestations?: { count: number; amount: Amount };
  };
  rewards: Earnings;
};

export type ListOf<T> = { audits_enabled: boolean; data: T[] };

export type ActivityItem = {
  id: string;
  type: string;
  kind: string;
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

export type Activity = { data: ActivityItem[]; has_more: boolean; next_before: number | null };

export type Timeseries = {
  window: string;
  window_s: number;
  bucket_s: number;
  from: string;
  to: string;
  points: {
    t: string;
    jobs: number;
    failed: number;
    input_tokens: number;
    output_tokens: number;
    tokens_per_second: number | null;
    jobs_per_minute: number | null;
    images?: number;
    images_per_minute?: number | null;
    median_ttft_ms: number | null;
    fees: Amount;
  }[];
  prices: {
    model_id: string;
    name: string;
    kind?: 'text' | 'image';
    points: {
      t: string;
      block: number;
      input_per_m: Amount;
      output_per_m: Amount;
      per_megapixel_step?: Amount;
    }[];
  }[];
};

export type Command = { action: string; command: string; available: boolean; note: string | null };

export type Operator = {
  address: string;
  chain_time: string;
  worker: Omit<Worker, 'address' | 'earnings'> | null;
  validator: Omit<Validator, 'address' | 'rewards'> | null;
  earnings: Earnings;
  audits: { enabled: boolean; recent: AuditItem[] };
  activity: ActivityItem[];
  commands: Command[];
};

export class ApiError extends Error {
  constructor(
    message: string,
    readonly status: number,
  ) {
    super(message);
  }
}

/** Where the dashboard's endpoints live: `/v1/network` (the default), or the gateway's own `/v1`. */
export const NETWORK_API = '/v1/network';
export const GATEWAY_API = '/v1';

/**
 * GET a `/v1/network` endpoint (or one under `root`); throws `ApiError` with the API's message and the
 * HTTP status on a non-2xx answer.
 */
export async function getJson<T>(path: string, signal?: AbortSignal, root = NETWORK_API): Promise<T> {
  const res = await fetch(`${root}${path}`, { headers: { accept: 'application/json' }, signal });
  if (!res.ok) {
    let message = `${res.status} ${res.statusText}`;
    try {
      message = ((await res.json()) as { error?: { message?: string } }).error?.message ?? message;
    } catch {
      // not JSON: keep the status line
    }
    throw new ApiError(message, res.status);
  }
  return (await res.json()) as T;
}

export const STREAM_URL = '/v1/network/events/stream';

/** One audit an operator took part in (`/v1/network/operators/{address}` → `audits.recent`). */
export type AuditItem = {
  leaf: string;
  batch_id: string | null;
  role: 'worker' | 'validator';
  worker: string | null;
  vote: 'pass' | 'fail' | null;
  verdict: 'pass' | 'fail' | 'inconclusive' | null;
  agreed: boolean | null;
  slashed: Amount | null;
  reward: Amount | null;
  false_attestation_slash: Amount | null;
  time: string;
  block: number;
  tx: string;
};

/** One audit with its seats, commitments and reveals (`/v1/network/audits`). */
export type AuditSummary = {
  leaf: string;
  batch_id: string | null;
  worker: string | null;
  seats: string[];
  committed: string[];
  revealed: { validator: string; vote: 'pass' | 'fail' | null }[];
  counts: { seats: number; committed: number; revealed: number };
  commit_deadline: string | null;
  verdict: 'pass' | 'fail' | 'inconclusive' | null;
  slashed: Amount | null;
  opened_at: string;
  block: number;
  tx: string;
};

/** A validator's report that a gateway served audit evidence that does not hash to the receipt. */
export type GatewayFault = {
  validator: string;
  batch_id: string;
  leaf: string;
  /** The reason code (`RECEIPT_REQUEST_HASH`…), or the raw bytes32 when it is no ASCII code. */
  reason: string;
  evidence_hash: string;
  time: string;
  block: number;
  tx: string;
};

/** A gateway with its settlements and the gateway faults validators reported (`/v1/network/gateways`). */
export type Gateway = {
  address: string;
  batches: {
    count: number;
    receipts: string;
    total: Amount;
    last_batch_id: string | null;
    last_at: string | null;
  };
  faults: {
    reports: number;
    receipts: number;
    validators: number;
    batches: number;
    by_reason: { reason: string; count: number }[];
    last_at: string | null;
    latest: GatewayFault[];
  };
};

/** An announced rule change not executed, cancelled or lapsed (`/v1/network/governance`). */
export type PendingChange = {
  id: string;
  kind: 'cut' | 'audit_config' | 'randomness_source';
  summary: string;
  content: Record<string, unknown>;
  executable_at: string;
  expires_at: string;
  status: 'waiting' | 'ready';
  announced: { block: number; tx: string; time: string };
};

export type Governance = {
  owner: string | null;
  pending_owner: string | null;
  now: string | null;
  pending_changes: PendingChange[];
};

/**
 * One worker in a TEE, as `GET /v1/attestation?evidence=false` lists it (docs/confidential.md).
 * Mirrors `AttestationView` in packages/gateway/src/tee/index.ts (less `evidence`, which
 * `evidence=false` leaves out): keep the two in step.
 */
export type AttestationView = {
  /** The worker's bond owner. */
  worker: string;
  /** The address that signs its receipts (its operator key), bound into the evidence. */
  signer: string;
  models: string[];
  /** `valid` only while the latest evidence verified and has not expired. */
  status: 'valid' | 'expired' | 'invalid' | 'pending';
  /** Intel's TCB status of the quote (`UpToDate`…); null until evidence verified. */
  tcb_status: string | null;
  /** The evidence says it came from the devnet's simulated TEE. */
  simulated: boolean;
  /** Unix seconds. */
  verified_at: number | null;
  /** Unix seconds. */
  expires_at: number | null;
  digest: string | null;
  /** Why the gateway refused the evidence (`<code>: <message>`), when it did. */
  error: string | null;
  /** Concurrent jobs per model name. */
  capacity: Record<string, number>;
};

/** `GET /v1/attestation?evidence=false`: a gateway without the confidential tier answers 404. */
export type AttestationList = {
  object: 'list';
  /** The on-chain premium; null when the gateway could not read it. */
  confidential_premium_bps: number | null;
  /** `production` (Intel's and NVIDIA's roots), else the path of the test / development anchors file. */
  trust_anchors: string;
  data: AttestationView[];
};

/** The attestation listing, relative to `GATEWAY_API`. */
export const ATTESTATION_PATH = '/attestation?evidence=false';
