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
