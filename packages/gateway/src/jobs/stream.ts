import type { SealedChunkMessage } from '@aipg/core';
import type { JobRecord } from '../storage/index.ts';
import type { JobOutcome, RunHooks } from './index.ts';

/** What a job streams while it runs, in order. */
export type JobEvent =
  /** A text delta, rendered by the gateway from the token ids the worker streams. */
  | { type: 'text'; text: string }
  /** A confidential job's sealed response chunk, as the worker sent it. */
  | { type: 'sealed'; chunk: SealedChunkMessage }
  /** An image job's progress (`preview`: a partial image, base64, when one was asked). */
  | { type: 'progress'; image: number; step: number; steps: number; preview?: string | undefined };

/**
 * A job's run as an async iterator: its events as they come (held until read), then the outcome as
 * the iterator's return value. Aborting `signal` (the client went away) stops the job, as does a
 * reader that stops reading before the end; nothing is charged for a stopped job.
 */
export async function* streamEvents(
  execute: (job: JobRecord, hooks: RunHooks) => Promise<JobOutcome>,
  job: JobRecord,
  signal?: AbortSignal,
): AsyncGenerator<JobEvent, JobOutcome, undefined> {
  const stop = new AbortController();
  const onAbort = () => stop.abort();
  if (signal?.aborted) stop.abort();
  else signal?.addEventListener('abort', onAbort, { once: true });
  const queue: JobEvent[] = [];
  let wake: (() => void) | undefined;
  const push = (e: JobEvent) => {
    queue.push(e);
    wake?.();
  };
  let outcome: JobOutcome | undefined;
  // A run that throws instead of answering an outcome (a bug): the reader gets the error, never a hang.
  let failure: { error: unknown } | undefined;
  const execution = execute(job, {
    signal: stop.signal,
    onToken: (text) => push({ type: 'text', text }),
    onSealedChunk: (chunk) => push({ type: 'sealed', chunk }),
    onProgress: (p) => push({ type: 'progress', ...p }),
  }).then(
    (o) => {
      outcome = o;
      wake?.();
    },
    (error: unknown) => {
      failure = { error };
      wake?.();
    },
  );
  let read = 0;
  try {
    for (;;) {
      while (read < queue.length) {
        const e = queue[read]!;
        queue[read++] = undefined as never;
        yield e;
      }
      queue.splice(0, read);
      read = 0;
      if (outcome) return outcome;
      if (failure) throw failure.error;
      await new Promise<void>((resolve) => {
        wake = resolve;
      });
      wake = undefined;
    }
  } finally {
    signal?.removeEventListener('abort', onAbort);
    // A reader that stopped before the end: the job stops too (its outcome is still awaited, so
    // nothing it holds is left behind).
    if (!outcome && !failure) {
      stop.abort();
      await execution;
    }
  }
}
