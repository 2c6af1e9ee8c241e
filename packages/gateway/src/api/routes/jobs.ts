import type { Hono } from 'hono';
import { GatewayError } from '../../errors.ts';
import { renderJob } from '../../jobs/render.ts';
import type { JobRecord } from '../../storage/index.ts';
import { assertWebhookUrl } from '../../webhooks/index.ts';
import type { Env, RouteDeps } from '../env.ts';
import { parseOr400 } from '../errors.ts';
import {
  chatCompletionRequest,
  chatSpec,
  completionRequest,
  completionSpec,
  imageGenerationRequest,
  imageSpec,
  isConfidentialBody,
  jobSubmitRequest,
} from '../schemas.ts';

/**
 * Async jobs: `POST /v1/jobs` (a chat, completion or image request run in the background, with an
 * optional signed webhook) and `GET /v1/jobs/{id}` (any of the payer's jobs, sync and streamed ones too).
 */
export function registerJobRoutes(app: Hono<Env>, deps: RouteDeps): void {
  const { common, storage, jobs, requireKey, idempotent, jsonBody, setJobId, checkMaxTokens } = deps;
  const { options } = common;

  app.post('/v1/jobs', requireKey, idempotent, async (c) => {
    const body = parseOr400(jobSubmitRequest, await jsonBody(c));
    if (body.request.stream === true) {
      throw new GatewayError('invalid_request', 'async jobs cannot stream: drop request.stream', {
        param: 'request.stream',
      });
    }
    if (isConfidentialBody(body.request))
      throw new GatewayError(
        'invalid_request',
        'confidential jobs run synchronously: send them to POST /v1/chat/completions (docs/confidential.md)',
        { param: 'request.confidential' },
      );
    if (body.webhook_url !== undefined)
      assertWebhookUrl(body.webhook_url, { allowPrivate: options.webhooks.allowPrivate });
    const idem = c.get('idem');
    const opts = { mode: 'async' as const, idempotency: idem, webhookUrl: body.webhook_url };
    let job: JobRecord;
    if (body.type === 'image.generation') {
      // Async image results link their images (GET /v1/images/files/…): no base64 in job records.
      const spec = imageSpec(parseOr400(imageGenerationRequest, body.request, 'request'));
      job = await jobs.prepareImage({ ...spec, responseFormat: 'url', partialImages: 0 }, c.get('key'), opts);
    } else {
      const spec =
        body.type === 'chat.completion'
          ? chatSpec(parseOr400(chatCompletionRequest, body.request, 'request'))
          : completionSpec(parseOr400(completionRequest, body.request, 'request'));
      checkMaxTokens(spec);
      job = await jobs.prepare(spec, c.get('key'), opts);
    }
    setJobId(c, job.id);
    if (idem) await storage.idempotency.setJob(idem.scope, idem.key, job.id);
    jobs.kick();
    return c.json(renderJob(job, undefined), 202, { location: `/v1/jobs/${job.id}` });
  });

  app.get('/v1/jobs/:id', requireKey, async (c) => {
    const id = c.req.param('id').toLowerCase();
    const job = /^0x[0-9a-f]{64}$/.test(id) ? await storage.jobs.get(id) : undefined;
    if (!job || job.payer !== c.get('key').payer)
      throw new GatewayError('job_not_found', `no job ${c.req.param('id')}`, { param: 'id' });
    return c.json(
      renderJob(job, job.status === 'succeeded' ? await storage.receipts.getByJob(job.id) : undefined, {
        origin: new URL(c.req.url).origin,
        progress: jobs.progressOf(job.id),
      }),
    );
  });
}
