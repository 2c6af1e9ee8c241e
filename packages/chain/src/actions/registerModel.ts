import { type ModelKind, modelKindToUint, type RateCard } from '@aipg/core';
import { type Address, type Hex, parseEventLogs } from 'viem';
import type { WriteClient } from '../client.ts';
import { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { type TransactionResult, writeAndWait } from '../internal/write.ts';

export type RegisterModelParameters = {
  grid: Address;
  name: string;
  kind: ModelKind;
  /** sha256 of the GGUF / checkpoint file. */
  weightsHash: Hex;
  /**
   * sha256 of the model's tokenizer file (the GGUF's metadata with no tensors: `extractTokenizerFile` /
   * `ensureModel().tokenizerHash` of @aipg/inference), which gateways load to tokenize prompts and render
   * output text. Required (non-zero) for text models; image models may pass the zero hash. Immutable once
   * registered.
   */
  tokenizerHash: Hex;
  parameterCount: bigint;
  minVramMb: number;
  /** AIPG wei per 1,000,000 input / output tokens (text), per megapixel-step (images). */
  rates: RateCard;
};

export type RegisterModelReturnType = TransactionResult & {
  /** `keccak256(abi.encode(name, weightsHash))` (core's `computeModelId`). */
  modelId: Hex;
};

/** `NotOwner`, `ModelExists`, `EmptyName`, `ZeroWeightsHash`, `ZeroTokenizerHash`, `InvalidRates`. */
export type RegisterModelErrorType = ChainError;

/** Registers a model and its rate card. Owner only. */
export async function registerModel(
  client: WriteClient,
  { grid, name, kind, weightsHash, tokenizerHash, parameterCount, minVramMb, rates }: RegisterModelParameters,
): Promise<RegisterModelReturnType> {
  const receipt = await writeAndWait(client, 'registerModel', {
    address: grid,
    abi: gridAbi,
    functionName: 'registerModel',
    args: [name, modelKindToUint[kind], weightsHash, tokenizerHash, parameterCount, minVramMb, rates],
  });
  const [event] = parseEventLogs({ abi: gridAbi, logs: receipt.logs, eventName: 'ModelRegistered' });
  if (!event) {
    throw new ChainError('registerModel: no ModelRegistered event in the receipt', { code: 'RPC_ERROR' });
  }
  return { hash: receipt.transactionHash, blockNumber: receipt.blockNumber, modelId: event.args.modelId };
}
