import type { ApiKeyRecord } from '../storage/index.ts';
import type { IdempotencyVariables } from './idempotency.ts';

/** What the API's middleware put on a request's context: the caller's key, the idempotency claim, when it started. */
export type Env = { Variables: IdempotencyVariables & { key: ApiKeyRecord; requestStart: number } };
