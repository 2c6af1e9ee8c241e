import { BaseError } from '@aipg/core';

/**
 * Every error the gateway answers with. `code` is stable and documented in the README ("Error codes");
 * a code is never reused for another meaning. `status` and `type` shape the OpenAI-style HTTP answer
 * `{ error: { message, type, param, code } }`, produced in exactly one place (`api/errors.ts`).
 */
export const errorCodes = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  invalid_json: { status: 400, type: 'invalid_request_error' },
  unsupported_parameter: { status: 400, type: 'invalid_request_error' },
  invalid_signature: { status: 400, type: 'invalid_request_error' },
  context_length_exceeded: { status: 400, type: 'invalid_request_error' },
  max_price_too_low: { status: 400, type: 'invalid_request_error' },
  missing_api_key: { status: 401, type: 'authentication_error' },
  invalid_api_key: { status: 401, type: 'authentication_error' },
  invalid_validator_signature: { status: 401, type: 'authentication_error' },
  insufficient_balance: { status: 402, type: 'insufficient_balance_error' },
  not_a_validator: { status: 403, type: 'permission_error' },
  permission_denied: { status: 403, type: 'permission_error' },
  not_found: { status: 404, type: 'not_found_error' },
  model_not_found: { status: 404, type: 'not_found_error' },
  job_not_found: { status: 404, type: 'not_found_error' },
  batch_not_found: { status: 404, type: 'not_found_error' },
  idempotency_key_in_use: { status: 409, type: 'conflict_error' },
  nonce_already_used: { status: 409, type: 'conflict_error' },
  body_too_large: { status: 413, type: 'invalid_request_error' },
  idempotency_key_reused: { status: 422, type: 'invalid_request_error' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error' },
  request_cancelled: { status: 499, type: 'invalid_request_error' },
  internal_error: { status: 500, type: 'server_error' },
  worker_failed: { status: 502, type: 'server_error' },
  invalid_receipt: { status: 502, type: 'server_error' },
  chain_unavailable: { status: 503, type: 'server_error' },
  no_worker_available: { status: 503, type: 'server_error' },
  /** A confidential request's worker (the one it was encrypted to) is gone or no longer attested. */
  worker_unavailable: { status: 503, type: 'server_error' },
  tokenizer_unavailable: { status: 503, type: 'server_error' },
  shutting_down: { status: 503, type: 'server_error' },
} as const satisfies Record<string, { status: number; type: string }>;

export type GatewayErrorCode = keyof typeof errorCodes;

export type GatewayErrorParameters = {
  param?: string | null | undefined;
  details?: string | undefined;
  cause?: unknown;
  retryable?: boolean | undefined;
  /** Extra response headers (for example `retry-after`). */
  headers?: Record<string, string> | undefined;
};

export class GatewayError extends BaseError {
  override name = 'GatewayError';
  override readonly code: GatewayErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(code: GatewayErrorCode, message: string, params: GatewayErrorParameters = {}) {
    super(message, { code, details: params.details, cause: params.cause, retryable: params.retryable });
    this.code = code;
    this.status = errorCodes[code].status;
    this.type = errorCodes[code].type;
    this.param = params.param ?? null;
    this.headers = params.headers ?? {};
  }

  toJSON() {
    return { error: { message: this.shortMessage, type: this.type, param: this.param, code: this.code } };
  }
}

export function isGatewayError(e: unknown): e is GatewayError {
  return e instanceof GatewayError;
}

/** Configuration that cannot work (a missing RPC URL, a malformed key). Thrown by `createGatewayOptions`. */
export class ConfigError extends BaseError {
  override name = 'ConfigError';
  constructor(message: string, details?: string) {
    super(message, { code: 'GATEWAY_CONFIG', details });
  }
}
