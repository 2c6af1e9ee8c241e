import { gridAbi } from '@aipg/chain';
import { type Address, decodeEventLog, type Hex } from 'viem';

/**
 * Activity categories of chain events. Audit events (a later AuditFacet) need no change here beyond
 * their names: anything named `*Attest*` is an attestation, `*Audit*` an audit, `*Slash*` a slash.
 */
export type EventKind =
  | 'bond'
  | 'unbond'
  | 'slash'
  | 'deposit'
  | 'batch'
  | 'settlement'
  | 'earnings'
  | 'model'
  | 'audit'
  | 'attestation'
  | 'admin'
  | 'unknown';

const KIND: Record<string, EventKind> = {
  Bonded: 'bond',
  OperatorSet: 'bond',
  UnbondRequested: 'unbond',
  UnbondCancelled: 'unbond',
  BondWithdrawn: 'unbond',
  BondSlashed: 'slash',
  Deposited: 'deposit',
  GatewayApproved: 'deposit',
  DepositWithdrawalRequested: 'deposit',
  DepositWithdrawn: 'deposit',
  BatchSettled: 'batch',
  PayerDebited: 'settlement',
  WorkerCredited: 'settlement',
  EarningsWithdrawn: 'earnings',
  ProtocolFeesWithdrawn: 'earnings',
  ModelRegistered: 'model',
  ModelRatesUpdated: 'model',
  ModelActiveSet: 'model',
  ConfidentialPremiumUpdated: 'model',
  // AuditFacet: the sample draw, verdicts and validator payouts are audits; configuration is admin.
  AuditRandomnessFixed: 'audit',
  AuditOpened: 'audit',
  AuditFinalized: 'audit',
  ValidatorRewarded: 'audit',
  // Commit-reveal: a hidden vote, then its reveal (`Attested`).
  VoteCommitted: 'attestation',
  Attested: 'attestation',
  FalseAttestationSlashed: 'slash',
  // A validator's public record that a gateway served audit evidence that does not hash to the receipt.
  GatewayFaultReported: 'audit',
  WorkerAuditRateSet: 'admin',
  AuditConfigUpdated: 'admin',
  RandomnessSourceSet: 'admin',
  // Announced rule changes (served by /v1/network/governance) and their execution.
  DiamondCutAnnounced: 'admin',
  AuditConfigAnnounced: 'admin',
  RandomnessSourceAnnounced: 'admin',
  ChangeCancelled: 'admin',
  ChangeExecuted: 'admin',
  DiamondCut: 'admin',
  OwnershipTransferStarted: 'admin',
  OwnershipTransferred: 'admin',
};

export function kindOf(name: string | null): EventKind {
  if (name === null) return 'unknown';
  const known = KIND[name];
  if (known) return known;
  if (/slash/i.test(name)) return 'slash';
  if (/attest/i.test(name)) return 'attestation';
  if (/audit|verdict|dispute/i.test(name)) return 'audit';
  return 'admin';
}

/** The indexed form of one log, ready for `network_events`. */
export type IndexedEvent = {
  blockNumber: bigint;
  logIndex: number;
  blockHash: Hex;
  txHash: Hex;
  /** Unix seconds of the block. */
  blockTime: number;
  /** Event name from the Grid ABI; null when the ABI does not know the log (kept raw). */
  name: string | null;
  kind: EventKind;
  role: 'worker' | 'validator' | null;
  /** The address the event is about (bond owner, payer, worker, gateway of a batch…). */
  account: Address | null;
  /** A second address (operator key, approved gateway, depositor). */
  related: Address | null;
  modelId: Hex | null;
  batchId: bigint | null;
  amount: bigint | null;
  /** Decoded arguments, JSON-safe: integers as decimal strings, structs as objects. */
  args: Record<string, unknown>;
  topics: Hex[];
  data: Hex;
};

export type RawLog = {
  blockNumber: bigint | null;
  logIndex: number | null;
  blockHash: Hex | null;
  transactionHash: Hex | null;
  topics: readonly Hex[];
  data: Hex;
};

function jsonSafe(value: unknown): unknown {
  if (typeof value === 'bigint') return value.toString();
  if (Array.isArray(value)) return value.map(jsonSafe);
  if (value && typeof value === 'object') {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, jsonSafe(v)]));
  }
  return value;
}

const ACCOUNT_ARGS = ['owner', 'worker', 'validator', 'payer', 'account', 'treasury', 'gateway'] as const;
/**
 * Events whose subject is not the first of `ACCOUNT_ARGS`: `[account, related]` argument names. A gateway
 * fault is about the gateway (as a settled batch is); the reporting validator is the counterparty.
 */
const SUBJECT: Record<string, readonly [string, string]> = {
  GatewayFaultReported: ['gateway', 'validator'],
};
const RELATED_ARGS = ['operator', 'from', 'gateway', 'auditor'] as const;
const AMOUNT_ARGS = ['amount', 'total', 'gross', 'cap', 'reward'] as const;

/** Decodes one Grid log (unknown ones are kept with `name: null`). */
export function decodeGridLog(log: RawLog, blockTime: number): IndexedEvent {
  if (log.blockNumber === null || log.logIndex === null || !log.blockHash || !log.transactionHash) {
    throw new Error('pending log: the indexer only reads mined blocks');
  }
  let name: string | null = null;
  let raw: Record<string, unknown> = {};
  try {
    const decoded = decodeEventLog({
      abi: gridAbi,
      data: log.data,
      topics: log.topics as [Hex, ...Hex[]],
      strict: true,
    });
    name = decoded.eventName;
    raw = (decoded.args ?? {}) as Record<string, unknown>;
  } catch {
    // An event of a facet this build does not know: stored raw, decoded by a later version.
  }
  const args = jsonSafe(raw) as Record<string, unknown>;
  const pick = (keys: readonly string[], exclude?: unknown): Address | null => {
    for (const k of keys) {
      const v = raw[k];
      if (typeof v === 'string' && /^0x[0-9a-fA-F]{40}$/.test(v) && v !== exclude) return v as Address;
    }
    return null;
  };
  const subject = name ? SUBJECT[name] : undefined;
  const account = subject ? pick([subject[0]]) : pick(ACCOUNT_ARGS);
  let amount: bigint | null = null;
  for (const k of AMOUNT_ARGS) {
    if (typeof raw[k] === 'bigint') {
      amount = raw[k] as bigint;
      break;
    }
  }
  const role = typeof raw.role === 'number' ? (raw.role === 0 ? 'worker' : 'validator') : null;
  return {
    blockNumber: log.blockNumber,
    logIndex: log.logIndex,
    blockHash: log.blockHash,
    txHash: log.transactionHash,
    blockTime,
    name,
    kind: kindOf(name),
    role,
    account,
    related: subject ? pick([subject[1]], account) : pick(RELATED_ARGS, account),
    modelId: typeof raw.modelId === 'string' ? (raw.modelId.toLowerCase() as Hex) : null,
    batchId: typeof raw.batchId === 'bigint' ? raw.batchId : null,
    amount,
    args,
    topics: [...log.topics],
    data: log.data,
  };
}
