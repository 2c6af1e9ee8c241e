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
        const l = level === LlamaLogLevel.error || level === LlamaLogLevel.fatal ? 'error' : 'warn';
        for (const sink of sinks) sink(l, message);
      },
    });
    llamas.set(key, llama);
    llama.catch(() => llamas.delete(key));
  }
  return llama;
}

export function addLlamaLogSink(sink: LlamaLogSink): () => void {
  sinks.add(sink);
  return () => sinks.delete(sink);
}
