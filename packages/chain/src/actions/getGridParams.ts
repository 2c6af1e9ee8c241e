import type { Address } from 'viem';
import { readContract } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import type { AuditParams } from '../deployment.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { auditConfigFromChain } from '../internal/audit.ts';
import { wrapRead } from '../internal/write.ts';

export type GetGridParamsParameters = { grid: Address };

/** The Grid's live parameters, read from the chain (not from a deployment file). */
export type GetGridParamsReturnType = {
  token: Address;
  treasury: Address;
  owner: Address;
  paused: boolean;
  workerMinimumBond: bigint;
  validatorMinimumBond: bigint;
  /** Seconds. */
  workerUnbondDelay: number;
  validatorUnbondDelay: number;
  depositWithdrawDelay: number;
  cutDelay: number;
  workerBps: number;
  validatorBps: number;
  protocolBps: number;
  confidentialPremiumBps: number;
  /** The audit config in force (for batches whose randomness is fixed from now on). */
  audit: AuditParams;
  /** The audit randomness source (IRandomnessSource). */
  randomnessSource: Address;
};

export type GetGridParamsErrorType = ChainError;

export async function getGridParams(
  client: ReadClient,
  { grid }: GetGridParamsParameters,
): Promise<GetGridParamsReturnType> {
  const c = { address: grid, abi: gridAbi } as const;
  const [
    token,
    treasury,
    owner,
    paused,
    workerMinimumBond,
    validatorMinimumBond,
    workerUnbondDelay,
    validatorUnbondDelay,
    depositWithdrawDelay,
    cutDelay,
    shares,
    confidentialPremiumBps,
    audit,
    randomnessSource,
  ] = await wrapRead('getGridParams', () =>
    Promise.all([
      readContract(client, { ...c, functionName: 'token' }),
      readContract(client, { ...c, functionName: 'treasury' }),
      readContract(client, { ...c, functionName: 'owner' }),
      readContract(client, { ...c, functionName: 'paused' }),
      readContract(client, { ...c, functionName: 'workerMinimumBond' }),
      readContract(client, { ...c, functionName: 'validatorMinimumBond' }),
      readContract(client, { ...c, functionName: 'workerUnbondDelay' }),
      readContract(client, { ...c, functionName: 'validatorUnbondDelay' }),
      readContract(client, { ...c, functionName: 'depositWithdrawDelay' }),
      readContract(client, { ...c, functionName: 'cutDelay' }),
      readContract(client, { ...c, functionName: 'revenueShares' }),
      readContract(client, { ...c, functionName: 'confidentialPremiumBps' }),
      readContract(client, { ...c, functionName: 'auditConfig' }),
      readContract(client, { ...c, functionName: 'randomnessSource' }),
    ]),
  );
  return {
    token,
    treasury,
    owner,
    paused,
    workerMinimumBond,
    validatorMinimumBond,
    workerUnbondDelay: Number(workerUnbondDelay),
    validatorUnbondDelay: Number(validatorUnbondDelay),
    depositWithdrawDelay: Number(depositWithdrawDelay),
    cutDelay: Number(cutDelay),
    workerBps: shares.workerBps,
    validatorBps: shares.validatorBps,
    protocolBps: shares.protocolBps,
    confidentialPremiumBps,
    audit: auditConfigFromChain(audit),
    randomnessSource,
  };
}
