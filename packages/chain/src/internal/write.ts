import type {
  Abi,
  Address,
  ContractFunctionArgs,
  ContractFunctionName,
  Hash,
  TransactionReceipt,
} from 'viem';
import { waitForTransactionReceipt, writeContract } from 'viem/actions';
import type { WriteClient } from '../client.ts';
import { ChainError, toChainError } from '../errors.ts';

/** What every write action returns at least: the mined transaction. */
export type TransactionResult = { hash: Hash; blockNumber: bigint };

/**
 * Sends one contract call from the client's account and waits for it to be mined. viem estimates
 * gas first, so a revert surfaces before anything is sent; every failure becomes a `ChainError`
 * (reverts decoded into their custom error and arguments).
 */
export async function writeAndWait<
  const abi extends Abi,
  functionName extends ContractFunctionName<abi, 'nonpayable'>,
>(
  client: WriteClient,
  action: string,
  parameters: {
    address: Address;
    abi: abi;
    functionName: functionName;
    args: ContractFunctionArgs<abi, 'nonpayable', functionName>;
  },
): Promise<TransactionReceipt> {
  let hash: Hash;
  let receipt: TransactionReceipt;
  try {
    // The generic parameters are checked at the call site; viem's conditional types don't resolve here.
    hash = await writeContract(client, {
      ...parameters,
      account: client.account,
      chain: client.chain,
    } as unknown as Parameters<typeof writeContract>[1]);
    receipt = await waitForTransactionReceipt(client, { hash });
  } catch (error) {
    throw toChainError(error, action);
  }
  if (receipt.status !== 'success') {
    throw new ChainError(`${action} reverted in transaction ${hash}`, { code: 'TX_REVERTED' });
  }
  return receipt;
}

/** Reads, with failures turned into `ChainError`s. */
export async function wrapRead<T>(action: string, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (error) {
    throw toChainError(error, action);
  }
}
