import type { ImageParams } from '@aipg/core';
import type { Context, Hono } from 'hono';
import { GatewayError } from '../../errors.ts';
import { renderImageLinks } from '../../jobs/render.ts';
import type { JobRecord, Storage, StoredImage, StoredReceipt } from '../../storage/index.ts';
import type { Env, RouteDeps } from '../env.ts';
import { parseOr400 } from '../errors.ts';
import { imageGenerationRequest, imageSpec } from '../schemas.ts';
import { openStream, sseResponse } from '../sse.ts';

const CONTENT_TYPES = { png: 'image/png', webp: 'image/webp', jpeg: 'image/jpeg' } as const;
const FILE = /^(0x[0-9a-f]{64})\.(png|webp|jpeg)$/;

/** Where a stored image is served: content-addressed, unguessable (its hash), until it expires. */
export function imageUrl(origin: string, image: StoredImage): string {
  return `${origin}/v1/images/files/${image.hash}.${image.format}`;
}

/**
 * A finished image job as OpenAI's `ImagesResponse` (`data[]` with `b64_json` or `url`), plus `grid`.
 * The bytes are read back from the image store (they are what the receipt commits to).
 */
export async function renderImages(
  storage: Storage,
  job: JobRecord,
  receipt: StoredReceipt | undefined,
  origin: string,
) {
  const image = job.image!;
  const data: { b64_json?: string; url?: string; revised_prompt?: undefined }[] = [];
  for (const out of image.outputs ?? []) {
    if (image.responseFormat === 'url') {
      data.push({ url: imageUrl(origin, out) });
      continue;
    }
    const stored = await storage.images.get(out.hash);
    if (!stored)
      throw new GatewayError('job_not_found', `the images of job ${job.id} have expired`, { param: 'id' });
    data.push({ b64_json: Buffer.from(stored.bytes).toString('base64') });
  }
  const links = renderImageLinks(job, receipt, origin);
  return { ...links, data, quality: 'auto' as const, background: 'opaque' as const };
}

/** What `/v1/images/generations` answered for a finished image job (an Idempotency-Key replay). */
export async function replayImages(
  c: Context,
  job: JobRecord,
  receipt: StoredReceipt | undefined,
  storage: Storage,
): Promise<Response> {
  const rendered = await renderImages(storage, job, receipt, new URL(c.req.url).origin);
  if (job.mode !== 'stream') return c.json(rendered);
  const p = job.image!.params;
  return sseResponse(
    async (sink) => {
      for (const d of rendered.data)
        sink.send({
          type: 'image_generation.completed',
          ...d,
          ...completedFields(p),
          usage: rendered.usage,
          grid: rendered.grid,
        });
      sink.done();
    },
    () => {},
    { 'x-grid-job-id': job.id, 'x-request-id': job.id },
  );
}

/** The fields every streamed image event carries besides its image. */
function completedFields(p: ImageParams) {
  return {
    created_at: Math.floor(Date.now() / 1000),
    size: `${p.width}x${p.height}`,
    quality: 'auto',
    background: 'opaque',
    output_format: p.format,
  };
}

/**
 * The Images API: `POST /v1/images/generations` (OpenAI's, so `client.images.generate` works as is:
 * `b64_json` or `url`, png/webp/jpeg, `stream` with `partial_images`) and `GET /v1/images/files/{hash}`.
 */
export function registerImageRoutes(app: Hono<Env>, deps: RouteDeps) {
  const { jobs, storage } = deps;
  const originOf = (c: Context) => new URL(c.req.url).origin;

  app.post('/v1/images/generations', deps.requireKey, deps.idempotent, async (c) => {
    const spec = imageSpec(parseOr400(imageGenerationRequest, await deps.jsonBody(c)));
    const job = await jobs.prepareImage(spec, c.get('key'), {
      mode: spec.stream ? 'stream' : 'sync',
      idempotency: c.get('idem'),
    });
    await deps.started(c, job);
    if (!spec.stream) {
      // A client that goes away does not stop the job: it completes, is charged, and stays retrievable.
      const outcome = await jobs.execute(job);
      if (!outcome.ok) throw outcome.error;
      return c.json(await renderImages(storage, outcome.job, outcome.receipt, originOf(c)));
    }
    // Streamed: partial images as they come, then one `image_generation.completed` per image. The
    // response starts at the first progress, so a job that fails before (no worker, every worker
    // failing) is still a plain JSON error with the right status.
    const p = job.image!.params;
    const { events, abort } = await openStream(c, (signal) => jobs.stream(job, signal));
    return sseResponse(
      async (sink) => {
        let partial = 0;
        let next = await events.next();
        for (; !next.done; next = await events.next())
          if (next.value.type === 'progress' && next.value.preview !== undefined)
            sink.send({
              type: 'image_generation.partial_image',
              b64_json: next.value.preview,
              partial_image_index: partial++,
              ...completedFields(p),
            });
        const outcome = next.value;
        if (!outcome.ok) {
          sink.error(outcome.error.toJSON());
          return;
        }
        const rendered = await renderImages(storage, outcome.job, outcome.receipt, originOf(c));
        for (const d of rendered.data) {
          sink.send({
            type: 'image_generation.completed',
            ...d,
            ...completedFields(p),
            usage: rendered.usage,
            grid: rendered.grid,
          });
        }
        sink.done();
      },
      abort,
      deps.jobIdHeaders(job.id),
    );
  });

  app.get('/v1/images/files/:file', async (c) => {
    const m = FILE.exec(c.req.param('file').toLowerCase());
    if (!m) throw new GatewayError('not_found', 'no such image', { param: 'file' });
    const stored = await storage.images.get(m[1]!);
    if (!stored || stored.format !== m[2])
      throw new GatewayError('not_found', 'no such image (or it expired)');
    const maxAge = Math.max(0, Math.floor((stored.expiresAt.getTime() - Date.now()) / 1000));
    return c.body(Buffer.from(stored.bytes), 200, {
      'content-type': CONTENT_TYPES[stored.format],
      'cache-control': `private, max-age=${maxAge}, immutable`,
      'x-content-type-options': 'nosniff',
    });
  });
}
