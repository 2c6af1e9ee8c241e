import { encodeAbiParameters, type Hex, keccak256 } from 'viem';

export type ModelKind = 'text' | 'image';

/** Rate card in AIPG wei: per 1,000,000 input/output tokens (text), per megapixel-step (images). */
export type RateCard = {
  inputPerMTokens: bigint;
  outputPerMTokens: bigint;
  perMegapixelStep: bigint;
};

/** `modelId = keccak256(abi.encode(name, weightsHash))`, as ModelRegistryFacet computes it. */
export function computeModelId(name: string, weightsHash: Hex): Hex {
  return keccak256(encodeAbiParameters([{ type: 'string' }, { type: 'bytes32' }], [name, weightsHash]));
}

/** Contract enum `ModelKind` ↔ name. */
export const modelKindToUint = { text: 0, image: 1 } as const satisfies Record<ModelKind, number>;
export function modelKindFromUint(v: number): ModelKind {
  return v === 1 ? 'image' : 'text';
}
