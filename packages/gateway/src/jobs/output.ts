/**
 * What the user receives is rendered here, by the gateway, from the token ids the worker signs: the
 * model's registered tokenizer decodes them (UTF-8 completed, stop strings cut), as the worker's
 * engine (`OutputText`) and the validators do. A worker's own text never reaches a user, so text
 * other than the verified tokens cannot either. Before a receipt is accepted (and billed) its ids
 * must end the way generation ends, by the same rule the validators apply.
 */
import { CANONICAL_SAMPLER, type FinishReason, type SamplingParams } from '@aipg/core';
import { TerminationFault, terminationFaults } from '@aipg/inference';
import type { GatewayTokenizer } from '../tokenizers/index.ts';

export type RenderedOutput = { ok: true; text: string } | { ok: false; field: string; reason: string };

const REPLACEMENT = '\uFFFD';

/**
 * Streams text deltas from token ids as they arrive, in O(1) decoding work per token: each new id is
 * decoded in a window with the ids of the previous delta as context (their text is subtracted), the
 * way incremental detokenizers of serving engines do, so a leading space or a character split across
 * byte tokens comes out right without decoding the whole output again. Incomplete UTF-8 and text that
 * could still become a stop string are held back; when a stop string completes, nothing from it on
 * is shown (the final text, `renderOutput`, ends before it too).
 */
export function createOutputStream(tokenizer: GatewayTokenizer, stop: readonly string[]) {
  const ids: number[] = [];
  let prefixOffset = 0; // the context window's start
  let readOffset = 0; // ids decoded into `text` so far
  let text = '';
  let shown = 0;
  let ended = false;
  const longestStop = Math.max(0, ...stop.map((x) => x.length));

  /** Length of the longest suffix of `t` that is a proper prefix of a stop string. */
  const heldForStop = (t: string) => {
    let hold = 0;
    for (const x of stop)
      for (let l = Math.min(x.length - 1, t.length); l > hold; l--)
        if (t.endsWith(x.slice(0, l))) {
          hold = l;
          break;
        }
    return hold;
  };

  return {
    /** Adds streamed ids; returns the text now safe to show ('' when none). Ids after the end are dropped. */
    push(newIds: readonly number[]): string {
      if (ended) return '';
      for (const id of newIds) {
        if (!Number.isInteger(id) || id < 0 || id >= tokenizer.vocabSize || tokenizer.isEndToken(id)) {
          // The end: whatever is held back comes with the verified result. An invalid id: the
          // result will be refused; nothing more is shown.
          ended = true;
          return '';
        }
        ids.push(id);
        const context = tokenizer.detokenize(ids.slice(prefixOffset, readOffset));
        const decoded = tokenizer.detokenize(ids.slice(prefixOffset));
        if (decoded.length <= context.length || decoded.endsWith(REPLACEMENT)) continue;
        const before = text.length;
        text += decoded.slice(context.length);
        prefixOffset = readOffset;
        readOffset = ids.length;
        if (longestStop > 0) {
          const from = Math.max(0, before - longestStop + 1);
          const at = Math.min(...stop.map((x) => text.indexOf(x, from)).filter((i) => i >= 0));
          if (Number.isFinite(at)) {
            ended = true;
            const delta = text.slice(shown, at);
            shown = Math.max(shown, at);
            return delta;
          }
        }
      }
      const safe = text.length - heldForStop(text);
      if (safe <= shown) return '';
      const delta = text.slice(shown, safe);
      shown = safe;
      return delta;
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
  // One decode of the whole output (end tokens decode to nothing), cut before the first stop string:
  // the text OutputText gives the worker's engine, without its per-token re-decoding.
  const full = tokenizer.detokenize(ids.filter((id) => !tokenizer.isEndToken(id)));
  const cut = Math.min(...params.stop.map((x) => full.indexOf(x)).filter((i) => i >= 0));
  return { ok: true, text: Number.isFinite(cut) ? full.slice(0, cut) : full };
}
