import { BaseError } from '@aipg/core';
import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';

/**
 * The codes `/v1/network` answers with: the same stable codes, statuses and types as the gateway's API
 * (the gateway mounts this API; its README's table documents them and a docs check keeps the two equal).
 */
export const networkErrorCodes = {
  invalid_request: { status: 400, type: 'invalid_request_error' },
  unsupported_parameter: { status: 400, type: 'invalid_request_error' },
  missing_api_key: { status: 401, type: 'authentication_error' },
  invalid_api_key: { status: 401, type: 'authentication_error' },
  permission_denied: { status: 403, type: 'permission_error' },
  model_not_found: { status: 404, type: 'not_found_error' },
  rate_limit_exceeded: { status: 429, type: 'rate_limit_error' },
  internal_error: { status: 500, type: 'server_error' },
  shutting_down: { status: 503, type: 'server_error' },
} as const satisfies Record<string, { status: number; type: string }>;

export type NetworkErrorCode = keyof typeof networkErrorCodes;

export type NetworkErrorParameters = {
  param?: string | null | undefined;
  cause?: unknown;
  /** Extra response headers (for example `retry-after`). */
  headers?: Record<string, string> | undefined;
};

/** An error of the network API, answered in OpenAI's shape `{ error: { message, type, param, code } }`. */
export class NetworkError extends BaseError {
  override name = 'NetworkError';
  override readonly code: NetworkErrorCode;
  readonly status: number;
  readonly type: string;
  readonly param: string | null;
  readonly headers: Record<string, string>;

  constructor(code: NetworkErrorCode, message: string, params: NetworkErrorParameters = {}) {
    super(message, { code, cause: params.cause });
    this.code = code;
    this.status = networkErrorCodes[code].status;
    this.type = networkErrorCodes[code].type;
    this.param = params.param ?? null;
    this.headers = params.headers ?? {};
  }

  toJSON() {
    return { error: { message: this.shortMessage, type: this.type, param: this.param, code: this.code } };
  }
}

/** A zod failure as a 400 naming the first bad field (`param`). */
function validationError(error: z.ZodError): NetworkError {
  const issue = error.issues[0];
  const path = (issue?.path ?? []).map(String).join('.');
  const message = issue ? `${path ? `${path}: ` : ''}${issue.message}` : 'invalid request';
  return new NetworkError(
    message.includes('not supported') ? 'unsupported_parameter' : 'invalid_request',
    message,
    {
      param: path || null,
    },
  );
}

export function parseOr400<S extends z.ZodType>(schema: S, value: unknown): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error);
  return r.data;
}

/** Anything thrown in a handler, as the error the client sees. */
export function toNetworkError(error: unknown): NetworkError {
  if (error instanceof NetworkError) return error;
  if (error instanceof z.ZodError) return validationError(error);
  if (error instanceof HTTPException && error.status < 500)
    return new NetworkError('invalid_request', error.message || 'bad request', { cause: error });
  return new NetworkError('internal_error', 'internal error', { cause: error });
}
