import type { Address } from 'viem';
import { readContract } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import type { BondRole } from '../internal/role.ts';
import { wrapRead } from '../internal/write.ts';

export type GetBondParameters = { grid: Address; role: BondRole; owner: Address };

export type GetBondReturnType = {
  /** Active bond, AIPG wei. */
  amount: bigint;
  /** Requested to unbond, still slashable. */
  unbonding: bigint;
  /** Unix seconds from which `unbonding` can be withdrawn (0 when nothing is unbonding). */
  unbondReadyAt: number;
  /** Hot key that signs for this bond (the zero address when there is no bond). */
  operator: Address;
  /** Total ever slashed from this bond. */
  slashed: bigint;
  /** `amount >= minimum`. */
  active: boolean;
};

export type GetBondErrorType = ChainError;

export async function getBond(
  client: ReadClient,
  { grid, role, owner }: GetBondParameters,
): Promise<GetBondReturnType> {
  const info = await wrapRead('getBond', () =>
    readContract(client, {
      address: grid,
      abi: gridAbi,
      functionName: role === 'worker' ? 'workerBond' : 'validatorBond',
      args: [owner],
    }),
  );
  return {
    amount: info.amount,
    unbonding: info.unbonding,
    unbondReadyAt: Number(info.unbondReadyAt),
    operator: info.operator,
    slashed: info.slashed,
    active: info.active,
  };
}
