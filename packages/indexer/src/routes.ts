import { Hono } from 'hono';
import { isAddress } from 'viem';
import { z } from 'zod';
import { NetworkError, parseOr400, toNetworkError } from './errors.ts';
import type { EventKind } from './events.ts';
import type { Feed } from './feed.ts';
import { governanceView } from './governance.ts';
import {
  activityView,
  auditsView,
  DEFAULT_ACTIVITY_KINDS,
  gatewaysView,
  indexerView,
  modelsView,
  operatorView,
  type QueryDeps,
  summaryView,
  timeseriesView,
  validatorsView,
  WINDOWS,
  type WindowName,
  workersView,
} from './queries.ts';
import type { Logger } from './types.ts';

const KINDS = [
  'job',
  'batch',
  'bond',
  'unbond',
  'slash',
  'audit',
  'attestation',
  'deposit',
  'earnings',
  'model',
  'settlement',
  'admin',
] as const;

const auditsQuery = z.object({ limit: z.coerce.number().int().min(1).max(200).default(20) });

const gatewaysQuery = z.object({ reports: z.coerce.number().int().min(0).max(50).default(5) });

const activityQuery = z.object({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  before: z.coerce.number().int().min(0).optional(),
  kind: z
    .string()
    .optional()
    .transform((v, ctx) => {
      if (v === undefined || v === '') return undefined;
      const list = v.split(',').map((s) => s.trim());
      const bad = list.find((k) => !(KINDS as readonly string[]).includes(k));
      if (bad) {
        ctx.addIssue({ code: 'custom', message: `unknown kind "${bad}" (one of ${KINDS.join(', ')})` });
        return z.NEVER;
      }
      return list as (EventKind | 'job')[];
    }),
  address: z
    .string()
    .refine((v) => isAddress(v, { strict: false }), 'expected a 0x address')
    .optional(),
});

const timeseriesQuery = z
  .object({
    window: z.enum(Object.keys(WINDOWS) as [WindowName, ...WindowName[]]).default('1h'),
    bucket: z.coerce.number().int().min(10).max(86_400).optional(),
    model: z
      .string()
      .regex(/^0x[0-9a-fA-F]{64}$/, 'expected a model id (0x and 64 hex digits)')
      .optional(),
  })
  .refine((q) => q.bucket === undefined || q.bucket * 1_000 >= WINDOWS[q.window] * 30, {
    message: 'bucket too small for this window (at most 1,000 points)',
    path: ['bucket'],
  });

const windowQuery = z.object({
  window: z.coerce.number().int().min(60).max(86_400).default(300),
});

function address(value: string): string {
  if (!isAddress(value, { strict: false })) {
    throw new NetworkError('invalid_request', `"${value}" is not an address (0x and 40 hex digits)`, {
      param: 'address',
    });
  }
  return value.toLowerCase();
}

/** Short-lived memo: many dashboards refreshing at once cost one query set per key and TTL. */
function memo<T>(ttlMs: number) {
  const entries = new Map<string, { at: number; value: Promise<T> }>();
  return (key: string, load: () => Promise<T>): Promise<T> => {
    const now = Date.now();
    const hit = entries.get(key);
    if (hit && now - hit.at < ttlMs) return hit.value;
    const value = load();
    entries.set(key, { at: now, value });
    value.catch(() => entries.delete(key));
    if (entries.size > 500) for (const [k, e] of entries) if (now - e.at >= ttlMs) entries.delete(k);
    return value;
  };
}

/** Resolves an `Authorization` header to the payer of its live API key; throws 401 otherwise. */
export type PayerAuthenticator = (authorization: string | undefined) => Promise<string>;

const noAuthentication: PayerAuthenticator = async () => {
  throw new NetworkError('invalid_api_key', 'API keys are not accepted here');
};

/**
 * `/v1/network/*`: the public, read-only JSON API behind the dashboard (documented in
 * packages/dashboard/README.md). Every handler reads the database or memory; none calls the chain.
 * Errors leave in the gateway's OpenAI shape (`{ error: { message, type, param, code } }`). A payer's
 * job history is not public: job activity by payer address needs that payer's API key (`authenticate`).
 */
export function createNetworkRoutes({
  deps,
  feed,
  logger,
  cacheMs = 750,
  authenticate = noAuthentication,
}: {
  deps: QueryDeps;
  feed: Feed;
  logger: Logger;
  cacheMs?: number;
  authenticate?: PayerAuthenticator | undefined;
}) {
  const app = new Hono();
  const memoized = memo<unknown>(cacheMs);
  // A client refetching because the live stream told it something changed must not get the cached copy.
  const cached = <T>(key: string, load: () => Promise<T>) =>
    memoized(`${deps.generation()}:${key}`, load) as Promise<T>;
  const q = (c: { req: { query(): Record<string, string> } }) => c.req.query();

  app.use('*', async function publicRead(c, next) {
    await next();
    c.header('access-control-allow-origin', '*');
    if (!c.res.headers.get('cache-control')) c.header('cache-control', 'no-cache');
  });

  app.get('/', (c) =>
    c.json({
      object: 'network.index',
      endpoints: [
        '/v1/network/summary',
        '/v1/network/models',
        '/v1/network/workers',
        '/v1/network/validators',
        '/v1/network/activity',
        '/v1/network/audits',
        '/v1/network/gateways',
        '/v1/network/governance',
        '/v1/network/events/stream',
        '/v1/network/operators/{address}',
        '/v1/network/stats/timeseries',
        '/v1/network/status',
      ],
    }),
  );

  app.get('/summary', async (c) => c.json(await cached('summary', () => summaryView(deps))));

  app.get('/status', (c) => c.json({ object: 'network.status', indexer: indexerView(deps.status()) }));

  app.get('/models', async (c) => {
    const { window } = parseOr400(windowQuery, q(c));
    return c.json(await cached(`models:${window}`, () => modelsView(deps, window)));
  });

  app.get('/models/:id', async (c) => {
    const id = c.req.param('id');
    const list = await cached('models:300', () => modelsView(deps, 300));
    const m = list.data.find((x) => x.id === id.toLowerCase() || x.name === id);
    if (!m) throw new NetworkError('model_not_found', `no model "${id}" is registered`, { param: 'id' });
    return c.json(m);
  });

  app.get('/workers', async (c) => c.json(await cached('workers', () => workersView(deps))));

  app.get('/validators', async (c) => c.json(await cached('validators', () => validatorsView(deps))));

  app.get('/activity', async (c) => {
    const p = parseOr400(activityQuery, q(c));
    const kinds = p.kind ?? [...DEFAULT_ACTIVITY_KINDS];
    const address = p.address?.toLowerCase();
    // Who paid for which job is the payer's business. Asking for job activity by address (`kind`
    // naming `job`), or sending a key, needs that payer's key (401 without, 403 with another's). The
    // public view (default kinds, no key) has chain events about the address and the jobs it served
    // as a worker, never a payer's jobs, and no job names its payer.
    let viewer: string | undefined;
    const authorization = c.req.header('authorization');
    if (address && kinds.includes('job') && (authorization !== undefined || p.kind?.includes('job'))) {
      const payer = (await authenticate(authorization)).toLowerCase();
      if (payer !== address) {
        throw new NetworkError(
          'permission_denied',
          "job activity of a payer address needs that payer's API key; this key belongs to another payer",
          { param: 'address' },
        );
      }
      viewer = payer;
    }
    const key = `activity:${p.limit}:${p.before ?? ''}:${kinds.join(',')}:${address ?? ''}:${viewer ?? ''}`;
    const body = await cached(key, () =>
      activityView(deps, { limit: p.limit, before: p.before, kinds, address, viewer }),
    );
    if (viewer) c.header('cache-control', 'private, no-store');
    return c.json(body);
  });

  app.get('/audits', async (c) => {
    const { limit } = parseOr400(auditsQuery, q(c));
    return c.json(await cached(`audits:${limit}`, () => auditsView(deps, limit)));
  });

  app.get('/gateways', async (c) => {
    const { reports } = parseOr400(gatewaysQuery, q(c));
    return c.json(await cached(`gateways:${reports}`, () => gatewaysView(deps, reports)));
  });

  app.get('/governance', async (c) => c.json(await cached('governance', () => governanceView(deps))));

  app.get('/events/stream', (c) => feed.subscribe(c.req.raw.signal));

  app.get('/operators/:address', async (c) => {
    const a = address(c.req.param('address'));
    return c.json(await cached(`operator:${a}`, () => operatorView(deps, a)));
  });

  app.get('/stats/timeseries', async (c) => {
    const p = parseOr400(timeseriesQuery, q(c));
    const key = `ts:${p.window}:${p.bucket ?? ''}:${p.model ?? ''}`;
    return c.json(await cached(key, () => timeseriesView(deps, p)));
  });

  app.onError((error, c) => {
    const e = toNetworkError(error);
    if (e.code === 'internal_error')
      logger.error({ msg: 'network api: unhandled error', path: c.req.path, error });
    for (const [k, v] of Object.entries(e.headers)) c.header(k, v);
    c.header('access-control-allow-origin', '*');
    return c.json(e.toJSON(), e.status as 400);
  });

  return app;
}
