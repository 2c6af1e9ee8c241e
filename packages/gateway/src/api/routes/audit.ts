import type { Hono } from 'hono';
import type { Env, RouteDeps } from '../env.ts';

/**
 * A validator's evidence of a job: `GET /v1/audit/jobs/{id}` and `GET /v1/audit/jobs/{id}/images/{index}`,
 * signed by a bonded validator (audit/index.ts). The audit requests themselves are audit/routes.ts's.
 */
export function registerAuditEvidenceRoutes(app: Hono<Env>, deps: RouteDeps): void {
  const { audit } = deps;

  app.get('/v1/audit/jobs/:id', async (c) => {
    await audit.authenticate({ method: c.req.method, path: c.req.path, header: (n) => c.req.header(n) });
    return c.json(await audit.evidence(c.req.param('id')));
  });

  app.get('/v1/audit/jobs/:id/images/:index{[0-9]}', async (c) => {
    await audit.authenticate({ method: c.req.method, path: c.req.path, header: (n) => c.req.header(n) });
    return c.json(await audit.imageEvidence(c.req.param('id'), Number(c.req.param('index'))));
  });
}
