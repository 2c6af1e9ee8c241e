import { gridAbi } from '@aipg/chain';
import { computeModelId, formatAipg } from '@aipg/core';
import {
  type Address,
  type Chain,
  type Client,
  ContractFunctionRevertedError,
  formatUnits,
  type Hex,
  type Transport,
  zeroAddress,
} from 'viem';
import { getChainId, readContract } from 'viem/actions';
import type { BackendModel } from '../backends/types.ts';
import { BondRequirementError, ChainMismatchError, ModelRegistryError, WorkerErrorCode } from '../errors.ts';

type ReadClient = Client<Transport, Chain | undefined>;

export type WorkerBond = {
  /** The bond owner behind the operator key: receipts name it as `worker`, earnings go there. */
  owner: Address;
  operator: Address;
  amount: bigint;
  unbonding: bigint;
  unbondReadyAt: number;
  minimum: bigint;
};

/** The amount as typed on a command line: `1000`, `12.5` (no thousands separators). */
const plainAipg = (wei: bigint) => formatUnits(wei, 18);

/** The RPC must serve the chain the worker was configured for (receipts are signed for it). */
export async function checkChainId(client: ReadClient, expected: number, rpcUrl: string): Promise<void> {
  const actual = await getChainId(client);
  if (actual !== expected) {
    throw new ChainMismatchError(
      `the RPC ${rpcUrl} serves chain ${actual}, but this worker is configured for chain ${expected}`,
    );
  }
}

/**
 * Resolves the operator key's bond owner and checks the bond can back jobs: present, at least the
 * minimum, not entirely unbonding. Throws `BondRequirementError` with a one-line message naming the
 * `aipg stake worker` command that fixes it.
 */
export async function checkWorkerBond({
  client,
  grid,
  operator,
}: {
  client: ReadClient;
  grid: Address;
  operator: Address;
}): Promise<WorkerBond> {
  const [owner, minimum] = await Promise.all([
    readContract(client, { address: grid, abi: gridAbi, functionName: 'workerOf', args: [operator] }),
    readContract(client, { address: grid, abi: gridAbi, functionName: 'workerMinimumBond' }),
  ]);
  if (owner === zeroAddress) {
    throw new BondRequirementError(
      `no worker bond for operator ${operator}: bond at least ${formatAipg(minimum)} AIPG with \`aipg stake worker ${plainAipg(minimum)}\` (or, from the owner's wallet, \`aipg stake worker ${plainAipg(minimum)} --operator ${operator}\`)`,
      WorkerErrorCode.bondMissing,
    );
  }
  const bond = await readContract(client, {
    address: grid,
    abi: gridAbi,
    functionName: 'workerBond',
    args: [owner],
  });
  const result: WorkerBond = {
    owner,
    operator,
    amount: bond.amount,
    unbonding: bond.unbonding,
    unbondReadyAt: Number(bond.unbondReadyAt),
    minimum,
  };
  if (bond.amount === 0n && bond.unbonding > 0n) {
    throw new BondRequirementError(
      `the worker bond of ${owner} is fully unbonding (${formatAipg(bond.unbonding)} AIPG): cancel with \`aipg unbond worker --cancel\` or bond again with \`aipg stake worker ${plainAipg(minimum)}\``,
      WorkerErrorCode.bondUnbonding,
    );
  }
  if (bond.amount === 0n) {
    throw new BondRequirementError(
      `no worker bond for ${owner}: bond at least ${formatAipg(minimum)} AIPG with \`aipg stake worker ${plainAipg(minimum)}\``,
      WorkerErrorCode.bondMissing,
    );
  }
  if (bond.amount < minimum) {
    throw new BondRequirementError(
      `the worker bond of ${owner} is ${formatAipg(bond.amount)} AIPG, below the ${formatAipg(minimum)} AIPG minimum: add ${formatAipg(minimum - bond.amount)} AIPG with \`aipg stake worker ${plainAipg(minimum - bond.amount)}\``,
      WorkerErrorCode.bondTooLow,
    );
  }
  return result;
}

export type RegisteredModel = {
  modelId: Hex;
  name: string;
  weightsHash: Hex;
  minVramMb: number;
  rates: { inputPerMTokens: bigint; outputPerMTokens: bigint };
};

/**
 * Checks each served model is registered on chain, active, of the kind its backend serves, and registered with the
 * weights this worker runs (same name, same sha256). Throws `ModelRegistryError` otherwise.
 */
export async function checkServedModels({
  client,
  grid,
  models,
}: {
  client: ReadClient;
  grid: Address;
  /** Each with the kind its backend serves (default text). */
  models: readonly (BackendModel & { kind?: 'text' | 'image' })[];
}): Promise<RegisteredModel[]> {
  const out: RegisteredModel[] = [];
  for (const model of models) {
    const expectedId = computeModelId(model.name, model.weightsHash);
    if (expectedId.toLowerCase() !== model.modelId.toLowerCase()) {
      throw new ModelRegistryError(
        `model ${model.name}: backend reports model id ${model.modelId}, but keccak256(name, weightsHash) is ${expectedId}`,
        WorkerErrorCode.modelHashMismatch,
      );
    }
    const onChain = await getModelOrUndefined(client, grid, expectedId);
    if (!onChain) {
      const sameName = await findByName(client, grid, model.name);
      if (sameName) {
        throw new ModelRegistryError(
          `model ${model.name} is registered with weights ${sameName.weightsHash}, but the weights served here hash to ${model.weightsHash}: serve the registered file`,
          WorkerErrorCode.modelHashMismatch,
        );
      }
      throw new ModelRegistryError(
        `model ${model.name} (weights ${model.weightsHash}) is not registered on chain (model id ${expectedId})`,
        WorkerErrorCode.modelNotRegistered,
      );
    }
    if (
      onChain.weightsHash.toLowerCase() !== model.weightsHash.toLowerCase() ||
      onChain.name !== model.name
    ) {
      throw new ModelRegistryError(
        `model ${model.name}: the registry entry ${expectedId} is ${onChain.name} with weights ${onChain.weightsHash}`,
        WorkerErrorCode.modelHashMismatch,
      );
    }
    const kind = model.kind ?? 'text';
    if (onChain.kind !== (kind === 'image' ? 1 : 0)) {
      throw new ModelRegistryError(
        kind === 'text'
          ? `model ${model.name} is registered as an image model; its backend serves text`
          : `model ${model.name} is registered as a text model; its backend makes images`,
        WorkerErrorCode.modelNotText,
      );
    }
    if (!onChain.active) {
      throw new ModelRegistryError(
        `model ${model.name} (${expectedId}) is deactivated on chain`,
        WorkerErrorCode.modelInactive,
      );
    }
    out.push({
      modelId: onChain.id,
      name: onChain.name,
      weightsHash: onChain.weightsHash,
      minVramMb: Number(onChain.minVramMb),
      rates: {
        inputPerMTokens: onChain.rates.inputPerMTokens,
        outputPerMTokens: onChain.rates.outputPerMTokens,
      },
    });
  }
  return out;
}

async function getModelOrUndefined(client: ReadClient, grid: Address, modelId: Hex) {
  try {
    return await readContract(client, {
      address: grid,
      abi: gridAbi,
      functionName: 'getModel',
      args: [modelId],
    });
  } catch (error) {
    const revert = (error as { walk?: (fn: (e: unknown) => boolean) => unknown }).walk?.(
      (e) => e instanceof ContractFunctionRevertedError,
    ) as ContractFunctionRevertedError | undefined;
    if (revert?.data?.errorName === 'UnknownModel') return undefined;
    throw error;
  }
}

async function findByName(client: ReadClient, grid: Address, name: string) {
  const ids = await readContract(client, { address: grid, abi: gridAbi, functionName: 'modelIds' });
  for (const id of ids) {
    const m = await readContract(client, {
      address: grid,
      abi: gridAbi,
      functionName: 'getModel',
      args: [id],
    });
    if (m.name === name) return m;
  }
  return undefined;
}
