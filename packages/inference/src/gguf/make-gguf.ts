/**
 * A pure, deterministic GGUF v3 writer for small llama-architecture models with seeded random
 * weights (F32 or Q8_0) and a SentencePiece vocabulary with byte fallback. Same config → same
 * bytes on every machine: weights come from a 32-bit integer PRNG and only IEEE-exact arithmetic
 * (+, −, ×, ÷, sqrt, rounding), never Math.log/cos/exp whose last bits may differ between builds.
 *
 * The weights are random but carry a planted structure (see vocab.ts): token embeddings point
 * along their word class's axis and the output matrix maps each class to a grammar of likely next
 * classes, so generated text is sentence-like and `</s>` (after a full stop) is a likely token.
 * The transformer blocks add context-dependent noise on top, so different prompts continue
 * differently.
 */
import { CHAT_TEMPLATE } from '../chat-template.ts';
import {
  BOS_ID,
  buildVocab,
  contextClass,
  EOS_ID,
  GRAMMAR,
  JUNK_WEIGHT,
  TokenType,
  UNK_ID,
  UNLISTED_WEIGHT,
  type VocabEntry,
  WORD_CLASSES,
  type WordClass,
} from './vocab.ts';

export type GgufFileType = 'f32' | 'q8_0';

export type GgufConfig = {
  /** `general.name`. */
  name: string;
  embeddingLength: number;
  blockCount: number;
  headCount: number;
  headCountKv: number;
  feedForwardLength: number;
  contextLength: number;
  /** Q8_0 applies to 2-D tensors whose rows are a multiple of 32 wide; the rest stay F32. */
  fileType: GgufFileType;
  seed: number;
  /** Standard deviation of the attention/FFN weights: the size of the context-dependent noise. */
  blockStd: number;
  /** `tokenizer.chat_template`; default the project's CHAT_TEMPLATE. */
  chatTemplate?: string | undefined;
  /** A planted context channel (the `context` preset); none by default. */
  context?: GgufContextConfig | undefined;
};

/**
 * Context channels planted in the first block, so that the prompt (a system message, earlier
 * turns) moves the next-token distribution by nats, as in a trained model; without them the blocks
 * are random noise of `blockStd` and the grammar reads only the previous token, so a model hardly
 * notices its prompt.
 * - Topics: every token belongs to one (words round-robin within their class, other tokens by id).
 *   Head 0 has no query, so it attends to every position so far equally and carries the topic
 *   shares of the whole context into the residual stream; the output layer adds `gain` nats times
 *   the share of a word's topic to its logit (tokens without a topic get the mean, so the
 *   grammar's class balance holds while no topic dominates). The text drifts towards the topics of
 *   its prompt and of what it has written.
 * - The system message: head 1 attends (almost) only to a `<|system|>` token wherever it is, and
 *   writes whether there is one; the output layer adds `systemGain` nats to the words of topic 0
 *   when there is. A system message sets the register of the whole answer, however long.
 */
export type GgufContextConfig = {
  /** Number of topics: at least 2, fewer than the head dimension − 2. */
  topics: number;
  /** Nats per unit topic share of the context (a share moving by 0.1 moves a word by gain/10). */
  gain: number;
  /** Nats added to the words of topic 0 when the prompt has a system message. */
  systemGain: number;
};

/**
 * One weight tensor as the file will store it, for `MakeGgufOptions.editWeights`. `data` holds the
 * stored values (a Q8_0 tensor's already dequantized); `levels` is the largest integer of a Q8_0
 * block (127): with fewer, each block of 32 is re-quantized to the grid absmax·{−levels…levels}/levels,
 * still written as Q8_0 (each integer times ⌊127 / levels⌋, the scale divided by it), so llama.cpp runs
 * exactly those levels along the same kernels as the original. An F32 tensor with fewer `levels` is
 * re-quantized the same way and stored as F32 values.
 */
export type GgufTensorEdit = {
  readonly name: string;
  /** [ne0, ne1] for a matrix (row r = data[r·ne0, (r+1)·ne0)), [n] for a vector. */
  readonly dims: readonly number[];
  readonly type: 'f32' | 'q8_0';
  data: Float32Array;
  levels: number;
};

export type MakeGgufOptions = {
  /**
   * Edits the weights before they are written: twins of a model for tests and calibration
   * (re-quantized to fewer levels, noised), never a preset (their hashes are pinned).
   */
  editWeights?: ((tensors: GgufTensorEdit[]) => void) | undefined;
};

export type GgufModel = { bytes: Uint8Array; parameterCount: number; vocabSize: number };

const ALIGNMENT = 32;
const GGML_TYPE_F32 = 0;
const GGML_TYPE_Q8_0 = 8;
const GGUF_TYPE = { u32: 4, i32: 5, f32: 6, bool: 7, str: 8, arr: 9 } as const;

export function makeGguf(config: GgufConfig, options: MakeGgufOptions = {}): GgufModel {
  validate(config);
  const vocab = buildVocab();
  const tensors = buildTensors(config, vocab);
  if (config.context) plantContext(config, config.context, vocab, tensors);
  if (options.editWeights) editWeights(tensors, options.editWeights);
  const w = new Writer();

  type Kv =
    | [string, 'u32' | 'f32', number]
    | [string, 'bool', boolean]
    | [string, 'str', string]
    | [string, 'arr_str', readonly string[]]
    | [string, 'arr_f32' | 'arr_i32', readonly number[]];
  const kvs: Kv[] = [
    ['general.architecture', 'str', 'llama'],
    ['general.name', 'str', config.name],
    ['general.alignment', 'u32', ALIGNMENT],
    ['general.file_type', 'u32', config.fileType === 'q8_0' ? 7 : 0],
    ['llama.context_length', 'u32', config.contextLength],
    ['llama.embedding_length', 'u32', config.embeddingLength],
    ['llama.block_count', 'u32', config.blockCount],
    ['llama.feed_forward_length', 'u32', config.feedForwardLength],
    ['llama.attention.head_count', 'u32', config.headCount],
    ['llama.attention.head_count_kv', 'u32', config.headCountKv],
    ['llama.rope.dimension_count', 'u32', config.embeddingLength / config.headCount],
    ['llama.rope.freq_base', 'f32', 10000],
    ['llama.attention.layer_norm_rms_epsilon', 'f32', 1e-5],
    ['llama.vocab_size', 'u32', vocab.length],
    ['tokenizer.ggml.model', 'str', 'llama'],
    ['tokenizer.ggml.tokens', 'arr_str', vocab.map((v) => v.piece)],
    ['tokenizer.ggml.scores', 'arr_f32', vocab.map((v) => v.score)],
    ['tokenizer.ggml.token_type', 'arr_i32', vocab.map((v) => v.type)],
    ['tokenizer.ggml.bos_token_id', 'u32', BOS_ID],
    ['tokenizer.ggml.eos_token_id', 'u32', EOS_ID],
    ['tokenizer.ggml.unknown_token_id', 'u32', UNK_ID],
    ['tokenizer.ggml.add_bos_token', 'bool', true],
    ['tokenizer.ggml.add_eos_token', 'bool', false],
    ['tokenizer.ggml.add_space_prefix', 'bool', true],
    ['tokenizer.chat_template', 'str', config.chatTemplate ?? CHAT_TEMPLATE],
  ];

  w.bytes(new TextEncoder().encode('GGUF'));
  w.u32(3);
  w.u64(tensors.length);
  w.u64(kvs.length);
  for (const [key, type, value] of kvs) {
    w.str(key);
    switch (type) {
      case 'u32':
        w.u32(GGUF_TYPE.u32);
        w.u32(value);
        break;
      case 'f32':
        w.u32(GGUF_TYPE.f32);
        w.f32(value);
        break;
      case 'bool':
        w.u32(GGUF_TYPE.bool);
        w.u8(value ? 1 : 0);
        break;
      case 'str':
        w.u32(GGUF_TYPE.str);
        w.str(value);
        break;
      case 'arr_str':
        w.u32(GGUF_TYPE.arr);
        w.u32(GGUF_TYPE.str);
        w.u64(value.length);
        for (const s of value) w.str(s);
        break;
      case 'arr_f32':
        w.u32(GGUF_TYPE.arr);
        w.u32(GGUF_TYPE.f32);
        w.u64(value.length);
        for (const x of value) w.f32(x);
        break;
      case 'arr_i32':
        w.u32(GGUF_TYPE.arr);
        w.u32(GGUF_TYPE.i32);
        w.u64(value.length);
        for (const x of value) w.i32(x);
        break;
    }
  }

  const encoded = tensors.map(encodeTensor);
  let offset = 0;
  for (const [i, t] of tensors.entries()) {
    w.str(t.name);
    w.u32(t.dims.length);
    for (const d of t.dims) w.u64(d);
    w.u32(t.q8 ? GGML_TYPE_Q8_0 : GGML_TYPE_F32);
    w.u64(offset);
    offset = alignUp(offset + encoded[i]!.length);
  }
  w.pad();
  for (const e of encoded) {
    w.bytes(e);
    w.pad();
  }
  return {
    bytes: w.finish(),
    parameterCount: tensors.reduce((n, t) => n + t.data.length, 0),
    vocabSize: vocab.length,
  };
}

function validate(c: GgufConfig): void {
  const ok =
    Number.isInteger(c.embeddingLength) &&
    c.embeddingLength > WORD_CLASSES.length + 1 &&
    c.embeddingLength % c.headCount === 0 &&
    c.headCount % c.headCountKv === 0 &&
    (c.embeddingLength / c.headCount) % 2 === 0 &&
    c.blockCount >= 1 &&
    c.feedForwardLength >= 1 &&
    c.contextLength >= 16 &&
    Number.isInteger(c.seed) &&
    (c.context === undefined ||
      (Number.isInteger(c.context.topics) &&
        c.context.topics >= 2 &&
        c.context.topics < c.embeddingLength / c.headCount - 2 &&
        c.headCount >= 2 &&
        c.headCount / c.headCountKv >= 2 &&
        c.embeddingLength > WORD_CLASSES.length + 1 + 2 * (c.context.topics + 1) &&
        Number.isFinite(c.context.gain) &&
        Number.isFinite(c.context.systemGain)));
  if (!ok) throw new RangeError(`invalid GGUF config: ${JSON.stringify(c)}`);
}

// ── weights ──────────────────────────────────────────────────────────────────────────────────

type Tensor = { name: string; dims: number[]; data: Float32Array; q8: boolean; levels?: number };

/** mulberry32: a 32-bit PRNG made of integer operations only. */
function prng(seed: number): () => number {
  let s = seed | 0;
  return () => {
    s = (s + 0x6d2b79f5) | 0;
    let t = Math.imul(s ^ (s >>> 15), 1 | s);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SQRT3 = Math.sqrt(3);

function buildTensors(c: GgufConfig, vocab: readonly VocabEntry[]): Tensor[] {
  const rnd = prng(c.seed);
  // Irwin–Hall approximation of a standard normal: four uniforms, mean 0, variance 1.
  const gauss = () => (rnd() + rnd() + rnd() + rnd() - 2) * SQRT3;
  const E = c.embeddingLength;
  const headDim = E / c.headCount;
  const kvDim = headDim * c.headCountKv;
  // Residual-stream layout: one axis per word class, one bias axis, the rest free (noise/context).
  const K = WORD_CLASSES.length;
  const BIAS = K;
  const free = E - K - 1;
  const tensors: Tensor[] = [];
  const q8able = (ne0: number) => c.fileType === 'q8_0' && ne0 % 32 === 0;
  // Row r of a [ne0, ne1] matrix produces output r. Blocks write only to the free axes of the
  // residual stream (rows ≤ BIAS stay zero): they perturb which word of a class comes next, with
  // the prompt as context, without overriding the planted grammar.
  const random = (name: string, ne0: number, ne1: number, std: number, writesResidual = false) => {
    const data = new Float32Array(ne0 * ne1);
    for (let i = 0; i < data.length; i++) data[i] = gauss() * std;
    if (writesResidual) data.fill(0, 0, (BIAS + 1) * ne0);
    tensors.push({ name, dims: [ne0, ne1], data, q8: q8able(ne0) });
  };
  const ones = (name: string, n: number) =>
    tensors.push({ name, dims: [n], data: new Float32Array(n).fill(1), q8: false });

  const classIndex = new Map<WordClass, number>(WORD_CLASSES.map((cls, i) => [cls, i]));
  const A = 1; // class-axis amplitude of an embedding
  const B = 1; // bias-axis amplitude
  const sigmaE = 1 / Math.sqrt(free); // free-axis noise: as much energy as one class axis
  const rms = Math.sqrt((A * A + B * B + 1) / E);
  const classSize = new Map<WordClass, number>();
  for (const v of vocab) classSize.set(v.cls, (classSize.get(v.cls) ?? 0) + 1);

  const embd = new Float32Array(E * vocab.length);
  for (const [id, v] of vocab.entries()) {
    const row = embd.subarray(id * E, (id + 1) * E);
    row[classIndex.get(contextClass(v))!] = A;
    row[BIAS] = B;
    for (let d = K + 1; d < E; d++) row[d] = gauss() * sigmaE;
  }
  tensors.push({ name: 'token_embd.weight', dims: [E, vocab.length], data: embd, q8: q8able(E) });

  for (let l = 0; l < c.blockCount; l++) {
    ones(`blk.${l}.attn_norm.weight`, E);
    random(`blk.${l}.attn_q.weight`, E, E, c.blockStd);
    random(`blk.${l}.attn_k.weight`, E, kvDim, c.blockStd);
    random(`blk.${l}.attn_v.weight`, E, kvDim, c.blockStd);
    random(`blk.${l}.attn_output.weight`, E, E, c.blockStd, true);
    ones(`blk.${l}.ffn_norm.weight`, E);
    random(`blk.${l}.ffn_gate.weight`, E, c.feedForwardLength, c.blockStd);
    random(`blk.${l}.ffn_up.weight`, E, c.feedForwardLength, c.blockStd);
    random(`blk.${l}.ffn_down.weight`, c.feedForwardLength, E, c.blockStd, true);
  }
  ones('output_norm.weight', E);

  // logit(j | prev i) ≈ GRAMMAR[class i][class j] − ln|class j| + token bias + noise, in nats,
  // for a residual stream ≈ the normalized embedding of i (what RMSNorm hands the output layer).
  const out = new Float32Array(E * vocab.length);
  const noiseNats = 0.8;
  const sigmaO = (noiseNats * rms) / (sigmaE * Math.sqrt(free));
  for (const [id, v] of vocab.entries()) {
    const row = out.subarray(id * E, (id + 1) * E);
    for (const from of WORD_CLASSES) {
      const weight =
        v.cls === 'junk' ? JUNK_WEIGHT : from === 'junk' ? 0 : (GRAMMAR[from]?.[v.cls] ?? UNLISTED_WEIGHT);
      row[classIndex.get(from)!] = (weight * rms) / A;
    }
    const bias = -lnApprox(classSize.get(v.cls)!) + gauss() * 0.5;
    row[BIAS] = (bias * rms) / B;
    for (let d = K + 1; d < E; d++) row[d] = gauss() * sigmaO;
  }
  tensors.push({ name: 'output.weight', dims: [E, vocab.length], data: out, q8: q8able(E) });
  return tensors;
}

/**
 * The context channels of `GgufContextConfig`, written over the generated weights (the draws of the
 * PRNG stay those of the base model). Residual-stream axes after the bias: T + 1 source axes (a
 * token's topic, and one for `<|system|>`, in its embedding) and T + 1 context axes (the topic
 * shares of the context, and whether it holds a system message: written by block 0's heads 0 and
 * 1, which share key/value head 0); blocks write none of them otherwise.
 */
function plantContext(
  c: GgufConfig,
  ctx: GgufContextConfig,
  vocab: readonly VocabEntry[],
  tensors: Tensor[],
) {
  const E = c.embeddingLength;
  const T = ctx.topics;
  const SRC = WORD_CLASSES.length + 1;
  const SRC_SYS = SRC + T;
  const CTX = SRC + T + 1;
  const CTX_SYS = CTX + T;
  const END = CTX + T + 1;
  const BIAS = WORD_CLASSES.length;
  const free = E - WORD_CLASSES.length - 1;
  const headDim = E / c.headCount;
  const tensor = (name: string) => tensors.find((t) => t.name === name)!;
  const rows = (t: Tensor, from: number, to: number) => t.data.fill(0, from * t.dims[0]!, to * t.dims[0]!);
  const system = vocab.findIndex((v) => v.piece === '<|system|>');

  // Topics: words round-robin within their class; every other token a source topic by id only.
  const source = new Int32Array(vocab.length);
  const output = new Int32Array(vocab.length).fill(-1);
  const seen = new Map<WordClass, number>();
  for (const [id, v] of vocab.entries()) {
    if (v.type === TokenType.normal && v.piece.startsWith('▁') && v.piece.length > 1) {
      const n = seen.get(v.cls) ?? 0;
      seen.set(v.cls, n + 1);
      output[id] = n % T;
      source[id] = n % T;
    } else source[id] = id % T;
  }

  // Embeddings: the source axes replace the noise there, with the same energy (so RMSNorm scales
  // the stream as before): amplitude s with s² = 2(T + 1)·σ², σ² = 1/free the noise per free axis.
  const s = Math.sqrt((2 * (T + 1)) / free);
  const rms = Math.sqrt(3 / E); // what RMSNorm divides by: class, bias and noise energy 1 each
  const embd = tensor('token_embd.weight');
  for (let id = 0; id < vocab.length; id++) {
    const row = embd.data.subarray(id * E, (id + 1) * E);
    row.fill(0, SRC, END);
    row[SRC + source[id]!] = s;
    if (id === system) row[SRC_SYS] = 1;
  }
  for (const t of tensors) if (/^blk\.\d+\.(attn_output|ffn_down)\.weight$/.test(t.name)) rows(t, SRC, END);

  const q = tensor('blk.0.attn_q.weight');
  const k = tensor('blk.0.attn_k.weight');
  const v = tensor('blk.0.attn_v.weight');
  const o = tensor('blk.0.attn_output.weight');
  const g = 0.1; // context axes ≤ g·(amplitude/rms): small beside the stream's norm
  // Head 0: no query (every score 0: equal attention to each position so far); value dims [0, T)
  // read the topic axes; the output projection writes dim t to context axis t.
  rows(q, 0, 2 * headDim);
  rows(v, 0, T + 1);
  for (let t = 0; t < T; t++) {
    v.data[t * E + SRC + t] = 1;
    o.data[(CTX + t) * E + t] = g;
  }
  // Head 1: query and key only in the slowest rotary pair (RoPE turns it by < 0.2 rad over 1,000
  // positions): the query reads the bias axis (every token), the key the system axis, so a
  // `<|system|>` token scores ~12 and every other 0: all the attention goes to it when there is
  // one. Value dim T reads the system axis; the output projection writes it to the system context
  // axis (0 without a system message: the average of zeros).
  const pair = headDim - 2;
  const rmsSystem = Math.sqrt(4 / E); // the `<|system|>` embedding carries one axis more
  rows(k, pair, headDim);
  k.data[pair * E + SRC_SYS] = 1;
  q.data[(headDim + pair) * E + BIAS] = 12 * Math.sqrt(headDim) * rms * rmsSystem;
  v.data[T * E + SRC_SYS] = 1;
  o.data[CTX_SYS * E + headDim + T] = g;

  // Output layer: logit += gain · share of the word's topic (tokens without a topic: the mean),
  // + systemGain for topic-0 words with a system message. A share σ reaches the normalized
  // stream as g·(s/rms)·σ/rms; the system flag as g·(1/rmsSystem)/rms.
  const w = (ctx.gain * rms * rms) / (g * s);
  const wSystem = (ctx.systemGain * rms * rmsSystem) / g;
  const out = tensor('output.weight');
  for (let id = 0; id < vocab.length; id++) {
    const row = out.data.subarray(id * E, (id + 1) * E);
    row.fill(0, SRC, END);
    if (output[id]! >= 0) row[CTX + output[id]!] = w;
    else row.fill(w / T, CTX, CTX + T);
    if (output[id] === 0) row[CTX_SYS] = wSystem;
  }
}

/** Hands the weights to `edit` as the file stores them, then writes what it left. */
function editWeights(tensors: Tensor[], edit: (tensors: GgufTensorEdit[]) => void): void {
  const views: GgufTensorEdit[] = tensors.map((t) => ({
    name: t.name,
    dims: [...t.dims],
    type: t.q8 ? 'q8_0' : 'f32',
    data: t.q8 ? dequantizeQ8(t.data) : t.data.slice(),
    levels: Q8_LEVELS,
  }));
  edit(views);
  for (const [i, t] of tensors.entries()) {
    const v = views[i]!;
    const levels = v.levels;
    if (v.data.length !== t.data.length || !Number.isInteger(levels) || levels < 1 || levels > Q8_LEVELS)
      throw new RangeError(`invalid edit of ${t.name}: ${v.data.length} values, ${levels} levels`);
    t.data = v.data;
    if (t.q8) t.levels = levels;
    else if (levels < Q8_LEVELS) t.data = requantizeBlocks(v.data, levels);
  }
}

/**
 * Blocks of 32 values quantized to ±levels by absmax and back: what a k-bit block (levels
 * 2^(k−1) − 1) stores, up to the f16 rounding of its scale.
 */
export function requantizeBlocks(data: Float32Array, levels: number): Float32Array {
  const out = new Float32Array(data.length);
  for (let b = 0; b < data.length; b += 32) {
    const end = Math.min(b + 32, data.length);
    let amax = 0;
    for (let j = b; j < end; j++) amax = Math.max(amax, Math.abs(data[j]!));
    const d = amax / levels;
    for (let j = b; j < end; j++)
      out[j] = d ? Math.max(-levels, Math.min(levels, Math.round(data[j]! / d))) * d : 0;
  }
  return out;
}

/**
 * ln(n) for a positive integer from exact arithmetic only (Math.log is not guaranteed to be
 * bit-identical across JS engines): n = 2^k·m with m in [1, 2), ln m = 2·atanh((m−1)/(m+1)).
 */
function lnApprox(n: number): number {
  let k = 0;
  let m = n;
  while (m >= 2) {
    m /= 2;
    k++;
  }
  return k * atanhLn(2) + atanhLn(m);
}

function atanhLn(m: number): number {
  const y = (m - 1) / (m + 1);
  const y2 = y * y;
  let term = y;
  let sum = 0;
  for (let i = 1; i < 80; i += 2) {
    sum += term / i;
    term *= y2;
  }
  return 2 * sum;
}

// ── encoding ─────────────────────────────────────────────────────────────────────────────────

const Q8_LEVELS = 127;

/**
 * Q8_0: blocks of 32 values as an f16 scale and 32 int8. A block of `levels` < 127 is quantized to
 * ±levels by absmax, each integer stored times m = ⌊127 / levels⌋ and the scale divided by m.
 */
function encodeTensor(t: Tensor): Uint8Array {
  if (!t.q8) return new Uint8Array(t.data.buffer, t.data.byteOffset, t.data.byteLength).slice();
  const levels = t.levels ?? Q8_LEVELS;
  const m = Math.floor(Q8_LEVELS / levels);
  const blocks = t.data.length / 32;
  const out = new Uint8Array(blocks * 34);
  const view = new DataView(out.buffer);
  for (let b = 0; b < blocks; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(t.data[b * 32 + j]!));
    const d = amax / levels;
    const inv = d ? 1 / d : 0;
    view.setUint16(b * 34, f32ToF16(d / m), true);
    for (let j = 0; j < 32; j++) {
      const q = Math.max(-levels, Math.min(levels, Math.round(t.data[b * 32 + j]! * inv)));
      view.setInt8(b * 34 + 2 + j, q * m);
    }
  }
  return out;
}

/** The values a Q8_0 tensor of `data` stores (what llama.cpp computes with). */
function dequantizeQ8(data: Float32Array): Float32Array {
  const out = new Float32Array(data.length);
  for (let b = 0; b < data.length / 32; b++) {
    let amax = 0;
    for (let j = 0; j < 32; j++) amax = Math.max(amax, Math.abs(data[b * 32 + j]!));
    const d = amax / Q8_LEVELS;
    const inv = d ? 1 / d : 0;
    const scale = f16ToF32(f32ToF16(d));
    for (let j = 0; j < 32; j++)
      out[b * 32 + j] =
        Math.max(-Q8_LEVELS, Math.min(Q8_LEVELS, Math.round(data[b * 32 + j]! * inv))) * scale;
  }
  return out;
}

function f16ToF32(h: number): number {
  const sign = h & 0x8000 ? -1 : 1;
  const e = (h >>> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return sign * m * 2 ** -24;
  return sign * (1 + m / 1024) * 2 ** (e - 15);
}

function f32ToF16(v: number): number {
  const x = new Uint32Array(new Float32Array([v]).buffer)[0]!;
  const sign = (x >>> 16) & 0x8000;
  const e = ((x >>> 23) & 0xff) - 127 + 15;
  const m = x & 0x7fffff;
  if (e <= 0) return sign;
  if (e >= 31) return sign | 0x7c00;
  let h = sign | (e << 10) | (m >> 13);
  if (m & 0x1000) h++;
  return h;
}

const alignUp = (n: number) => Math.ceil(n / ALIGNMENT) * ALIGNMENT;

class Writer {
  private chunks: Uint8Array[] = [];
  private size = 0;
  private readonly scratch = new DataView(new ArrayBuffer(8));
  private readonly encoder = new TextEncoder();

  bytes(b: Uint8Array): void {
    this.chunks.push(b);
    this.size += b.length;
  }
  private fixed(n: number, set: (v: DataView) => void): void {
    set(this.scratch);
    this.bytes(new Uint8Array(this.scratch.buffer.slice(0, n)));
  }
  u8(v: number): void {
    this.bytes(Uint8Array.of(v));
  }
  u32(v: number): void {
    this.fixed(4, (d) => d.setUint32(0, v, true));
  }
  i32(v: number): void {
    this.fixed(4, (d) => d.setInt32(0, v, true));
  }
  f32(v: number): void {
    this.fixed(4, (d) => d.setFloat32(0, v, true));
  }
  u64(v: number): void {
    this.fixed(8, (d) => d.setBigUint64(0, BigInt(v), true));
  }
  str(s: string): void {
    const b = this.encoder.encode(s);
    this.u64(b.length);
    this.bytes(b);
  }
  pad(): void {
    const p = alignUp(this.size) - this.size;
    if (p) this.bytes(new Uint8Array(p));
  }
  finish(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (const c of this.chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }
}
