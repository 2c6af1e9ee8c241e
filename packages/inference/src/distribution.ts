/**
 * Next-token distributions read from llama.cpp without per-position copies, for generation and
 * the validator's teacher-forced pass (`engine.score`).
 *
 * node-llama-cpp's public `controlledEvaluate` with `generateNext: { probabilities: true }` hands each
 * position's distribution over as a `Map` of the whole vocabulary, and sets up a fresh native sampler
 * (config, lock, disposal) for every call. Its native layer first returns the distribution as a
 * flat JS array `[id₀, p₀, id₁, p₁, …]` (sorted by logit, so probability descending), and the Map is
 * built from that array. The reader takes the same array straight from the native sampler (one
 * greedy sampler per sequence, configured once), so the values are the very numbers the Map would
 * hold, in the same order. The native pass itself still builds that array per position: llama.cpp's
 * softmax, a sort of the vocabulary and 2 × vocabulary JS numbers, which node-llama-cpp offers no way
 * around (its only other full-vocabulary output, raw logits, has the same shape and would need the
 * exact float32 `expf` to turn into the same probabilities).
 *
 * The direct path uses node-llama-cpp internals (3.x): it is taken only when they are all there, and
 * otherwise the reader falls back to the public API, with the same results
 * (test/engine.test.ts pins both against a straightforward `controlledEvaluate` computation).
 */
import type { LlamaContextSequence, LlamaModel } from 'node-llama-cpp';
import type { Distribution } from './sampler.ts';

/**
 * One position's distribution as llama.cpp returns it: `[id₀, p₀, id₁, p₁, …]` over the whole
 * vocabulary, probability descending (llama.cpp's order among ties).
 */
export type RawDistribution = readonly number[];

export type DistributionReader = {
  /** Whether distributions come straight from the native sampler (false: the public-API fallback). */
  readonly direct: boolean;
  /**
   * Evaluates `tokens` on `seq` (appended to its state) and calls `visit(i, dist)` in order for every
   * `i` from `from` to the last token, `dist` being the distribution after `tokens[0..i]`. Each array
   * is handed over as it arrives; nothing is kept once `visit` returns (unless `visit` keeps it).
   */
  read(
    seq: LlamaContextSequence,
    tokens: readonly number[],
    from: number,
    visit: (index: number, dist: RawDistribution) => void,
  ): Promise<void>;
  /** Frees the native samplers; call after the sequences' last `read` has settled. */
  dispose(): void;
};

// --- node-llama-cpp internals the direct path uses (node-llama-cpp 3.x, checked at runtime) ---------

type NativeSampler = { applyConfig(config: object): void; dispose(): void };
type NativeSampleResult = [token: number, probabilities?: number[]];
type SequenceInternals = {
  _decodeTokens(
    tokens: number[],
    logits: boolean[],
    evaluationPriority: number,
    tokenMeter: unknown,
    contextShiftOptions: { size: unknown; strategy: unknown },
    logitDataMapper: (batchLogitIndex: number, tokenIndex: number) => unknown,
    afterBatchAction?: (sequenceStateLength: number) => unknown,
  ): Promise<unknown[]>;
  _resolveSamplerConfig(options: object): object;
  _tokenMeter: unknown;
  _contextShift: { size: unknown; strategy: unknown };
  _takeIntervalCheckpointIfNeededAfterBatch?: (sequenceStateLength: number) => unknown;
  _context: {
    _ctx: {
      sampleToken(
        batchLogitIndex: number,
        sampler: NativeSampler,
        probabilities: boolean,
        confidence: boolean,
        logits: boolean,
        totalLogitWeight: boolean,
      ): Promise<NativeSampleResult>;
    };
  };
};
type ModelInternals = {
  _model: unknown;
  _llama: { _bindings: { AddonSampler: new (model: unknown) => NativeSampler } };
};

/** node-llama-cpp's default evaluation priority (what `controlledEvaluate` uses). */
const EVALUATION_PRIORITY = 5;

function sequenceInternals(seq: LlamaContextSequence): SequenceInternals | undefined {
  const s = seq as unknown as Partial<SequenceInternals>;
  const ok =
    typeof s._decodeTokens === 'function' &&
    typeof s._resolveSamplerConfig === 'function' &&
    s._tokenMeter != null &&
    s._contextShift != null &&
    typeof s._context?._ctx?.sampleToken === 'function';
  return ok ? (s as SequenceInternals) : undefined;
}

function modelInternals(model: LlamaModel): ModelInternals | undefined {
  const m = model as unknown as Partial<ModelInternals>;
  return m._model != null && typeof m._llama?._bindings?.AddonSampler === 'function'
    ? (m as ModelInternals)
    : undefined;
}

/**
 * A reader for `model`'s sequences. `direct: false` forces the public-API path (for tests); the
 * default takes the direct path when node-llama-cpp's internals are as expected.
 */
export function createDistributionReader(
  model: LlamaModel,
  sequences: readonly LlamaContextSequence[],
  options: { vocabSize: number; direct?: boolean | undefined },
): DistributionReader {
  const m = modelInternals(model);
  const internals = new Map<LlamaContextSequence, SequenceInternals>();
  for (const seq of sequences) {
    const s = sequenceInternals(seq);
    if (s) internals.set(seq, s);
  }
  const direct = options.direct !== false && m !== undefined && internals.size === sequences.length;
  if (!direct) {
    // The public API returns every marked position's Map at once: evaluate in chunks of about 4M
    // numbers along the same sequence (still one forward pass over the tokens).
    const chunk = Math.max(1, Math.floor(4_000_000 / options.vocabSize));
    return {
      direct: false,
      async read(seq, tokens, from, visit) {
        let start = 0; // the next token to evaluate
        while (start < tokens.length) {
          const end = Math.min(Math.max(start, from) + chunk, tokens.length);
          const first = Math.max(0, from - start); // first marked token of the chunk
          await readPublic(seq, tokens.slice(start, end), first, (i, d) => visit(start + i, d));
          start = end;
        }
      },
      dispose: () => {},
    };
  }

  // One greedy sampler per sequence, with the config `controlledEvaluate` applies for
  // `generateNext` without sampling options (temperature 0: a chain of the greedy sampler alone, which
  // leaves the logits as they are and keeps no state between tokens). A sequence runs one job at a time,
  // and its positions are sampled one after another, so a sampler is never used concurrently.
  const samplers = new Map<LlamaContextSequence, NativeSampler>();
  const samplerFor = (seq: LlamaContextSequence, s: SequenceInternals) => {
    let sampler = samplers.get(seq);
    if (!sampler) {
      sampler = new m._llama._bindings.AddonSampler(m._model);
      sampler.applyConfig(s._resolveSamplerConfig({}));
      samplers.set(seq, sampler);
    }
    return sampler;
  };

  async function read(
    seq: LlamaContextSequence,
    tokens: readonly number[],
    from: number,
    visit: (index: number, dist: RawDistribution) => void,
  ) {
    const s = internals.get(seq);
    if (!s) throw new Error('internal: a sequence the distribution reader does not know');
    const sampler = samplerFor(seq, s);
    const native = s._context._ctx;
    // The mapper runs once per marked token, in order: node-llama-cpp chains the promises it returns
    // and awaits them before it decodes the next batch (whose logits would replace these). They never
    // reject (node-llama-cpp's batch loop would not hand a rejection back to this call): the first
    // failure is kept and thrown once the evaluation is over. Unlike `controlledEvaluate` this takes
    // neither the sequence's evaluation lock nor a token predictor's abort: the engine hands a sequence
    // to one job at a time (SequencePool) and sets no token predictor.
    let failure: { error: unknown } | undefined;
    let last: Promise<unknown> = Promise.resolve();
    try {
      await s._decodeTokens(
        [...tokens],
        tokens.map((_, i) => i >= from),
        EVALUATION_PRIORITY,
        s._tokenMeter,
        { size: s._contextShift.size, strategy: s._contextShift.strategy },
        (batchLogitIndex, tokenIndex) => {
          last = native.sampleToken(batchLogitIndex, sampler, true, false, false, false).then(
            ([, dist]) => {
              if (failure) return;
              try {
                if (!dist) throw new Error('internal: llama.cpp returned no distribution');
                visit(tokenIndex, dist);
              } catch (error) {
                failure = { error };
              }
            },
            (error: unknown) => {
              failure ??= { error };
            },
          );
          return last;
        },
        s._takeIntervalCheckpointIfNeededAfterBatch,
      );
    } finally {
      // A failed decode must not leave a native sample running on a sampler that is disposed later.
      await last;
    }
    if (failure) throw failure.error;
  }

  return {
    direct: true,
    read,
    dispose() {
      for (const sampler of samplers.values()) sampler.dispose();
      samplers.clear();
    },
  };
}

/** The public API: one Map per position, flattened into llama.cpp's array (same numbers, same order). */
async function readPublic(
  seq: LlamaContextSequence,
  tokens: readonly number[],
  from: number,
  visit: (index: number, dist: RawDistribution) => void,
) {
  const items = tokens.map((t, i) =>
    i >= from ? ([t, { generateNext: { probabilities: true } }] as const) : t,
  );
  const results = await seq.controlledEvaluate(items as Parameters<typeof seq.controlledEvaluate>[0]);
  for (let i = from; i < tokens.length; i++) {
    const map = results[i]?.next.probabilities;
    if (!map) throw new Error('internal: llama.cpp returned no distribution');
    const flat = new Array<number>(2 * map.size);
    let k = 0;
    for (const [id, p] of map) {
      flat[k++] = id;
      flat[k++] = p;
    }
    visit(i, flat);
  }
}

// --- reading a RawDistribution without copying it ---------------------------------------------------

/** Probability of `id` (0 when absent). */
export function probabilityOf(d: RawDistribution, id: number): number {
  for (let i = 0; i < d.length; i += 2) if (d[i] === id) return d[i + 1]!;
  return 0;
}

/** Position of `id` (probability `p`) in canonical order: probability descending, ties by id ascending. */
export function rankOf(d: RawDistribution, id: number, p: number): number {
  let rank = 0;
  for (let i = 0; i < d.length; i += 2) {
    const q = d[i + 1]!;
    if (q > p || (q === p && d[i]! < id)) rank++;
  }
  return rank;
}

/** The first `k` entries (llama.cpp's order), reported in canonical order. */
export function topTokens(d: RawDistribution, k: number): { tokenId: number; probability: number }[] {
  const n = Math.min(k, d.length / 2);
  const top: { tokenId: number; probability: number }[] = [];
  for (let i = 0; i < n; i++) top.push({ tokenId: d[2 * i]!, probability: d[2 * i + 1]! });
  return top.sort((a, b) => b.probability - a.probability || a.tokenId - b.tokenId);
}

/** The whole distribution in the sampler's form (one copy, for seeded sampling and replay). */
export function toDistribution(d: RawDistribution): Distribution {
  const n = d.length / 2;
  const ids = new Uint32Array(n);
  const probs = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    ids[i] = d[2 * i]!;
    probs[i] = d[2 * i + 1]!;
  }
  return { ids, probs };
}

/**
 * What the greedy sampler (and its replay check for `claimed`) reads of `d`, as a small Distribution
 * with the same answer. The sampler's greedy pick is the lowest id of the leading run of entries equal
 * to the first probability (sampler.ts canonicalOrder: it orders equal runs only), and greedy replay
 * also reads the claimed token's probability. So the leading run, plus `claimed` with its probability
 * when it lies below that run, is all of `d` they depend on. Returns undefined when the claimed token
 * would not sit strictly below the run (never for llama.cpp's sorted output): use the whole distribution.
 */
export function greedyView(d: RawDistribution, claimed?: number): Distribution | undefined {
  const first = d[1]!;
  let end = 2;
  while (end < d.length && d[end + 1] === first) end += 2;
  const ids: number[] = [];
  const probs: number[] = [];
  let hasClaimed = false;
  for (let i = 0; i < end; i += 2) {
    ids.push(d[i]!);
    probs.push(d[i + 1]!);
    if (d[i] === claimed) hasClaimed = true;
  }
  if (claimed !== undefined && !hasClaimed) {
    const p = probabilityOf(d, claimed);
    if (!(p < first)) return undefined;
    ids.push(claimed);
    probs.push(p);
  }
  return { ids, probs };
}
