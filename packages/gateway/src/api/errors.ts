import { HTTPException } from 'hono/http-exception';
import { z } from 'zod';
import { GatewayError } from '../errors.ts';

/** Turns a zod failure into a 400 naming the first bad field (`param`) the way OpenAI does. */
export function validationError(error: z.ZodError, prefix = ''): GatewayError {
  const issue = error.issues[0];
  const path = [prefix, ...(issue?.path ?? []).map(String)].filter((p) => p !== '').join('.');
  const message = issue ? `${path ? `${path}: ` : ''}${issue.message}` : 'invalid request';
  return new GatewayError(
    message.includes('not supported') ? 'unsupported_parameter' : 'invalid_request',
    message,
    {
      param: path || null,
    },
  );
}

export function parseOr400<S extends z.ZodType>(schema: S, value: unknown, prefix = ''): z.infer<S> {
  const r = schema.safeParse(value);
  if (!r.success) throw validationError(r.error, prefix);
  return r.data;
}

/** Anything thrown in a handler, as the GatewayError the client sees. */
export function toGatewayError(error: unknown): GatewayError {
  if (error instanceof GatewayError) return error;
  if (error instanceof z.ZodError) return validationError(error);
  if (error instanceof SyntaxError) {
    return new GatewayError('invalid_json', 'the request body is not valid JSON', { cause: error });
  }
  if (error instanceof HTTPException) {
    if (error.status === 413) return new GatewayError('body_too_large', 'the request body is too large');
    if (error.status < 500)
      return new GatewayError('invalid_request', error.message || 'bad request', { cause: error });
  }
  return new GatewayError('internal_error', 'internal error', { cause: error });
}
