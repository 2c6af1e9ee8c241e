import { Hono } from 'hono';
import type { Hex } from 'viem';
import { parseOr400 } from '../api/errors.ts';
import { GatewayError } from '../errors.ts';
import { type ImageChecker, imageCheckRequestSchema } from './image-check.ts';
import type { Audit } from './index.ts';
import { type Scorer, scoreRequestSchema, scorersQuerySchema } from './score.ts';

/**
 * The validators' audit routes beyond `GET /v1/audit/jobs/:id` (in the API): a settled batch's
 * receipts with their proofs, the workers a cross-check may draw its scorer from, and cross-check
 * scoring. Every request is signed by the operator key
 * of an active validator bond (`audit.authenticate`). Mounted at `/` by `startGateway`; errors leave
 * through the API's `onError`.
 */
export function createAuditRoutes({
  audit,
  scorer,
  imageChecker,
}: {
  audit: Audit;
  scorer: Scorer;
  imageChecker: ImageChecker;
}) {
  const app = new Hono();

  app.get('/v1/audit/batches/:root', async (c) => {
    await audit.authenticate({ method: c.req.method, path: c.req.path, header: (n) => c.req.header(n) });
    return c.json(await audit.batch(c.req.param('root')));
  });

  app.get('/v1/audit/scorers', async (c) => {
    await audit.authenticate({ method: c.req.method, path: c.req.path, header: (n) => c.req.header(n) });
    const { model_id } = parseOr400(scorersQuerySchema, { model_id: c.req.query('model_id') });
    return c.json(scorer.scorers(model_id as Hex));
  });

  app.post('/v1/audit/score', async (c) => {
    const { operator } = await audit.authenticate({
      method: c.req.method,
      path: c.req.path,
      header: (n) => c.req.header(n),
    });
    const text = await c.req.text();
    if (text.trim() === '')
      throw new GatewayError('invalid_json', 'the request body is empty; send a JSON object');
    const body = parseOr400(scoreRequestSchema, JSON.parse(text));
    return c.json(await scorer.score(body, { validator: operator, signal: c.req.raw.signal }));
  });

  app.post('/v1/audit/image-check', async (c) => {
    const { operator } = await audit.authenticate({
      method: c.req.method,
      path: c.req.path,
      header: (n) => c.req.header(n),
    });
    const text = await c.req.text();
    if (text.trim() === '')
      throw new GatewayError('invalid_json', 'the request body is empty; send a JSON object');
    return c.json(
      await imageChecker.check(parseOr400(imageCheckRequestSchema, JSON.parse(text)), {
        validator: operator,
      }),
    );
  });

  return app;
}
