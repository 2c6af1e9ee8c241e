/**
 * The HTTP plumbing the Ollama, OpenAI-compatible and ComfyUI backends share: requests over `node:http`
 * (keep-alive agents, the job's abort signal) with errors mapped to BackendError, and line readers for
 * NDJSON and SSE bodies. `node:http` rather than `fetch`: undici's web streams cost about a quarter of
 * a worker's CPU per request on the hot path (bench/side-by-side.ts), and nothing here needs them.
 */
import http from 'node:http';
import https from 'node:https';
import { InferenceAbortedError } from '@aipg/inference';
import { BackendError, BackendErrorCode } from './errors.ts';

export type RequestOptions = {
  method?: 'GET' | 'POST';
  body?: unknown;
  headers?: Record<string, string>;
  signal?: AbortSignal | undefined;
  /** What the request is for, in error messages ("Ollama /api/tags"). */
  what: string;
};

/** A backend's answer: its status, then its body read whole or chunk by chunk (once). */
export type HttpResponse = {
  readonly status: number;
  readonly statusText: string;
  readonly ok: boolean;
  text(): Promise<string>;
  arrayBuffer(): Promise<ArrayBuffer>;
  /** The body's chunks as they arrive; after `cancel()` they end (a read waiting then ends too). */
  chunks(): AsyncIterable<Uint8Array>;
  /** Stops reading and closes the connection. */
  cancel(): void;
};

const agents = {
  'http:': new http.Agent({ keepAlive: true }),
  'https:': new https.Agent({ keepAlive: true }),
};

/**
 * One request. A kept-alive connection the server closed while it sat idle (uvicorn, vLLM's server,
 * closes them after 5 s; the agent cannot know before it writes) fails at once with ECONNRESET or
 * EPIPE: the server never read that request, so it is sent again, once, on a new connection.
 */
function send(url: URL, options: RequestOptions, retried = false): Promise<http.IncomingMessage> {
  const body = options.body === undefined ? undefined : Buffer.from(JSON.stringify(options.body));
  const client = url.protocol === 'https:' ? https : http;
  const agent = agents[url.protocol as keyof typeof agents];
  return new Promise((resolve, reject) => {
    const req = client.request(url, {
      method: options.method ?? (body === undefined ? 'GET' : 'POST'),
      agent,
      headers: {
        ...(body === undefined ? {} : { 'content-type': 'application/json', 'content-length': body.length }),
        ...options.headers,
      },
      ...(options.signal ? { signal: options.signal } : {}),
    });
    req.once('response', resolve);
    req.once('error', (error: NodeJS.ErrnoException) => {
      const stale = req.reusedSocket && (error.code === 'ECONNRESET' || error.code === 'EPIPE');
      if (stale && !retried && !options.signal?.aborted) resolve(send(url, options, true));
      else reject(error);
    });
    req.end(body);
  });
}

function wrap(res: http.IncomingMessage): HttpResponse {
  let cancelled = false;
  const status = res.statusCode ?? 0;
  const whole = async (): Promise<Buffer> => {
    const parts: Buffer[] = [];
    for await (const chunk of res) parts.push(chunk as Buffer);
    return Buffer.concat(parts);
  };
  return {
    status,
    statusText: res.statusMessage ?? '',
    ok: status >= 200 && status < 300,
    text: async () => (await whole()).toString('utf8'),
    arrayBuffer: async () => {
      const b = await whole();
      return b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength) as ArrayBuffer;
    },
    async *chunks() {
      try {
        for await (const chunk of res) yield chunk as Buffer;
      } catch (error) {
        if (!cancelled) throw error;
      }
    },
    cancel() {
      cancelled = true;
      res.destroy();
    },
  };
}

/** Sends; non-2xx answers become BackendError with the server's message (`{error}` bodies). */
export async function request(url: string, options: RequestOptions): Promise<HttpResponse> {
  let response: HttpResponse;
  try {
    if (options.signal?.aborted) throw options.signal.reason;
    response = wrap(await send(new URL(url), options));
  } catch (cause) {
    if (options.signal?.aborted) throw new InferenceAbortedError(options.signal.reason);
    throw new BackendError(`${options.what}: the server is unreachable`, {
      code: BackendErrorCode.unreachable,
      details: `${url}: ${errorText(cause)}`,
      cause,
      retryable: true,
    });
  }
  if (!response.ok) {
    const text = await response.text().catch(() => '');
    throw new BackendError(`${options.what}: HTTP ${response.status}`, {
      code: BackendErrorCode.http,
      details: serverMessage(text) ?? (text.slice(0, 500) || response.statusText),
      retryable: response.status === 429 || response.status >= 500,
    });
  }
  return response;
}

export async function requestJson<T>(url: string, options: RequestOptions): Promise<T> {
  const response = await request(url, options);
  const text = await readBody(response, options);
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new BackendError(`${options.what}: the answer is not JSON`, {
      code: BackendErrorCode.protocol,
      details: text.slice(0, 500),
      cause,
    });
  }
}

/** The whole body as text; a connection that breaks while reading is a (retryable) stream error. */
export async function readBody(response: HttpResponse, options: RequestOptions): Promise<string> {
  try {
    return await response.text();
  } catch (cause) {
    throw streamError(cause, options);
  }
}

/**
 * The body's lines, as they arrive (NDJSON objects, SSE fields). Left early (the consumer stops), the
 * body is cancelled; `control.cancel` cancels it from outside, even while a read waits (the lines then
 * end).
 */
export async function* lines(
  response: HttpResponse,
  options: RequestOptions,
  control?: { cancel?: () => void },
): AsyncGenerator<string> {
  let ended = false;
  if (control) control.cancel = () => response.cancel();
  const decoder = new TextDecoder();
  let buffer = '';
  const body = response.chunks()[Symbol.asyncIterator]();
  try {
    for (;;) {
      let chunk: IteratorResult<Uint8Array>;
      try {
        chunk = await body.next();
      } catch (cause) {
        ended = true;
        throw streamError(cause, options);
      }
      if (chunk.done) {
        ended = true;
        break;
      }
      buffer += decoder.decode(chunk.value, { stream: true });
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        yield buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
      }
    }
  } finally {
    if (!ended) response.cancel();
  }
  buffer += decoder.decode();
  if (buffer.length > 0) yield buffer;
}

/** NDJSON: one JSON value per non-empty line. */
export async function* ndjson<T>(response: HttpResponse, options: RequestOptions): AsyncGenerator<T> {
  for await (const line of lines(response, options)) {
    if (line.trim() === '') continue;
    yield parseFrame<T>(line, options);
  }
}

/**
 * Server-sent events: the `data:` payloads, one per event (multi-line data joined with "\n"),
 * until `data: [DONE]` or the end of the body.
 */
export async function* sse(response: HttpResponse, options: RequestOptions): AsyncGenerator<string> {
  let data: string[] = [];
  const control: { cancel?: () => void } = {};
  const body = lines(response, options, control);
  try {
    for (;;) {
      const next = await body.next();
      if (next.done) break;
      const line = next.value;
      if (line === '') {
        if (data.length > 0) {
          const payload = data.join('\n');
          data = [];
          if (payload === '[DONE]') {
            await finishAfterDone(body, control);
            return;
          }
          yield payload;
        }
        continue;
      }
      if (line.startsWith(':')) continue;
      const colon = line.indexOf(':');
      const field = colon < 0 ? line : line.slice(0, colon);
      const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
      if (field === 'data') data.push(value);
    }
    if (data.length > 0 && data.join('\n') !== '[DONE]') yield data.join('\n');
  } finally {
    // Left early (the consumer stopped, or threw on a payload): the body is closed, not left open.
    await body.return(undefined);
  }
}

/** How long the end of a body may take to arrive after `data: [DONE]` before it is cancelled. */
const AFTER_DONE_MS = 250;

/**
 * After `[DONE]` the server ends the body at once (OpenAI, vLLM, llama.cpp): read it to its end, so the
 * response completes normally (a cancellation costs an abort and may lose the keep-alive connection),
 * but cancel it if it has not ended shortly (a server that holds the stream open).
 */
async function finishAfterDone(
  body: AsyncGenerator<string>,
  control: { cancel?: () => void },
): Promise<void> {
  const timer = setTimeout(() => control.cancel?.(), AFTER_DONE_MS);
  try {
    while (!(await body.next()).done) {}
  } catch {
    // The answer is complete: a broken tail changes nothing.
  } finally {
    clearTimeout(timer);
  }
}

export function parseFrame<T>(text: string, options: RequestOptions): T {
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new BackendError(`${options.what}: malformed stream frame`, {
      code: BackendErrorCode.stream,
      details: text.slice(0, 500),
      cause,
      retryable: true,
    });
  }
}

function streamError(cause: unknown, options: RequestOptions): Error {
  if (options.signal?.aborted) return new InferenceAbortedError(options.signal.reason);
  return new BackendError(`${options.what}: the stream broke`, {
    code: BackendErrorCode.stream,
    details: errorText(cause),
    cause,
    retryable: true,
  });
}

/** `{"error": "..."}` (Ollama) or `{"error": {"message": "..."}}` (OpenAI). */
export function serverMessage(text: string): string | undefined {
  try {
    const body = JSON.parse(text) as { error?: string | { message?: string } };
    if (typeof body.error === 'string') return body.error;
    if (typeof body.error?.message === 'string') return body.error.message;
  } catch {}
  return undefined;
}

function errorText(cause: unknown): string {
  if (cause instanceof Error) {
    const inner = (cause as { cause?: unknown }).cause;
    return inner instanceof Error ? `${cause.message}: ${inner.message}` : cause.message;
  }
  return String(cause);
}

/** A base URL without its trailing slash. */
export const trimSlash = (url: string) => url.replace(/\/+$/, '');
