import type { Context, MiddlewareHandler } from 'hono';
import type { Audit } from '../audit/index.ts';
import type { Auth } from '../auth/index.ts';
import type { Billing } from '../billing/index.ts';
import type { Chain } from '../chain/index.ts';
import type { Common } from '../common.ts';
import type { Hub } from '../hub/index.ts';
import type { JobSpec, Jobs } from '../jobs/index.ts';
import type { ApiKeyRecord, JobRecord, Storage } from '../storage/index.ts';
import type { Tee } from '../tee/index.ts';
import type { IdempotencyVariables } from './idempotency.ts';

/** What the API's middleware put on a request's context: the caller's key, the idempotency claim, when it started. */
export type Env = { Variables: IdempotencyVariables & { key: ApiKeyRecord; requestStart: number } };

/** The gateway's features the HTTP API is built on (`createApi`'s parameters). */
export type ApiFeatures = {
  common: Common;
  storage: Storage;
  chain: Chain;
  auth: Auth;
  billing: Billing;
  hub: Hub;
  jobs: Jobs;
  audit: Audit;
  tee?: Tee | undefined;
};

/** What each endpoint family (routes/) is given: the gateway's features and the API's shared steps. */
export type RouteDeps = ApiFeatures & {
  /** The caller's bearer key (401) and a request from its and its payer's rate limits (429). */
  requireKey: MiddlewareHandler<Env>;
  /** Unauthenticated requests, limited per client address (429). */
  anonymousLimit: MiddlewareHandler<Env>;
  /** `Idempotency-Key` for a payer's requests: a retry replays the first answer or its job. */
  idempotent: MiddlewareHandler<{ Variables: IdempotencyVariables }>;
  /** Answers again for a job an `Idempotency-Key` already ran. */
  replayJob(c: Context, job: JobRecord): Promise<Response>;
  /** The request's JSON body (400 for an empty or malformed one). */
  jsonBody(c: Context): Promise<unknown>;
  clientIp(c: Context): string;
  /** The job's id in the answer's headers, before its body. */
  setJobId(c: Context<Env>, id: string): void;
  /** A prepared job is under way: its id in the headers, its Idempotency-Key pointed at it. */
  started(c: Context<Env>, job: JobRecord): Promise<void>;
  /** 400 for a `max_tokens` above what this gateway allows. */
  checkMaxTokens(spec: Pick<JobSpec, 'maxTokens'>): void;
  jobIdHeaders(id: string): Record<string, string>;
};
