import { type Address, type Hex, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';
import {
  encodeGatewayFaultReason,
  gatewayFaultReason,
  isGatewayFaultReason,
} from '../utils/gatewayFaultReason.ts';

export type ReportGatewayFaultParameters = {
  grid: Address;
  /** The settled batch the leaf belongs to: its gateway is the one reported. */
  batchId: bigint;
  /** `receiptLeafHash(receipt)` of the receipt whose evidence did not hash to what the worker signed. */
  leaf: Hex;
  /** Its Merkle proof against the batch's root (the gateway's audit API serves it with the job). */
  proof: readonly Hex[];
  /** The reason code, 1 to 31 printable ASCII characters (`"RECEIPT_REQUEST_HASH"`, `"PROMPT_MISMATCH"`…). */
  reason: string;
  /** Commitment to the evidence the validator keeps (as for a vote); not interpreted on chain. */
  evidenceHash: Hex;
};

export type ReportGatewayFaultReturnType = TransactionResult & {
  /** The gateway that settled the batch: the one the record is against. */
  gateway: Address;
  batchId: bigint;
  leaf: Hex;
  /** The validator (bond owner) the report counts for: the client account or the bond it operates. */
  validator: Address;
  /** The reason code as recorded (decoded back from its `bytes32`). */
  reason: string;
};

/**
 * `INVALID_ARGUMENT` (a reason that is not 1 to 31 printable ASCII characters: nothing is sent), or reverts:
 * `InvalidFaultReason`, `NotAnActiveValidator`, `UnknownBatch`, `RandomnessNotFixed`, `CommitWindowClosed`
 * (the batch's audit period is over), `InvalidProof`, `AlreadyReported` (this validator already reported
 * this leaf: a retry after a crash can treat it as done).
 */
export type ReportGatewayFaultErrorType = ChainError;

/**
 * Leaves a public, signed record that the batch's gateway served audit evidence for `leaf` that does not hash to
 * what the worker signed: a validator abstains from such an audit and reports the gateway instead. Sent as
 * the client account (a validator's operator key or owner; its bond must be active), while the batch's
 * randomness is fixed and `block.timestamp <= batchAudit.deadline`, once per validator and leaf. Moves no
 * funds (a gateway has no bond); emits `GatewayFaultReported`, which the gateways' dashboards count.
 */
export async function reportGatewayFault(
  client: WriteClient,
  { grid, batchId, leaf, proof, reason, evidenceHash }: ReportGatewayFaultParameters,
): Promise<ReportGatewayFaultReturnType> {
  if (!isGatewayFaultReason(reason)) {
    throw new ChainError(`reportGatewayFault: invalid reason ${JSON.stringify(reason)}`, {
      code: 'INVALID_ARGUMENT',
      details: 'a gateway fault reason is 1 to 31 printable ASCII characters (e.g. RECEIPT_REQUEST_HASH)',
    });
  }
  const tx = await writeAndWait(client, 'reportGatewayFault', {
    address: grid,
    abi: gridAbi,
    functionName: 'reportGatewayFault',
    args: [batchId, leaf, [...proof], encodeGatewayFaultReason(reason), evidenceHash],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: tx.logs, eventName: 'GatewayFaultReported' });
  if (!event) {
    throw new ChainError('reportGatewayFault: no GatewayFaultReported event in the receipt', {
      code: 'RPC_ERROR',
    });
  }
  return {
    hash: tx.transactionHash,
    blockNumber: tx.blockNumber,
    gateway: event.args.gateway,
    batchId: event.args.batchId,
    leaf: event.args.leaf,
    validator: event.args.validator,
    reason: gatewayFaultReason(event.args.reason),
  };
}
