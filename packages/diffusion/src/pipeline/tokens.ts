import { BOS_ID, EOS_ID, PAD_ID, TEXT_CONTEXT_LENGTH } from '../model/make-image-model.ts';

/** Prompt bytes the text encoder reads: its context less BOS and EOS; later bytes are dropped. */
export const MAX_PROMPT_BYTES = TEXT_CONTEXT_LENGTH - 2;

/**
 * The text encoder's input for a prompt given as byte ids (`imagePromptTokenIds` of @aipg/core):
 * BOS, the first 75 ids, EOS, then padding to 77. An empty prompt is BOS, EOS: the unconditional input.
 */
export function textEncoderInput(tokenIds: readonly number[], what = 'promptTokenIds'): BigInt64Array {
  const out = new BigInt64Array(TEXT_CONTEXT_LENGTH).fill(BigInt(PAD_ID));
  out[0] = BigInt(BOS_ID);
  const n = Math.min(tokenIds.length, MAX_PROMPT_BYTES);
  for (const [i, id] of tokenIds.entries()) {
    if (!Number.isInteger(id) || id < 0 || id > 255)
      throw new RangeError(`${what}[${i}] = ${id}: token ids are UTF-8 bytes (integers 0–255)`);
    if (i < n) out[1 + i] = BigInt(id);
  }
  out[1 + n] = BigInt(EOS_ID);
  return out;
}
