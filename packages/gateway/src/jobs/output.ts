/**
 * What the user receives is rendered here, by the gateway, from the token ids the worker signs: the
 * model's registered tokenizer decodes them (`OutputText`: UTF-8 completed, stop strings cut), the same
 * way the worker's engine and the validators do. A worker's own text never reaches a user, so text
 * other than the verified tokens cannot either. Before a receipt is accepted (and billed) its ids
 * must end the way generation ends, by the same rule the validators apply.
 */
import { CANONICAL_SAMPLER, type FinishReason, type SamplingParams } from '@aipg/core';
import { OutputText, TerminationFault, terminationFaults } from '@aipg/inference';
import type { GatewayTokenizer } from '../tokenizers/index.ts';

export type RenderedOutput = { ok: true; text: string } | { ok: false; field: string; reason: string };

/** Streams text deltas from token ids as they arrive (stop strings held back, then cut). */
export function createOutputStream(tokenizer: GatewayTokenizer, stop: readonly string[]) {
  const out = new OutputText(tokenizer.detokenize, stop, true);
  let ended = false;
  return {
    /** Adds streamed ids; returns the text now safe to show ('' when none). Ids after the end are dropped. */
    push(ids: readonly number[]): string {
      if (ended) return '';
      for (const id of ids) {
        if (!Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize) {
          ended = true; // the result will be refused; show nothing more
          return '';
        }
        const end = tokenizer.isEndToken(id);
        const stopped = out.push(id, end);
        if (end || stopped) {
          ended = true;
          // The text up to the stop string comes with the result (`renderOutput`), never past it.
          return '';
        }
      }
      return out.delta()?.text ?? '';
    },
  };
}

/**
 * The final text of an output, and whether its ids end the way generation ends
 * (`terminationFaults`, the rule the validators apply too): every id in the vocabulary; nothing after
 * the first end token or completed stop string; a `stop` finish ending with one of them, a `length`
 * finish with neither and exactly `maxTokens` tokens.
 */
export function renderOutput(
  tokenizer: GatewayTokenizer,
  output: {
    outputTokenIds: readonly number[];
    finishReason: FinishReason;
    promptTokenIds: readonly number[];
    sampler: string;
  },
  params: Pick<SamplingParams, 'stop' | 'maxTokens'>,
): RenderedOutput {
  const ids = output.outputTokenIds;
  const bad = ids.find((id) => !Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize);
  if (bad !== undefined)
    return { ok: false, field: 'outputTokenIds', reason: `token id ${bad} is not in the model's vocabulary` };
  const [fault] = terminationFaults(
    {
      outputTokenIds: ids,
      finishReason: output.finishReason,
      params,
      promptTokenIds: output.promptTokenIds,
      canonical: output.sampler === CANONICAL_SAMPLER,
    },
    tokenizer,
  );
  if (fault) {
    const field =
      fault.code === TerminationFault.stopWithoutEnd || fault.code === TerminationFault.lengthEarly
        ? 'finishReason'
        : 'outputTokenIds';
    return { ok: false, field, reason: fault.detail };
  }
  const out = new OutputText(tokenizer.detokenize, params.stop, true);
  for (const id of ids) out.push(id, tokenizer.isEndToken(id));
  return { ok: true, text: out.text() };
}
