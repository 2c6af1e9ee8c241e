/**
 * Dishonest backends for the devnet's red team (`aipg devnet --adversary <kind>`). Each wraps a real
 * backend. Most lie in a way the gateway's receipt checks cannot see: the gateway verifies that the
 * receipt's hashes and units commit to the token ids the worker returns (and that the prompt ids
 * are its own), so those lies are self-consistent (streamed ids = the result, finish within
 * max_tokens) and only a validator that re-scores the job with the registered model can catch them
 * (docs/DESIGN.md §5). Two exist to prove the gateway's own checks instead:
 *
 * - `substitute`: runs another, cheaper model (`inner`) and claims the registered one (`claimed`).
 *   Both must share the vocabulary and chat template (the generated presets do), so the prompt ids
 *   are the gateway's and only the model's distribution gives it away.
 * - `truncate`: generates honestly, then keeps about half of the output (at least one token, no
 *   end token) and claims a `stop` finish: saves compute on long jobs, the user gets less.
 * - `fabricate`: runs no model at all: random ordinary word pieces and an end token, `stop`.
 * - `inflate`: generates honestly, then bills more tokens than ran: end tokens appended after the
 *   real end token (they decode to nothing, so the user sees the honest text); when the output has
 *   no room left (a `length` finish) the prompt ids are reported twice instead (which, since
 *   protocol v3, the gateway refuses itself: the prompt ids are not its own).
 * - `text-injector`: runs, commits and signs the honest ids, but adds a `text` field (the old
 *   protocol's) with an injected line to every token frame and to the result frame. The gateway
 *   renders what the user reads from the signed ids and ignores any text a worker sends: the user
 *   must never see the line.
 * - `prompt-overbiller`: runs the job honestly but claims a prompt 51× the gateway's (its ids
 *   followed by 50× as many more valid ids), with `inputUnits`, `requestHash` and `fee` consistent
 *   and signed: a billing lie the gateway must refuse before billing (the prompt ids are not the
 *   ones it sent).
 * - `twin-4bit`, `twin-5bit`, `twin-6bit`: a substitute whose `inner` runs a near copy of the
 *   registered model (its weights re-quantized to 4, 5 or 6 bits: smaller, cheaper, almost the same
 *   answers). Only the accumulated drift over a long output betrays it.
 * - `system-prompt-dropper`: runs a chat job without its system message (cheaper, and the operator's
 *   instructions ignored) but commits the gateway's full prompt ids, so the gateway's check passes;
 *   on a model that reads its context (the `context` preset) the output gives it away.
 * - `sybil-scorer`: serves jobs honestly but lies when the gateway asks it to score another worker's
 *   output for a validator's cross-check (signed, as every score): it reports each claimed token as
 *   improbable, to get an honest worker failed. One scorer's word never fails a worker: a second drawn
 *   scorer must agree.
 *
 * Devnet only: the factory refuses to build one unless the caller passes `{ devnet: true }`.
 */
import { BaseError, type FinishReason, MAX_PROMPT_TOKENS } from '@aipg/core';
import type { Tokenizer } from '@aipg/inference';
import type {
  BackendModel,
  GenerateRequest,
  GenerateResult,
  InferenceBackend,
  JobFrame,
  ScoreRequest,
  ScoreResult,
} from '../backends/types.ts';

export const ADVERSARY_KINDS = [
  'substitute',
  'truncate',
  'fabricate',
  'inflate',
  'text-injector',
  'prompt-overbiller',
  'twin-4bit',
  'twin-5bit',
  'twin-6bit',
  'system-prompt-dropper',
  'sybil-scorer',
] as const;
export type AdversaryKind = (typeof ADVERSARY_KINDS)[number];

/** Kinds that run another model (`inner`) under the registered one's identity (`claimed`). */
export const SUBSTITUTE_KINDS = [
  'substitute',
  'twin-4bit',
  'twin-5bit',
  'twin-6bit',
] as const satisfies readonly AdversaryKind[];

/** Whether `kind` runs another model under the registered one's identity. */
export const isSubstitute = (kind: AdversaryKind): kind is (typeof SUBSTITUTE_KINDS)[number] =>
  (SUBSTITUTE_KINDS as readonly AdversaryKind[]).includes(kind);

/** The re-quantization bits of a twin kind (`twin-6bit` → 6). */
export const twinBits = (kind: AdversaryKind): number | undefined => {
  const m = /^twin-(\d)bit$/.exec(kind);
  return m ? Number(m[1]) : undefined;
};

/** What the adversary needs of the model's tokenizer (the llama-cpp backend's engine has it all). */
export type AdversaryTokenizer = Pick<Tokenizer, 'vocabSize' | 'eosTokenId' | 'isEndToken' | 'tokenBytes'>;

/** The chat template's system role marker (@aipg/inference chat-template.ts), a control token. */
const SYSTEM_MARKER = '<|system|>';

/** The line `text-injector` puts into every frame's `text`. */
export const INJECTED_TEXT = '\n\nVisit https://evil.example to claim your prize!';

/** How many times the gateway's prompt length `prompt-overbiller` adds to the prompt it bills. */
export const OVERBILL_FACTOR = 50;

/** One lie told, for the devnet's log and for tests. */
export type AdversaryEvent = {
  kind: AdversaryKind;
  /**
   * What the worker really did (prompt and output ids as they ran; none for `fabricate`). For
   * `text-injector` the same as `claimed`: its lie is in the frames' text, not in the ids.
   */
  honest: { promptTokens: number; outputTokens: number; finishReason: FinishReason } | null;
  /** What it claims. */
  claimed: { promptTokens: number; outputTokens: number; finishReason: FinishReason };
};

export type CreateAdversaryBackendOptions = {
  /** Must be `true`: an adversary exists to be slashed on a devnet, never anywhere else. */
  devnet: boolean;
  /** Default: the inner backend's `engine` (the llama-cpp backend). */
  tokenizer?: AdversaryTokenizer | undefined;
  /** Uniform [0, 1) for `fabricate` (default `Math.random`). */
  random?: (() => number) | undefined;
  /** Called after every job with what was really done and what is claimed. */
  onJob?: ((event: AdversaryEvent) => void) | undefined;
};

export type AdversaryBackend = InferenceBackend & { readonly adversary: AdversaryKind };

export const AdversaryErrorCode = {
  /** Built without `{ devnet: true }`, with an unknown kind, or a substitution without a claimed model. */
  refused: 'ADVERSARY_REFUSED',
  /** The inner backend exposes no tokenizer and none was given. */
  noTokenizer: 'ADVERSARY_NO_TOKENIZER',
} as const;
export type AdversaryErrorCode = (typeof AdversaryErrorCode)[keyof typeof AdversaryErrorCode];

export class AdversaryError extends BaseError {
  override name = 'AdversaryError';
  declare readonly code: AdversaryErrorCode;
  constructor(message: string, options: { code: AdversaryErrorCode; details?: string }) {
    super(message, options);
  }
}

/**
 * Wraps `inner` in a dishonest backend of `kind`. `claimed` is the model identity announced to the
 * gateway: required for `substitute` (the registered model `inner` is not), else `inner.model`.
 */
export function createAdversaryBackend(
  inner: InferenceBackend,
  kind: AdversaryKind,
  claimed: BackendModel | undefined,
  options: CreateAdversaryBackendOptions,
): AdversaryBackend {
  if (options?.devnet !== true)
    throw new AdversaryError('A dishonest backend runs on a devnet only', {
      code: AdversaryErrorCode.refused,
      details: 'pass { devnet: true }: adversaries exist to be caught and slashed in tests and demos',
    });
  if (!ADVERSARY_KINDS.includes(kind))
    throw new AdversaryError(`Unknown adversary kind "${kind}"`, {
      code: AdversaryErrorCode.refused,
      details: `expected one of ${ADVERSARY_KINDS.join(', ')}`,
    });
  if (isSubstitute(kind) && !claimed)
    throw new AdversaryError('A substitution needs the claimed (registered) model', {
      code: AdversaryErrorCode.refused,
    });
  const random = options.random ?? Math.random;
  let words: number[] | undefined;

  const tokenizer = (): AdversaryTokenizer => {
    if (options.tokenizer) return options.tokenizer;
    const engine = (inner as { engine?: AdversaryTokenizer }).engine;
    if (!engine)
      throw new AdversaryError('The adversary needs the model tokenizer', {
        code: AdversaryErrorCode.noTokenizer,
        details: `the ${inner.kind} backend exposes none: pass options.tokenizer`,
      });
    return engine;
  };

  const report = (honest: AdversaryEvent['honest'], result: GenerateResult) =>
    options.onJob?.({
      kind,
      honest,
      claimed: {
        promptTokens: result.promptTokenIds.length,
        outputTokens: result.outputTokenIds.length,
        finishReason: result.finishReason,
      },
    });
  const honestOf = (r: GenerateResult): AdversaryEvent['honest'] => ({
    promptTokens: r.promptTokenIds.length,
    outputTokens: r.outputTokenIds.length,
    finishReason: r.finishReason,
  });

  /** Runs the inner backend without streaming: the lie is decided on the whole output. */
  const runBuffered = (request: GenerateRequest) => inner.generate({ ...request, onToken: undefined });

  /** Sends the result as one delta, as a backend that streams nothing until the end would. */
  const emitAll = (request: GenerateRequest, result: GenerateResult) => {
    if (request.onToken && result.outputTokenIds.length > 0)
      request.onToken({ tokenIds: [...result.outputTokenIds] });
  };

  async function truncate(request: GenerateRequest): Promise<GenerateResult> {
    const honest = await runBuffered(request);
    const t = tokenizer();
    const real = honest.outputTokenIds.filter((id) => !t.isEndToken(id));
    // About half, at least one token when there is one, never the end token: a `stop` finish
    // without its evidence.
    const keep = real.length === 0 ? 0 : Math.max(1, Math.floor(real.length / 2));
    const outputTokenIds = real.slice(0, keep);
    const result: GenerateResult = { ...honest, outputTokenIds, finishReason: 'stop' };
    emitAll(request, result);
    report(honestOf(honest), result);
    return result;
  }

  async function fabricate(request: GenerateRequest): Promise<GenerateResult> {
    const started = performance.now();
    const t = tokenizer();
    const promptTokenIds = [...request.promptTokenIds];
    words ??= wordPieces(t);
    const max = request.params.maxTokens;
    // 4–24 words and the end token, within max_tokens; with room for one token only, a `length`.
    const n = max <= 1 ? max : Math.min(max - 1, 4 + Math.floor(random() * 21));
    const outputTokenIds = Array.from({ length: n }, () => words![Math.floor(random() * words!.length)]!);
    let finishReason: FinishReason = 'length';
    if (outputTokenIds.length < max) {
      outputTokenIds.push(t.eosTokenId);
      finishReason = 'stop';
    }
    const ms = performance.now() - started;
    const result: GenerateResult = {
      promptTokenIds,
      outputTokenIds,
      finishReason,
      timings: { ttftMs: ms, totalMs: ms },
    };
    emitAll(request, result);
    report(null, result);
    return result;
  }

  async function inflate(request: GenerateRequest): Promise<GenerateResult> {
    // The honest part streams as it is generated; the padding follows in one more delta.
    const honest = await inner.generate(request);
    const t = tokenizer();
    const out = honest.outputTokenIds;
    const room = request.params.maxTokens - out.length;
    const endsWithEnd = out.length > 0 && t.isEndToken(out[out.length - 1]!);
    let result: GenerateResult;
    if (honest.finishReason === 'stop' && endsWithEnd && room > 0) {
      // Up to twice the real count, within max_tokens: more end tokens decode to nothing, so the
      // text (and what the user sees) stays the honest one.
      const padding = Array.from({ length: Math.min(room, out.length) }, () => t.eosTokenId);
      result = { ...honest, outputTokenIds: [...out, ...padding] };
      request.onToken?.({ tokenIds: padding });
    } else {
      // No room in the output (a `length` finish): bill the prompt twice instead.
      const p = honest.promptTokenIds;
      result = { ...honest, promptTokenIds: [...p, ...p.slice(1)] };
    }
    report(honestOf(honest), result);
    return result;
  }

  async function textInjector(request: GenerateRequest): Promise<GenerateResult> {
    // Entirely honest ids (streamed as generated); the lie is added to the frames (rewriteFrame).
    const honest = await inner.generate(request);
    report(honestOf(honest), honest);
    return honest;
  }

  let systemMarker: number | null | undefined;
  /** The prompt without its system turn (`<|system|>` … its end token), or null when it has none. */
  const withoutSystem = (prompt: readonly number[]): number[] | null => {
    const t = tokenizer();
    if (systemMarker === undefined) {
      const decoder = new TextDecoder();
      systemMarker = null;
      for (let id = 0; id < t.vocabSize && systemMarker === null; id++)
        if (decoder.decode(t.tokenBytes(id)) === SYSTEM_MARKER) systemMarker = id;
    }
    const start = systemMarker === null ? -1 : prompt.indexOf(systemMarker);
    if (start < 0) return null;
    let end = start + 1;
    while (end < prompt.length && !t.isEndToken(prompt[end]!)) end++;
    return [...prompt.slice(0, start), ...prompt.slice(end + 1)];
  };

  async function dropSystem(request: GenerateRequest): Promise<GenerateResult> {
    // Runs (and streams) the job without its system turn; the receipt names the gateway's prompt.
    const dropped = withoutSystem(request.promptTokenIds);
    const ran = await inner.generate(dropped ? { ...request, promptTokenIds: dropped } : request);
    const result: GenerateResult = { ...ran, promptTokenIds: [...request.promptTokenIds] };
    report(honestOf(ran), result);
    return result;
  }

  async function lyingScore(request: ScoreRequest): Promise<ScoreResult> {
    // The honest scores with every claimed token made improbable: the most probable other token takes
    // its probability and the claimed one drops to the bottom of the vocabulary.
    if (!inner.score)
      throw new AdversaryError('The sybil scorer needs a backend that scores', {
        code: AdversaryErrorCode.refused,
      });
    const honest = await inner.score(request);
    const vocab = tokenizer().vocabSize;
    return {
      positions: honest.positions.map((p) => {
        const others = p.top.filter((x) => x.tokenId !== p.tokenId);
        const probability = 1e-9;
        const top = others.map((x, i) =>
          i === 0 ? { ...x, probability: x.probability + p.probability } : x,
        );
        return { tokenId: p.tokenId, probability, rank: vocab - 1, top };
      }),
    };
  }

  async function overbill(request: GenerateRequest): Promise<GenerateResult> {
    // The output is honest and streams as generated; the prompt billed is not the one that ran.
    const honest = await inner.generate(request);
    const p = honest.promptTokenIds;
    // Any valid ids do: the prompt's own, over and over (within the protocol's largest prompt).
    const extra = Math.max(1, Math.min(OVERBILL_FACTOR * p.length, MAX_PROMPT_TOKENS - p.length));
    const padding = Array.from({ length: extra }, (_, i) => p[i % p.length]!);
    const result: GenerateResult = { ...honest, promptTokenIds: [...p, ...padding] };
    report(honestOf(honest), result);
    return result;
  }

  return {
    adversary: kind,
    get kind() {
      return inner.kind;
    },
    get model() {
      return claimed ?? inner.model;
    },
    get sampler() {
      return inner.sampler;
    },
    ...(kind === 'sybil-scorer' ? { score: lyingScore } : {}),
    ...(kind === 'text-injector'
      ? {
          rewriteFrame<F extends JobFrame>(frame: F): F {
            return { ...frame, text: INJECTED_TEXT };
          },
        }
      : {}),
    async load() {
      await inner.load();
      if (isSubstitute(kind) && claimed && inner.model.weightsHash === claimed.weightsHash)
        throw new AdversaryError('The substitute runs the claimed weights: nothing is substituted', {
          code: AdversaryErrorCode.refused,
          details: `both are ${claimed.weightsHash}`,
        });
    },
    generate(request) {
      switch (kind) {
        case 'substitute':
        case 'twin-4bit':
        case 'twin-5bit':
        case 'twin-6bit':
        case 'sybil-scorer':
          return inner.generate(request).then((r) => {
            report(honestOf(r), r);
            return r;
          });
        case 'truncate':
          return truncate(request);
        case 'fabricate':
          return fabricate(request);
        case 'inflate':
          return inflate(request);
        case 'text-injector':
          return textInjector(request);
        case 'prompt-overbiller':
          return overbill(request);
        case 'system-prompt-dropper':
          return dropSystem(request);
      }
    },
    close() {
      return inner.close();
    },
  };
}

/** Ids of the vocabulary's ordinary words (` word`): what a fabricated answer is made of. */
function wordPieces(t: AdversaryTokenizer): number[] {
  const decoder = new TextDecoder();
  const ids: number[] = [];
  for (let id = 0; id < t.vocabSize; id++) {
    if (t.isEndToken(id)) continue;
    if (/^ [a-z]{2,}$/.test(decoder.decode(t.tokenBytes(id)))) ids.push(id);
  }
  if (ids.length === 0)
    throw new AdversaryError('The vocabulary has no word pieces to fabricate with', {
      code: AdversaryErrorCode.noTokenizer,
    });
  return ids;
}
