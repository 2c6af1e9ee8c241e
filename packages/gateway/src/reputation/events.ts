import { gridAbi } from '@aipg/chain';
import { AUDIT_VERDICTS, type AuditVerdict } from '@aipg/core';
import { type Address, decodeEventLog, getAbiItem, getAddress, type Hex } from 'viem';

/** The two Grid events reputation follows (IAudit's `AuditFinalized`, IBonding's `BondSlashed`). */
export const reputationAbi = [
  getAbiItem({ abi: gridAbi, name: 'AuditFinalized' }),
  getAbiItem({ abi: gridAbi, name: 'BondSlashed' }),
] as const;

/** `IAudit.Verdict`. */
export const VERDICTS = AUDIT_VERDICTS;
export type Verdict = AuditVerdict;

/** `IBonding.Role.Worker`. */
const ROLE_WORKER = 0;

/** What one log means for a worker's audit history. */
export type ReputationEvent =
  | {
      type: 'verdict';
      worker: Address;
      verdict: Verdict;
      batchId: bigint;
      leaf: Hex;
      slashed: bigint;
      blockNumber: bigint;
      logIndex: number;
    }
  | { type: 'slash'; worker: Address; amount: bigint; blockNumber: bigint; logIndex: number };

export type RawLog = {
  blockNumber: bigint | null;
  logIndex: number | null;
  topics: readonly Hex[];
  data: Hex;
};

/**
 * Decodes a Grid log into a reputation event; undefined for anything else (other events, validator
 * slashes, pending logs, logs that do not decode).
 */
export function decodeReputationLog(log: RawLog): ReputationEvent | undefined {
  if (log.blockNumber === null || log.logIndex === null || log.topics.length === 0) return undefined;
  let decoded: ReturnType<typeof decodeEventLog<typeof reputationAbi>>;
  try {
    decoded = decodeEventLog({
      abi: reputationAbi,
      data: log.data,
      topics: log.topics as [Hex, ...Hex[]],
      strict: true,
    });
  } catch {
    return undefined;
  }
  if (decoded.eventName === 'AuditFinalized') {
    const a = decoded.args;
    const verdict = VERDICTS[a.verdict];
    if (!verdict || verdict === 'none') return undefined;
    return {
      type: 'verdict',
      worker: getAddress(a.worker),
      verdict,
      batchId: a.batchId,
      leaf: a.leaf,
      slashed: a.slashed,
      blockNumber: log.blockNumber,
      logIndex: log.logIndex,
    };
  }
  const a = decoded.args;
  if (a.role !== ROLE_WORKER) return undefined;
  return {
    type: 'slash',
    worker: getAddress(a.owner),
    amount: a.amount,
    blockNumber: log.blockNumber,
    logIndex: log.logIndex,
  };
}
