/**
 * Turns generated token ids into text deltas that concatenate exactly to the final text:
 * - incomplete UTF-8 (a character split across byte tokens decodes to U+FFFD) is held back until
 *   the character completes;
 * - text that could still become a stop string is held back; when a stop string appears, the
 *   text ends just before it;
 * - every delta carries the ids that arrived since the previous one, so the deltas' ids also
 *   concatenate to `outputTokenIds` (end and stop-string tokens arrive with the last delta, whose
 *   text may be empty).
 * The text is always `detokenize(ids)` of the whole output (SentencePiece drops the first
 * token's leading space), recomputed per token: O(n²) in output length but a few µs per token
 * for the outputs served here, and exactly the text a validator gets from the same ids.
 */
export type TokenDelta = {
  text: string;
  tokenIds: number[];
  /** Probability of each of `tokenIds` under the model's raw distribution, when known. */
  probabilities?: number[];
};

const REPLACEMENT = '\uFFFD';

export class OutputText {
  /** Every generated id, end token included. */
  readonly ids: number[] = [];
  private readonly probabilities: number[] = [];
  private readonly textIds: number[] = [];
  private full = '';
  private stopAt: number | null = null;
  private emittedText = '';
  private emittedIds = 0;

  constructor(
    private readonly detokenize: (ids: readonly number[]) => string,
    private readonly stop: readonly string[],
    /** Decode per token (streaming or stop strings); otherwise only once at the end. */
    private readonly incremental: boolean,
  ) {}

  /** Adds one generated token; returns true when a stop string has appeared. */
  push(id: number, isEnd: boolean, probability?: number): boolean {
    this.ids.push(id);
    if (probability !== undefined) this.probabilities.push(probability);
    if (isEnd) return false;
    this.textIds.push(id);
    if (!this.incremental) return false;
    this.full = this.detokenize(this.textIds);
    for (const s of this.stop) {
      const at = this.full.indexOf(s);
      if (at >= 0 && (this.stopAt === null || at < this.stopAt)) this.stopAt = at;
    }
    return this.stopAt !== null;
  }

  /** The text ready to stream now, with the ids since the last delta; undefined when nothing new. */
  delta(): TokenDelta | undefined {
    let safe = this.full.length;
    while (safe > 0 && this.full[safe - 1] === REPLACEMENT) safe--;
    safe -= this.stopPrefixLength(this.full.slice(0, safe));
    if (safe <= this.emittedText.length) return undefined;
    return this.emit(this.full.slice(0, safe));
  }

  /** The final text: all output decoded, cut before the first stop string. */
  text(): string {
    const full = this.incremental ? this.full : this.detokenize(this.textIds);
    return this.stopAt === null ? full : full.slice(0, this.stopAt);
  }

  /** Whatever the deltas have not carried yet (undefined when nothing is left). */
  finalDelta(): TokenDelta | undefined {
    if (this.emittedIds === this.ids.length && this.text() === this.emittedText) return undefined;
    return this.emit(this.text());
  }

  private emit(upTo: string): TokenDelta {
    if (!upTo.startsWith(this.emittedText))
      throw new Error('internal: streamed text is not a prefix of the output');
    const delta: TokenDelta = {
      text: upTo.slice(this.emittedText.length),
      tokenIds: this.ids.slice(this.emittedIds),
    };
    if (this.probabilities.length === this.ids.length)
      delta.probabilities = this.probabilities.slice(this.emittedIds);
    this.emittedText = upTo;
    this.emittedIds = this.ids.length;
    return delta;
  }

  /** Length of the longest suffix of `text` that is a proper prefix of a stop string. */
  private stopPrefixLength(text: string): number {
    let hold = 0;
    for (const s of this.stop) {
      for (let l = Math.min(s.length - 1, text.length); l > hold; l--) {
        if (text.endsWith(s.slice(0, l))) {
          hold = l;
          break;
        }
      }
    }
    return hold;
  }
}
