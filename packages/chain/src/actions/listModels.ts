import type { Address } from 'viem';
import { readContract } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { wrapRead } from '../internal/write.ts';
import { type GetModelReturnType, getModel } from './getModel.ts';

export type ListModelsParameters = {
  grid: Address;
  /** Leave out models the owner deactivated (default false: all). */
  activeOnly?: boolean;
};

export type ListModelsReturnType = GetModelReturnType[];

export type ListModelsErrorType = ChainError;

/** Every registered model with its rate card, in registration order. */
export async function listModels(
  client: ReadClient,
  { grid, activeOnly = false }: ListModelsParameters,
): Promise<ListModelsReturnType> {
  const ids = await wrapRead('listModels', () =>
    readContract(client, { address: grid, abi: gridAbi, functionName: 'modelIds' }),
  );
  const models = await Promise.all(ids.map((modelId) => getModel(client, { grid, modelId })));
  return activeOnly ? models.filter((m) => m.active) : models;
}
