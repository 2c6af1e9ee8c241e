import { afterEach, describe, expect, test } from 'vitest';
import { createMetricsRegistry, type MetricsServer, startMetricsServer } from '../src/index.ts';

let server: MetricsServer | undefined;
afterEach(async () => {
  await server?.close();
  server = undefined;
});

describe('startMetricsServer', () => {
  test('serves the registry on /metrics and the health on /healthz', async () => {
    const registry = createMetricsRegistry();
    registry.counter('aipg_test_jobs_total', 'Jobs.').inc({ model: 'm' }, 3);
    let ok = true;
    server = await startMetricsServer(registry, {
      port: 0,
      host: '127.0.0.1',
      health: () => ({ ok, state: 'x' }),
    });
    expect(server.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/metrics$/);

    const metrics = await fetch(server.url);
    expect(metrics.status).toBe(200);
    expect(metrics.headers.get('content-type')).toBe('text/plain; version=0.0.4; charset=utf-8');
    expect(await metrics.text()).toBe(
      '# HELP aipg_test_jobs_total Jobs.\n# TYPE aipg_test_jobs_total counter\naipg_test_jobs_total{model="m"} 3\n',
    );

    const base = server.url.replace(/\/metrics$/, '');
    expect(await (await fetch(`${base}/healthz`)).json()).toEqual({ ok: true, state: 'x' });
    ok = false;
    expect((await fetch(`${base}/healthz`)).status).toBe(503);
    expect((await fetch(`${base}/nope`)).status).toBe(404);
    expect((await fetch(server.url, { method: 'POST' })).status).toBe(405);
  });

  test('a busy port is an error, not a silent failure', async () => {
    server = await startMetricsServer(createMetricsRegistry(), { port: 0, host: '127.0.0.1' });
    const port = Number(new URL(server.url).port);
    await expect(startMetricsServer(createMetricsRegistry(), { port, host: '127.0.0.1' })).rejects.toThrow(
      /EADDRINUSE/,
    );
  });
});
