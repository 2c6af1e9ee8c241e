import type { Address, Hash } from 'viem';
import { readContract } from 'viem/actions';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { testAipgAbi } from '../generated/abis.ts';
import { wrapRead, writeAndWait } from '../internal/write.ts';

export type ApproveTokenParameters = {
  /** The AIPG token (`deployment.token`). */
  token: Address;
  /** Who will pull the tokens: the Grid diamond. */
  spender: Address;
  /** The allowance needed. */
  amount: bigint;
};

export type ApproveTokenReturnType = {
  /** The approve transaction, or undefined when the allowance already sufficed. */
  hash: Hash | undefined;
  /** The allowance afterwards. */
  allowance: bigint;
};

export type ApproveTokenErrorType = ChainError;

/**
 * Ensures `spender` may pull at least `amount` of the client account's tokens: approves exactly
 * `amount` only when the current allowance is lower.
 */
export async function approveToken(
  client: WriteClient,
  { token, spender, amount }: ApproveTokenParameters,
): Promise<ApproveTokenReturnType> {
  const allowance = await wrapRead('approveToken', () =>
    readContract(client, {
      address: token,
      abi: testAipgAbi,
      functionName: 'allowance',
      args: [client.account.address, spender],
    }),
  );
  if (allowance >= amount) return { hash: undefined, allowance };
  const receipt = await writeAndWait(client, 'approve', {
    address: token,
    abi: testAipgAbi,
    functionName: 'approve',
    args: [spender, amount],
  });
  return { hash: receipt.transactionHash, allowance: amount };
}
