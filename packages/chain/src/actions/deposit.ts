import type { Address } from 'viem';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type DepositParameters = {
  grid: Address;
  /** AIPG wei, pulled from the client account (approve the Grid first, or use `depositWithPermit`). */
  amount: bigint;
  /** Credit another payer's escrow (a sponsor paying for a user); default the client account. */
  payer?: Address | undefined;
};

export type DepositReturnType = TransactionResult;

/** `ZeroAmount`, `EnforcedPause`, `ERC20InsufficientAllowance`, `ERC20InsufficientBalance`. */
export type DepositErrorType = ChainError;

/** Deposits AIPG into escrow, from which approved gateways settle the payer's requests. */
export async function deposit(
  client: WriteClient,
  { grid, amount, payer }: DepositParameters,
): Promise<DepositReturnType> {
  const receipt =
    payer && payer.toLowerCase() !== client.account.address.toLowerCase()
      ? await writeAndWait(client, 'deposit', {
          address: grid,
          abi: gridAbi,
          functionName: 'depositFor',
          args: [payer, amount],
        })
      : await writeAndWait(client, 'deposit', {
          address: grid,
          abi: gridAbi,
          functionName: 'deposit',
          args: [amount],
        });
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber };
}
