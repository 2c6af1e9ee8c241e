import { BaseError } from '@aipg/core';

/**
 * Backend error codes: stable, documented in backends/README.md, never reused for another meaning.
 * An aborted job rejects with `InferenceAbortedError` (code `INFERENCE_ABORTED`) from
 * @aipg/inference, whatever the backend.
 */
export const BackendErrorCode = {
  /** The server did not answer (connection refused, DNS, reset before any response). Retryable. */
  unreachable: 'BACKEND_UNREACHABLE',
  /** The server does not serve the configured model. */
  modelNotFound: 'BACKEND_MODEL_NOT_FOUND',
  /** The weights the backend would run are not the registered ones (sha256 differs). */
  weightsMismatch: 'BACKEND_WEIGHTS_MISMATCH',
  /** The server cannot report the token ids a receipt must commit to. */
  noTokenIds: 'BACKEND_NO_TOKEN_IDS',
  /** The server answered with an HTTP error. Retryable for 429 and 5xx. */
  http: 'BACKEND_HTTP_ERROR',
  /** The stream broke or carried an error after it started. Retryable. */
  stream: 'BACKEND_STREAM_ERROR',
  /** The server's answer is inconsistent (ids that do not match the text, counts that disagree). */
  protocol: 'BACKEND_PROTOCOL_ERROR',
  /**
   * The prompt this backend would run is not the gateway's `promptTokenIds` (the server tokenizes
   * the rendered prompt otherwise, or reports other prompt ids). Retryable: another worker may
   * run the gateway's ids exactly.
   */
  promptMismatch: 'BACKEND_PROMPT_MISMATCH',
  /** `generate` or `model` before `load()` resolved, or after `close()`. */
  notLoaded: 'BACKEND_NOT_LOADED',
} as const;
export type BackendErrorCode = (typeof BackendErrorCode)[keyof typeof BackendErrorCode];

export class BackendError extends BaseError {
  override name = 'BackendError';
  declare readonly code: BackendErrorCode;
  constructor(
    message: string,
    options: { code: BackendErrorCode; details?: string; cause?: unknown; retryable?: boolean },
  ) {
    super(message, options);
  }
}
