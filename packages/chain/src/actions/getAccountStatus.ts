import type { Address } from 'viem';
import { getBlock, readContract } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi, testAipgAbi } from '../generated/abis.ts';
import { wrapRead } from '../internal/write.ts';
import { type GetBondReturnType, getBond } from './getBond.ts';

export type GetAccountStatusParameters = {
  grid: Address;
  account: Address;
  /** The AIPG token (default: read from the Grid). */
  token?: Address | undefined;
};

export type BondStatus = GetBondReturnType & {
  /** The role's minimum bond. */
  minimum: bigint;
  /** Seconds until `unbonding` can be withdrawn, by chain time (0 when ready or nothing is unbonding). */
  unbondSecondsLeft: number;
};

export type DepositStatus = {
  /** Escrow balance, still including a pending withdrawal until it is withdrawn. */
  balance: bigint;
  /** Requested for withdrawal. */
  withdrawRequested: bigint;
  /** Unix seconds from which it can be withdrawn (0 when nothing is requested). */
  withdrawReadyAt: number;
  withdrawSecondsLeft: number;
};

/** Everything `aipg status` shows for one account. */
export type GetAccountStatusReturnType = {
  account: Address;
  token: Address;
  /** Timestamp of the latest block: what the delays are measured against. */
  chainTime: number;
  worker: BondStatus;
  validator: BondStatus;
  /** Settled earnings not yet withdrawn. */
  earnings: bigint;
  deposit: DepositStatus;
  /** AIPG held in the wallet itself. */
  walletBalance: bigint;
};

export type GetAccountStatusErrorType = ChainError;

export async function getAccountStatus(
  client: ReadClient,
  { grid, account, token }: GetAccountStatusParameters,
): Promise<GetAccountStatusReturnType> {
  const c = { address: grid, abi: gridAbi } as const;
  const [block, tokenAddress, worker, validator, workerMinimum, validatorMinimum, earnings, deposit] =
    await wrapRead('getAccountStatus', () =>
      Promise.all([
        getBlock(client),
        token ?? readContract(client, { ...c, functionName: 'token' }),
        getBond(client, { grid, role: 'worker', owner: account }),
        getBond(client, { grid, role: 'validator', owner: account }),
        readContract(client, { ...c, functionName: 'workerMinimumBond' }),
        readContract(client, { ...c, functionName: 'validatorMinimumBond' }),
        readContract(client, { ...c, functionName: 'earningsOf', args: [account] }),
        readContract(client, { ...c, functionName: 'depositOf', args: [account] }),
      ]),
    );
  const walletBalance = await wrapRead('getAccountStatus', () =>
    readContract(client, {
      address: tokenAddress,
      abi: testAipgAbi,
      functionName: 'balanceOf',
      args: [account],
    }),
  );
  const chainTime = Number(block.timestamp);
  const left = (readyAt: number) => (readyAt === 0 ? 0 : Math.max(0, readyAt - chainTime));
  const withdrawReadyAt = Number(deposit.withdrawReadyAt);
  return {
    account,
    token: tokenAddress,
    chainTime,
    worker: { ...worker, minimum: workerMinimum, unbondSecondsLeft: left(worker.unbondReadyAt) },
    validator: { ...validator, minimum: validatorMinimum, unbondSecondsLeft: left(validator.unbondReadyAt) },
    earnings,
    deposit: {
      balance: deposit.balance,
      withdrawRequested: deposit.withdrawRequested,
      withdrawReadyAt,
      withdrawSecondsLeft: left(withdrawReadyAt),
    },
    walletBalance,
  };
}
