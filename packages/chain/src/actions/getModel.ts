import { type ModelKind, modelKindFromUint, type RateCard } from '@aipg/core';
import type { Address, Hex } from 'viem';
import { readContract } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { wrapRead } from '../internal/write.ts';

export type GetModelParameters = {
  grid: Address;
  modelId: Hex;
  /** Read as of this block (a node with its state); the latest block by default. */
  blockNumber?: bigint | undefined;
};

/** A registered model with its rate card. */
export type GetModelReturnType = {
  id: Hex;
  name: string;
  kind: ModelKind;
  weightsHash: Hex;
  /** sha256 of the model's tokenizer file; the zero hash for an image model registered without one. */
  tokenizerHash: Hex;
  parameterCount: bigint;
  minVramMb: number;
  rates: RateCard;
  active: boolean;
};

/** `UnknownModel` (code `CONTRACT_REVERT`). */
export type GetModelErrorType = ChainError;

export async function getModel(
  client: ReadClient,
  { grid, modelId, blockNumber }: GetModelParameters,
): Promise<GetModelReturnType> {
  const m = await wrapRead('getModel', () =>
    readContract(client, {
      address: grid,
      abi: gridAbi,
      functionName: 'getModel',
      args: [modelId],
      ...(blockNumber === undefined ? {} : { blockNumber }),
    }),
  );
  // An implementation that returns an empty struct instead of reverting for an unknown id.
  if (m.id !== modelId) {
    throw new ChainError(`UnknownModel(modelId: ${modelId})`, {
      code: 'CONTRACT_REVERT',
      errorName: 'UnknownModel',
      args: { modelId },
    });
  }
  return {
    id: m.id,
    name: m.name,
    kind: modelKindFromUint(m.kind),
    weightsHash: m.weightsHash,
    tokenizerHash: m.tokenizerHash,
    parameterCount: m.parameterCount,
    minVramMb: m.minVramMb,
    rates: {
      inputPerMTokens: m.rates.inputPerMTokens,
      outputPerMTokens: m.rates.outputPerMTokens,
      perMegapixelStep: m.rates.perMegapixelStep,
    },
    active: m.active,
  };
}
