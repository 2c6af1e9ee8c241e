import type { Hono } from 'hono';
import { aipg } from '../../billing/index.ts';
import { GatewayError } from '../../errors.ts';
import type { Env, RouteDeps } from '../env.ts';
import { parseOr400 } from '../errors.ts';
import { idempotency } from '../idempotency.ts';
import { createKeyRequest } from '../schemas.ts';

/**
 * A payer's account: `POST /v1/keys` (a key from a signed key message), `GET /v1/keys`,
 * `DELETE /v1/keys/{id}` and `GET /v1/balance`.
 */
export function registerKeyRoutes(app: Hono<Env>, deps: RouteDeps): void {
  const {
    common,
    storage,
    chain,
    auth,
    billing,
    jobs,
    requireKey,
    anonymousLimit,
    jsonBody,
    clientIp,
    replayJob,
  } = deps;

  app.post(
    '/v1/keys',
    anonymousLimit,
    idempotency({
      common,
      storage,
      mode: 'rerun',
      scope: (c) => `keys:${clientIp(c)}`,
      replayJob,
      owner: jobs.instanceId,
    }),
    async (c) => {
      const req = parseOr400(createKeyRequest, await jsonBody(c));
      const { key, record, created } = await auth.createKey(req);
      return c.json(
        {
          object: 'api_key',
          id: record.id,
          key,
          payer: record.payer,
          name: record.name,
          created_at: Math.floor(record.createdAt.getTime() / 1000),
        },
        created ? 201 : 200,
      );
    },
  );

  app.get('/v1/keys', requireKey, async (c) => {
    const keys = await storage.keys.listByPayer(c.get('key').payer);
    return c.json({
      object: 'list',
      data: keys.map((k) => ({
        object: 'api_key',
        id: k.id,
        payer: k.payer,
        name: k.name,
        created_at: Math.floor(k.createdAt.getTime() / 1000),
        revoked_at: k.revokedAt ? Math.floor(k.revokedAt.getTime() / 1000) : null,
      })),
    });
  });

  app.delete('/v1/keys/:id', requireKey, async (c) => {
    const ok = await storage.keys.revoke(c.req.param('id'), c.get('key').payer);
    if (ok) auth.forgetKey(c.req.param('id'));
    if (!ok)
      throw new GatewayError('not_found', `no live key ${c.req.param('id')} of this payer`, { param: 'id' });
    return c.json({ object: 'api_key', id: c.req.param('id'), deleted: true });
  });

  app.get('/v1/balance', requireKey, async (c) => {
    const b = await billing.balance(c.get('key').payer);
    const both = (wei: bigint) => ({ aipg: aipg(wei), wei: wei.toString() });
    return c.json({
      object: 'balance',
      payer: b.payer,
      gateway: chain.gateway,
      deposit: both(b.deposit),
      withdraw_requested: both(b.withdrawRequested),
      allowance: both(b.allowance),
      unsettled: both(b.unsettled),
      reserved: both(b.reserved),
      available: both(b.available),
    });
  });
}
