import { getLlama, type Llama, LlamaLogLevel } from 'node-llama-cpp';

export type LlamaLogSink = (level: 'error' | 'warn', message: string) => void;

const llamas = new Map<string, Promise<Llama>>();
const sinks = new Set<LlamaLogSink>();

/**
 * One Llama (the native binding) per process and GPU mode, shared by every engine and tokenizer.
 * Never builds from source and never prints: llama.cpp's warnings and errors go to the sinks.
 */
export function sharedLlama(gpu: 'auto' | false): Promise<Llama> {
  const key = String(gpu);
  let llama = llamas.get(key);
  if (!llama) {
    llama = getLlama({
      gpu,
      build: 'never',
      progressLogs: false,
      logLevel: LlamaLogLevel.warn,
      logger: (level, message) => {
        if (vocabOnlyLoads > 0 && VOCAB_ONLY_NOISE.some((r) => r.test(message))) return;
        const l = level === LlamaLogLevel.error || level === LlamaLogLevel.fatal ? 'error' : 'warn';
        for (const sink of sinks) sink(l, message);
      },
    });
    llamas.set(key, llama);
    llama.catch(() => llamas.delete(key));
  }
  return llama;
}

/**
 * node-llama-cpp estimates a model's memory by loading it, even for a vocabulary-only load; a
 * tokenizer file has no tensors, so that estimate fails (harmlessly: it falls back to a heuristic and
 * the vocabulary loads). Its three lines are dropped while such a load runs.
 */
const VOCAB_ONLY_NOISE = [
  /^Failed simulating model resource usage/,
  /missing tensor/,
  /llama_model_load_from_file_impl: failed to load model/,
];
let vocabOnlyLoads = 0;

/** Runs a vocabulary-only load with its expected estimate failure kept out of the logs. */
export async function quietVocabOnlyLoad<T>(load: () => Promise<T>): Promise<T> {
  vocabOnlyLoads += 1;
  try {
    return await load();
  } finally {
    vocabOnlyLoads -= 1;
  }
}

export function addLlamaLogSink(sink: LlamaLogSink): () => void {
  sinks.add(sink);
  return () => sinks.delete(sink);
}
