/**
 * The gateway's public JSON API (`/v1/network/*`), as the dashboard reads it. The shapes are
 * documented in packages/dashboard/README.md; they are the network indexer's own response types
 * (@aipg/indexer), imported as types only: nothing of the indexer reaches the browser bundle.
 */
import type {
  ActivityItem,
  Amount,
  AuditItem,
  AuditSummaryItem,
  GatewayFaultItem,
  GatewayItem,
  NetworkActivity,
  NetworkGovernance,
  NetworkIndexerStatus,
  NetworkModel,
  NetworkModels,
  NetworkOperator,
  NetworkSummary,
  NetworkTimeseries,
  NetworkValidator,
  NetworkWorker,
  PendingChangeItem,
} from '@aipg/indexer';

export type { ActivityItem, Amount, AuditItem };
export type IndexerStatus = NetworkIndexerStatus;
export type Summary = NetworkSummary;
export type Model = NetworkModel;
/** An image model's rate card and statistics (`/v1/network/models` → `image`). */
export type ModelImage = NonNullable<NetworkModel['image']>;
export type Models = NetworkModels;
export type Worker = NetworkWorker;
export type Earnings = NetworkOperator['earnings'];
export type Session = NetworkWorker['sessions'][number];
export type Validator = NetworkValidator;
export type ListOf<T> = { audits_enabled: boolean; data: T[] };
export type Activity = NetworkActivity;
export type Timeseries = NetworkTimeseries;
export type Command = NetworkOperator['commands'][number];
export type Operator = NetworkOperator;
/** One audit with its seats, commitments and reveals (`/v1/network/audits`). */
export type AuditSummary = AuditSummaryItem;
/** A validator's report that a gateway served audit evidence that does not hash to the receipt. */
export type GatewayFault = GatewayFaultItem;
/** A gateway with its settlements and the gateway faults validators reported (`/v1/network/gateways`). */
export type Gateway = GatewayItem;
/** An announced rule change not executed, cancelled or lapsed (`/v1/network/governance`). */
export type PendingChange = PendingChangeItem;
export type Governance = NetworkGovernance;

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
