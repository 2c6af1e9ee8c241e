/**
 * How a generation ends, as a rule on its token ids: the one place both the gateway (before it
 * accepts a receipt and bills it) and the validators (before they attest) decide whether an output
 * stops where generation stops. Codes are stable: the validator reports them as hard reasons.
 *
 * - at most `maxTokens` tokens;
 * - nothing after the first end token, nor after the token that completes a stop string;
 * - a `length` finish has exactly `maxTokens` tokens and no end token;
 * - a `stop` finish ends with evidence: an end token, or a stop string completed by its last token.
 *
 * Stop strings: engines decode the first output token with or without its leading space. OutputText
 * (the canonical sampler's engine, and the Ollama backend) decodes the output alone, where
 * SentencePiece drops the space; servers that decode the output as a continuation of the prompt
 * (vLLM) keep it. So a stop string starting with a space can complete on the very first token in
 * the second decoding only. A job of the canonical sampler is held to its own decoding; for another
 * engine's sampler both count, and each rule asks whether the output is consistent with ONE of them
 * (an early stop only if both decodings show one; the last token's stop if either does). Accepting
 * either decoding for every worker would let a canonical worker claim the other decoding's early
 * stop and end after one token.
 */
import type { FinishReason } from '@aipg/core';

export const TerminationFault = {
  /** More output tokens than `maxTokens`. */
  tooLong: 'OUTPUT_TOO_LONG',
  /** Tokens after an end token (generation stops at the first one). */
  afterEnd: 'TOKEN_AFTER_END',
  /** Tokens after a stop string appeared (generation stops when one completes). */
  afterStop: 'TOKEN_AFTER_STOP',
  /** A `length` finish with fewer than `maxTokens` tokens (truncated). */
  lengthEarly: 'LENGTH_BEFORE_MAX',
  /** A `stop` finish that ends with neither an end token nor a stop string (truncated). */
  stopWithoutEnd: 'STOP_WITHOUT_END',
} as const;
export type TerminationFaultCode = (typeof TerminationFault)[keyof typeof TerminationFault];

export type TerminationFinding = { code: TerminationFaultCode; detail: string; position?: number };

/** What the rule needs of a tokenizer. */
export type TerminationTokenizer = {
  isEndToken(id: number): boolean;
  detokenize(ids: readonly number[]): string;
};

export type TerminationInput = {
  outputTokenIds: readonly number[];
  finishReason: FinishReason;
  params: { maxTokens: number; stop: readonly string[] };
  /** The prompt ids (their last one is the context of the continuation decoding). */
  promptTokenIds: readonly number[];
  /** The job ran on the canonical sampler's engine: only its own decoding counts. */
  canonical: boolean;
};

/** Every way the output breaks the rule (empty when it ends as generation ends). */
export function terminationFaults(job: TerminationInput, model: TerminationTokenizer): TerminationFinding[] {
  const { params, finishReason } = job;
  const output = job.outputTokenIds;
  const n = output.length;
  const found: TerminationFinding[] = [];
  if (n > params.maxTokens)
    found.push({
      code: TerminationFault.tooLong,
      detail: `${n} output tokens, max_tokens ${params.maxTokens}`,
    });
  const firstEnd = output.findIndex((id) => model.isEndToken(id));
  const lastIsEnd = n > 0 && firstEnd === n - 1;
  if (firstEnd >= 0 && (finishReason === 'length' || firstEnd < n - 1))
    found.push({
      code: TerminationFault.afterEnd,
      detail: `end token ${output[firstEnd]} at position ${firstEnd}, ${n - 1 - firstEnd} more tokens, finish ${finishReason}`,
      position: firstEnd,
    });
  const decodings: (readonly number[])[] = job.canonical ? [[]] : [[], job.promptTokenIds.slice(-1)];
  const stops =
    params.stop.length > 0
      ? decodings.map((context) => firstStopIndex(output, params.stop, model, context))
      : [-1];
  const early = stops.every((i) => i >= 0 && (finishReason === 'length' || i < n - 1));
  if (early) {
    const stopAt = Math.max(...stops);
    found.push({
      code: TerminationFault.afterStop,
      detail: `a stop string completes at position ${stopAt}, ${n - 1 - stopAt} more tokens, finish ${finishReason}`,
      position: stopAt,
    });
  }
  const stopEvidence = stops.some((i) => i >= 0 && i === n - 1);
  if (finishReason === 'length' && n < params.maxTokens)
    found.push({
      code: TerminationFault.lengthEarly,
      detail: `finish length after ${n} tokens, max_tokens ${params.maxTokens}`,
    });
  if (finishReason === 'stop' && !lastIsEnd && !stopEvidence && firstEnd < 0)
    found.push({
      code: TerminationFault.stopWithoutEnd,
      detail:
        n === 0
          ? 'finish stop with no output token'
          : `finish stop, but the last token ${output[n - 1]} is not an end token and completes no stop string`,
    });
  return found;
}

/** Index of the token after which the decoded output first contains a stop string, else -1. */
function firstStopIndex(
  ids: readonly number[],
  stop: readonly string[],
  model: TerminationTokenizer,
  context: readonly number[],
): number {
  // End tokens decode to nothing and are never part of a stop string. With a context token the
  // output is decoded as its continuation (its first token keeps a leading space).
  const output = ids.map((id) => (model.isEndToken(id) ? -1 : id));
  const prefix = context.length > 0 ? model.detokenize(context) : '';
  const decode = (part: number[]) => {
    if (context.length === 0) return model.detokenize(part);
    const t = model.detokenize([...context, ...part]);
    return t.startsWith(prefix) ? t.slice(prefix.length) : t;
  };
  const text = (upTo: number) => decode(output.slice(0, upTo).filter((id) => id >= 0));
  const full = text(output.length);
  if (!stop.some((s) => full.includes(s))) return -1;
  // The usual case, in O(n): the last token completes the stop string. A shorter prefix decodes to a
  // prefix of this text but for trailing U+FFFD (a character split across byte tokens), so unless a
  // stop string holds U+FFFD, no earlier token can complete one when all but the last do not.
  const last = output.findLastIndex((id) => id >= 0);
  if (last >= 0 && !stop.some((s) => s.includes('\uFFFD'))) {
    const before = text(last);
    if (!stop.some((s) => before.includes(s))) return last;
  }
  // Binary search is unsafe (decoding is not monotone under UTF-8 splits): scan, O(n²) decoding
  // of outputs of at most max_tokens ids.
  for (let i = 0; i < output.length; i++) {
    if (output[i]! < 0) continue;
    const upTo = text(i + 1);
    if (stop.some((s) => upTo.includes(s))) return i;
  }
  return -1;
}
