import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gunzipSync } from 'node:zlib';
import { afterAll, expect, test } from 'vitest';
import { createDashboardRoutes } from '../src/static.ts';

const dir = mkdtempSync(join(tmpdir(), 'aipg-dashboard-'));
mkdirSync(join(dir, 'assets'));
writeFileSync(join(dir, 'index.html'), '<!doctype html><title>grid</title>');
const js = `console.log(${JSON.stringify('x'.repeat(4_000))});`;
writeFileSync(join(dir, 'assets', 'index-abc123.js'), js);
writeFileSync(join(dir, 'favicon.svg'), '<svg xmlns="http://www.w3.org/2000/svg"/>');
const secret = join(dir, '..', `secret-${process.pid}.txt`);
writeFileSync(secret, 'not served');

afterAll(() => {
  rmSync(dir, { recursive: true, force: true });
  rmSync(secret, { force: true });
});

test('index.html is revalidated on every load; hashed assets are immutable and gzipped', async () => {
  const app = createDashboardRoutes({ dir });
  const index = await app.request('/');
  expect(index.status).toBe(200);
  expect(index.headers.get('content-type')).toBe('text/html; charset=utf-8');
  expect(index.headers.get('cache-control')).toBe('no-cache');
  expect(await index.text()).toContain('<title>grid</title>');

  const again = await app.request('/', { headers: { 'if-none-match': index.headers.get('etag')! } });
  expect(again.status).toBe(304);

  const asset = await app.request('/assets/index-abc123.js', { headers: { 'accept-encoding': 'gzip, br' } });
  expect(asset.status).toBe(200);
  expect(asset.headers.get('cache-control')).toBe('public, max-age=31536000, immutable');
  expect(asset.headers.get('content-type')).toBe('text/javascript; charset=utf-8');
  expect(asset.headers.get('content-encoding')).toBe('gzip');
  expect(gunzipSync(Buffer.from(await asset.arrayBuffer())).toString()).toBe(js);

  const icon = await app.request('/favicon.svg');
  expect(icon.headers.get('content-type')).toBe('image/svg+xml');
  expect(icon.headers.get('cache-control')).toBe('public, max-age=3600');
});

test('nothing outside the dashboard directory is served', async () => {
  const app = createDashboardRoutes({ dir });
  for (const path of [
    '/assets/..%2F..%2Fsecret.txt',
    '/assets/../../secret.txt',
    '/..%2Fsecret.txt',
    '/assets/nope.js',
  ]) {
    const res = await app.request(path);
    expect(res.status, path).toBe(404);
  }
});

test('an unbuilt dashboard says how to build it', async () => {
  const app = createDashboardRoutes({ dir: join(dir, 'missing') });
  const res = await app.request('/');
  expect(res.status).toBe(503);
  expect(await res.text()).toContain('npm run build');
});
