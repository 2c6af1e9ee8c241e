/**
 * The HTTP plumbing the Ollama and OpenAI-compatible backends share: fetch with the job's abort
 * signal and errors mapped to BackendError, and line readers for NDJSON and SSE bodies.
 */
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

/** Fetches; non-2xx answers become BackendError with the server's message (`{error}` bodies). */
export async function request(url: string, options: RequestOptions): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: options.method ?? (options.body === undefined ? 'GET' : 'POST'),
      headers: {
        ...(options.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...options.headers,
      },
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      signal: options.signal,
    });
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
export async function readBody(response: Response, options: RequestOptions): Promise<string> {
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
  response: Response,
  options: RequestOptions,
  control?: { cancel?: () => void },
): AsyncGenerator<string> {
  if (!response.body)
    throw new BackendError(`${options.what}: empty body`, { code: BackendErrorCode.protocol });
  const reader = response.body.getReader();
  let ended = false;
  if (control) control.cancel = () => void reader.cancel().catch(() => {});
  const decoder = new TextDecoder();
  let buffer = '';
  try {
    for (;;) {
      let chunk: Awaited<ReturnType<typeof reader.read>>;
      try {
        chunk = await reader.read();
      } catch (cause) {
        ended = true;
        throw streamError(cause, options);
      }
      if (chunk.done) {
        ended = true;
        break;
      }
      buffer += decoder.decode(chunk.value as Uint8Array, { stream: true });
      let newline = buffer.indexOf('\n');
      while (newline >= 0) {
        yield buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        newline = buffer.indexOf('\n');
      }
    }
  } finally {
    if (!ended) await reader.cancel().catch(() => {});
  }
  buffer += decoder.decode();
  if (buffer.length > 0) yield buffer;
}

/** NDJSON: one JSON value per non-empty line. */
export async function* ndjson<T>(response: Response, options: RequestOptions): AsyncGenerator<T> {
  for await (const line of lines(response, options)) {
    if (line.trim() === '') continue;
    yield parseFrame<T>(line, options);
  }
}

/**
 * Server-sent events: the `data:` payloads, one per event (multi-line data joined with "\n"),
 * until `data: [DONE]` or the end of the body.
 */
export async function* sse(response: Response, options: RequestOptions): AsyncGenerator<string> {
  let data: string[] = [];
  const control: { cancel?: () => void } = {};
  const body = lines(response, options, control);
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
