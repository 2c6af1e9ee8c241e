import type { Context } from 'hono';
import type { JobOutcome } from '../jobs/index.ts';
import type { JobEvent } from '../jobs/stream.ts';
import type { Env } from './env.ts';

/** Server-sent events as OpenAI streams them: `data: <json>\n\n`, ending with `data: [DONE]`. */
export type SseSink = {
  send(payload: unknown): void;
  done(): void;
  /** An error event in OpenAI's shape (`data: {"error": …}`); the stream then ends without [DONE]. */
  error(body: unknown): void;
  readonly closed: boolean;
};

export const SSE_HEADERS = {
  'content-type': 'text/event-stream; charset=utf-8',
  'cache-control': 'no-cache',
  'x-accel-buffering': 'no',
} as const;

/**
 * A streaming response fed by `run`. `onCancel` fires when the client goes away before the end
 * (the reader cancels the stream).
 */
export function sseResponse(
  run: (sink: SseSink) => Promise<void>,
  onCancel: () => void,
  headers: Record<string, string> = {},
): Response {
  const encoder = new TextEncoder();
  let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
  let closed = false;
  const stream = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel() {
      if (closed) return;
      closed = true;
      onCancel();
    },
  });
  const write = (text: string) => {
    if (closed || !controller) return;
    try {
      controller.enqueue(encoder.encode(text));
    } catch {
      closed = true;
    }
  };
  const close = () => {
    if (closed) return;
    closed = true;
    try {
      controller?.close();
    } catch {
      // already errored by the reader
    }
  };
  const sink: SseSink = {
    send(payload) {
      write(`data: ${JSON.stringify(payload)}\n\n`);
    },
    done() {
      write('data: [DONE]\n\n');
      close();
    },
    error(body) {
      write(`data: ${JSON.stringify(body)}\n\n`);
      close();
    },
    get closed() {
      return closed;
    },
  };
  queueMicrotask(() => {
    run(sink)
      .catch(() =>
        sink.error({
          error: { message: 'internal error', type: 'server_error', param: null, code: 'internal_error' },
        }),
      )
      .finally(close);
  });
  return new Response(stream, { status: 200, headers: { ...SSE_HEADERS, ...headers } });
}

/**
 * Starts a job streamed (`start`: the jobs' `stream` for it, given the signal that stops it). Resolves
 * at its first event, so anything that fails before (no worker, every worker failing) is still thrown:
 * a plain JSON error with its status. `events` yields every event from the first and returns the
 * outcome; `abort` stops the job (the client went away, as does closing the request).
 */
export async function openStream(
  c: Context<Env>,
  start: (signal: AbortSignal) => AsyncGenerator<JobEvent, JobOutcome, undefined>,
): Promise<{ events: AsyncGenerator<JobEvent, JobOutcome, undefined>; abort: () => void }> {
  const abort = new AbortController();
  c.req.raw.signal?.addEventListener('abort', () => abort.abort(), { once: true });
  const run = start(abort.signal);
  const first = await run.next();
  if (first.done && !first.value.ok) throw first.value.error;
  // The answer is a stream from here (an Idempotency-Key then replays the job, not these bytes).
  c.set('streamed', true);
  async function* events(): AsyncGenerator<JobEvent, JobOutcome, undefined> {
    if (first.done) return first.value;
    yield first.value;
    return yield* run;
  }
  return { events: events(), abort: () => abort.abort() };
}
