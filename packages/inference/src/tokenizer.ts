/**
 * A model's tokenizer and chat template, from its GGUF: what the worker and the validator use to
 * turn a job's input into the exact prompt token ids a receipt commits to. `createTokenizer` loads
 * only the vocabulary (no weights): backends whose server holds the weights (Ollama) still
 * tokenize locally with it.
 */
import type { ChatMessage } from '@aipg/core';
import { Template } from '@huggingface/jinja';
import type { LlamaModel, Token } from 'node-llama-cpp';
import { applyChatTemplate, CHAT_TEMPLATE } from './chat-template.ts';
import { InvalidTokenError, ModelFileError } from './errors.ts';
import { quietVocabOnlyLoad, sharedLlama } from './llama.ts';

export type Tokenizer = {
  readonly vocabSize: number;
  /** The context the model was trained for (`<architecture>.context_length`), if the file says. */
  readonly contextLength: number | undefined;
  readonly bosTokenId: number;
  readonly eosTokenId: number;
  /** The GGUF's `tokenizer.chat_template`, if any. */
  readonly chatTemplate: string | undefined;
  /** Model tokenization of `text`, no BOS; special tokens (`</s>`, `<|user|>`) parsed by default. */
  tokenize(text: string, options?: { special?: boolean }): number[];
  detokenize(ids: readonly number[]): string;
  /** Canonical prompt of a completion job: BOS + tokenize(prompt). */
  promptTokenIds(prompt: string): number[];
  /**
   * The chat prompt as text, without the leading BOS (a server that tokenizes a raw prompt adds
   * it): the model's own Jinja template rendered with the generation prompt. For the project's
   * generated models this is `applyChatTemplate(messages)`.
   */
  chatPromptText(messages: readonly ChatMessage[]): string;
  /** Canonical prompt of a chat job: BOS + tokenize(chatPromptText(messages)). */
  chatPromptTokenIds(messages: readonly ChatMessage[]): number[];
  isEndToken(id: number): boolean;
  /** The raw bytes a token stands for (a leading space included), to match servers' token text. */
  tokenBytes(id: number): Uint8Array;
  /** A byte-fallback token (`<0xE2>`): one raw byte of a character the vocabulary has no piece for. */
  isByteToken(id: number): boolean;
  /** Throws InvalidTokenError unless every id is in the vocabulary. */
  checkIds(ids: readonly number[]): void;
};

type GgufTokenizerMetadata = {
  tokenizer?: {
    chat_template?: string;
    ggml?: { model?: string; tokens?: readonly string[]; token_type?: readonly number[] };
  };
};

const BYTE_TOKEN = /^<0x([0-9A-Fa-f]{2})>$/;
const TOKEN_TYPE_BYTE = 6;

/** The tokenizer of a loaded model (the engine's, or a vocabulary-only load). */
export function modelTokenizer(model: LlamaModel): Tokenizer {
  const md = (model.fileInfo.metadata as unknown as GgufTokenizerMetadata).tokenizer;
  const pieces = md?.ggml?.tokens ?? [];
  const types = md?.ggml?.token_type ?? [];
  const vocabSize =
    pieces.length ||
    Number(model.fileInfo.tensorInfo?.find((t) => t.name === 'token_embd.weight')?.dimensions[1] ?? 0);
  const bos = model.tokens.bos;
  const eos = model.tokens.eos;
  if (bos == null || eos == null || vocabSize === 0)
    throw new ModelFileError('The model has no vocabulary, BOS or EOS token', model.filename);
  const chatTemplate = md?.chat_template;
  const bosText = pieces[bos] ?? '<s>';
  const eosText = pieces[eos] ?? '</s>';
  const jinja = chatTemplate && chatTemplate !== CHAT_TEMPLATE ? new Template(chatTemplate) : undefined;
  const byteDecoder = md?.ggml?.model === 'gpt2' ? gpt2ByteDecoder() : undefined;
  const encoder = new TextEncoder();

  const tokenize = (text: string, options?: { special?: boolean }) =>
    model.tokenize(text, options?.special ?? true).map(Number);
  const promptTokenIds = (prompt: string) => [bos, ...tokenize(prompt)];
  const chatPromptText = (messages: readonly ChatMessage[]) => {
    if (!jinja) return applyChatTemplate(messages);
    const rendered = jinja.render({
      messages,
      bos_token: bosText,
      eos_token: eosText,
      add_generation_prompt: true,
    });
    return rendered.startsWith(bosText) ? rendered.slice(bosText.length) : rendered;
  };

  const metadata = model.fileInfo.metadata as unknown as Record<
    string,
    { context_length?: unknown } | undefined
  > & {
    general?: { architecture?: string };
  };
  const arch = metadata.general?.architecture;
  const declared = arch ? Number(metadata[arch]?.context_length) : Number.NaN;
  return {
    vocabSize,
    contextLength: Number.isInteger(declared) && declared > 0 ? declared : undefined,
    bosTokenId: bos,
    eosTokenId: eos,
    chatTemplate,
    tokenize,
    detokenize: (ids) => model.detokenize(ids as Token[], false),
    promptTokenIds,
    chatPromptText,
    chatPromptTokenIds: (messages) => promptTokenIds(chatPromptText(messages)),
    isEndToken: (id) => model.isEogToken(id as Token),
    tokenBytes(id) {
      const piece = pieces[id];
      if (piece === undefined) throw new InvalidTokenError(id, vocabSize);
      const byte = types[id] === TOKEN_TYPE_BYTE ? BYTE_TOKEN.exec(piece) : null;
      if (byte) return Uint8Array.of(Number.parseInt(byte[1]!, 16));
      if (byteDecoder) {
        const out: number[] = [];
        for (const ch of piece) {
          const b = byteDecoder.get(ch);
          if (b === undefined) return encoder.encode(piece); // a special token's text
          out.push(b);
        }
        return Uint8Array.from(out);
      }
      return encoder.encode(piece.replaceAll('▁', ' '));
    },
    isByteToken: (id) => types[id] === TOKEN_TYPE_BYTE,
    checkIds(ids) {
      for (const id of ids)
        if (!Number.isInteger(id) || id < 0 || id >= vocabSize) throw new InvalidTokenError(id, vocabSize);
    },
  };
}

export type CreateTokenizerOptions = { modelPath: string };

/** Loads only the vocabulary of a GGUF (fast, no weights in memory). Call `close()` when done. */
export async function createTokenizer({
  modelPath,
}: CreateTokenizerOptions): Promise<Tokenizer & { close(): Promise<void> }> {
  const llama = await sharedLlama(false);
  let model: LlamaModel;
  try {
    model = await quietVocabOnlyLoad(() => llama.loadModel({ modelPath, vocabOnly: true, gpuLayers: 0 }));
  } catch (cause) {
    throw new ModelFileError('Could not load the model vocabulary', modelPath, cause);
  }
  try {
    return { ...modelTokenizer(model), close: () => model.dispose() };
  } catch (error) {
    await model.dispose();
    throw error;
  }
}

/** GPT-2 byte-level BPE: the printable character each byte is written as in the vocabulary. */
function gpt2ByteDecoder(): Map<string, number> {
  const bytes: number[] = [];
  for (let b = 33; b <= 126; b++) bytes.push(b);
  for (let b = 161; b <= 172; b++) bytes.push(b);
  for (let b = 174; b <= 255; b++) bytes.push(b);
  const chars = [...bytes];
  let n = 0;
  for (let b = 0; b < 256; b++) {
    if (!bytes.includes(b)) {
      bytes.push(b);
      chars.push(256 + n++);
    }
  }
  return new Map(bytes.map((b, i) => [String.fromCodePoint(chars[i]!), b]));
}
