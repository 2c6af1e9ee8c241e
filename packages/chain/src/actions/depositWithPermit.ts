import { type Address, parseSignature } from 'viem';
import { getBlock, readContract, signTypedData } from 'viem/actions';
import type { WriteClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi, testAipgAbi } from '../generated/abis.ts';
import { type TransactionResult, wrapRead, writeAndWait } from '../internal/write.ts';

export type DepositWithPermitParameters = {
  grid: Address;
  /** AIPG wei; also the permit's value. */
  amount: bigint;
  /** The AIPG token (default: read from the Grid). */
  token?: Address | undefined;
  /** Permit deadline, unix seconds (default: one hour after the latest block). */
  deadline?: bigint | undefined;
};

export type DepositWithPermitReturnType = TransactionResult;

/** `ERC2612ExpiredSignature`, `ERC2612InvalidSigner`, `ERC20InsufficientBalance`, `EnforcedPause`… */
export type DepositWithPermitErrorType = ChainError;

const permitTypes = {
  Permit: [
    { name: 'owner', type: 'address' },
    { name: 'spender', type: 'address' },
    { name: 'value', type: 'uint256' },
    { name: 'nonce', type: 'uint256' },
    { name: 'deadline', type: 'uint256' },
  ],
} as const;

/**
 * Deposits in one transaction: signs an ERC-2612 permit for the Grid with the client's account (no
 * prior `approve`), then calls `depositWithPermit`. The token's EIP-712 domain is read from the token
 * itself (ERC-5267 `eip712Domain`).
 */
export async function depositWithPermit(
  client: WriteClient,
  { grid, amount, token, deadline }: DepositWithPermitParameters,
): Promise<DepositWithPermitReturnType> {
  const owner = client.account.address;
  const [tokenAddress, latest] = await Promise.all([
    token ??
      wrapRead('depositWithPermit', () =>
        readContract(client, { address: grid, abi: gridAbi, functionName: 'token' }),
      ),
    deadline === undefined ? wrapRead('depositWithPermit', () => getBlock(client)) : undefined,
  ]);
  const [domain, nonce] = await wrapRead('depositWithPermit', () =>
    Promise.all([
      readContract(client, { address: tokenAddress, abi: testAipgAbi, functionName: 'eip712Domain' }),
      readContract(client, {
        address: tokenAddress,
        abi: testAipgAbi,
        functionName: 'nonces',
        args: [owner],
      }),
    ]),
  );
  const [, name, version, chainId, verifyingContract] = domain;
  const permitDeadline = deadline ?? (latest?.timestamp ?? 0n) + 3_600n;
  const signature = await wrapRead('sign permit', () =>
    signTypedData(client, {
      account: client.account,
      domain: { name, version, chainId, verifyingContract },
      types: permitTypes,
      primaryType: 'Permit',
      message: { owner, spender: grid, value: amount, nonce, deadline: permitDeadline },
    }),
  );
  const { r, s, yParity } = parseSignature(signature);
  const receipt = await writeAndWait(client, 'depositWithPermit', {
    address: grid,
    abi: gridAbi,
    functionName: 'depositWithPermit',
    args: [amount, permitDeadline, yParity + 27, r, s],
  });
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber };
}
