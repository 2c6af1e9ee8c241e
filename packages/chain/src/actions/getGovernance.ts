import { type Address, zeroAddress } from 'viem';
import { readContract } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import type { AuditLimits } from '../deployment.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { auditLimitsFromChain } from '../internal/audit.ts';
import { wrapRead } from '../internal/write.ts';

export type GetGovernanceParameters = { grid: Address };

export type GetGovernanceReturnType = {
  /** Who may announce and execute rule changes. */
  owner: Address;
  /** The address a two-step ownership transfer is waiting on (null: none). */
  pendingOwner: Address | null;
  /** Seconds from an announcement to when the change may run. */
  cutDelay: number;
  /** Seconds after that during which it may still run; then it lapses. */
  changeWindow: number;
  /** Bounds every audit config must respect, fixed at deployment. */
  auditLimits: AuditLimits;
};

export type GetGovernanceErrorType = ChainError;

/** Who governs the Grid and the bounds on what they can change (see `getPendingChanges` for what is coming). */
export async function getGovernance(
  client: ReadClient,
  { grid }: GetGovernanceParameters,
): Promise<GetGovernanceReturnType> {
  const c = { address: grid, abi: gridAbi } as const;
  const [owner, pendingOwner, cutDelay, changeWindow, limits] = await wrapRead('getGovernance', () =>
    Promise.all([
      readContract(client, { ...c, functionName: 'owner' }),
      readContract(client, { ...c, functionName: 'pendingOwner' }),
      readContract(client, { ...c, functionName: 'cutDelay' }),
      readContract(client, { ...c, functionName: 'changeWindow' }),
      readContract(client, { ...c, functionName: 'auditLimits' }),
    ]),
  );
  return {
    owner,
    pendingOwner: pendingOwner === zeroAddress ? null : pendingOwner,
    cutDelay: Number(cutDelay),
    changeWindow: Number(changeWindow),
    auditLimits: auditLimitsFromChain(limits),
  };
}
