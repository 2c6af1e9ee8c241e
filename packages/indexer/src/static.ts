import { readFile, stat } from 'node:fs/promises';
import { extname, join, resolve, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { type Context, Hono } from 'hono';

/** Where `npm run build` puts the dashboard (packages/dashboard/dist). */
export const DEFAULT_DASHBOARD_DIR = fileURLToPath(new URL('../../dashboard/dist/', import.meta.url));

const TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json; charset=utf-8',
  '.webmanifest': 'application/manifest+json',
  '.txt': 'text/plain; charset=utf-8',
  '.woff2': 'font/woff2',
  '.map': 'application/json; charset=utf-8',
};
const COMPRESSIBLE = new Set([
  '.html',
  '.js',
  '.mjs',
  '.css',
  '.svg',
  '.json',
  '.webmanifest',
  '.txt',
  '.map',
]);

type Cached = { mtimeMs: number; size: number; body: Uint8Array; gzip: Uint8Array | null; etag: string };

const NOT_BUILT = `<!doctype html><meta charset="utf-8"><title>AI Power Grid</title>
<body style="font:16px system-ui;max-width:40rem;margin:4rem auto;padding:0 1rem">
<h1>The dashboard is not built</h1><p>Run <code>npm run build</code> at the repository root, then reload.
The JSON API works meanwhile: <a href="/v1/network/summary">/v1/network/summary</a>.</p></body>`;

/**
 * Serves the built dashboard: `/` (index.html, revalidated on every load), `/assets/*` (content-hashed
 * file names, cached for a year as immutable) and the few files at the root of `dist` (an hour).
 * ETags and gzip; files are re-read when they change on disk (a rebuild needs no restart).
 */
export function createDashboardRoutes({ dir = DEFAULT_DASHBOARD_DIR }: { dir?: string } = {}) {
  const root = resolve(dir);
  const cache = new Map<string, Cached>();
  const app = new Hono();

  async function load(path: string): Promise<Cached | undefined> {
    const full = resolve(root, path);
    if (full !== root && !full.startsWith(root + sep)) return undefined;
    let s: Awaited<ReturnType<typeof stat>>;
    try {
      s = await stat(full);
    } catch {
      return undefined;
    }
    if (!s.isFile()) return undefined;
    const hit = cache.get(full);
    if (hit && hit.mtimeMs === s.mtimeMs && hit.size === s.size) return hit;
    const body = new Uint8Array(await readFile(full));
    const entry: Cached = {
      mtimeMs: s.mtimeMs,
      size: s.size,
      body,
      gzip: COMPRESSIBLE.has(extname(full)) && body.length > 1024 ? new Uint8Array(gzipSync(body)) : null,
      etag: `W/"${s.size.toString(16)}-${Math.floor(s.mtimeMs).toString(16)}"`,
    };
    cache.set(full, entry);
    return entry;
  }

  async function send(c: Context, path: string, cacheControl: string): Promise<Response | undefined> {
    const f = await load(path);
    if (!f) return undefined;
    const headers: Record<string, string> = {
      'content-type': TYPES[extname(path)] ?? 'application/octet-stream',
      'cache-control': cacheControl,
      etag: f.etag,
      vary: 'accept-encoding',
      'x-content-type-options': 'nosniff',
    };
    if (c.req.header('if-none-match') === f.etag) return new Response(null, { status: 304, headers });
    const gzip = f.gzip && /\bgzip\b/.test(c.req.header('accept-encoding') ?? '');
    if (gzip) headers['content-encoding'] = 'gzip';
    return new Response((gzip ? f.gzip : f.body) as Uint8Array<ArrayBuffer>, { status: 200, headers });
  }

  const index = async (c: Context) => {
    const res = await send(c, 'index.html', 'no-cache');
    if (res) {
      res.headers.set('referrer-policy', 'same-origin');
      res.headers.set('x-frame-options', 'DENY');
      return res;
    }
    return c.html(NOT_BUILT, 503, { 'cache-control': 'no-store' });
  };
  app.get('/', index);
  app.get('/index.html', index);
  app.get('/assets/:file{[A-Za-z0-9._-]+}', async (c) => {
    const res = await send(c, join('assets', c.req.param('file')), 'public, max-age=31536000, immutable');
    return res ?? c.notFound();
  });
  app.get('/:file{[A-Za-z0-9_-][A-Za-z0-9._-]*\\.(?:svg|ico|png|txt|webmanifest|json)}', async (c) => {
    const res = await send(c, c.req.param('file'), 'public, max-age=3600');
    return res ?? c.notFound();
  });
  return app;
}
