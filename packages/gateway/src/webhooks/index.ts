import type { Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { Chain } from '../chain/index.ts';
import type { Common } from '../common.ts';
import { renderJob } from '../jobs/render.ts';
import type { Storage } from '../storage/index.ts';
import { isWebhookRefused, postWebhook } from './guard.ts';

export {
  type AddressClass,
  assertWebhookUrl,
  checkWebhookUrl,
  classifyAddress,
  isWebhookRefused,
  postWebhook,
  type Resolve,
  WebhookRefusedError,
  type WebhookUrlCheck,
} from './guard.ts';

/** How often due deliveries are looked for. */
const POLL_MS = 500;
/** Deliveries claimed (and sent at once) per poll. */
const CLAIM = 16;

export type Webhooks = ReturnType<typeof createWebhooks>;

/**
 * Webhook delivery: an async job's final state, signed by the gateway key (EIP-191 over the body,
 * `x-aipg-signature`), POSTed to the URL its submitter gave once the job ends, retried with exponential
 * backoff up to `webhooks.maxAttempts`. Deliveries live in the jobs table (a job is due when its
 * `webhook_next_at` passes), so they survive restarts and any replica may send them; each is claimed
 * before it is sent. A target the address rules refuse (guard.ts) is never retried.
 */
export function createWebhooks({
  common: { options, logger, metrics },
  storage,
  chain,
}: {
  common: Common;
  storage: Storage;
  chain: Pick<Chain, 'gateway'>;
}) {
  const signer = privateKeyToAccount(options.privateKey);
  const sign = (body: string): Promise<Hex> => signer.signMessage({ message: body });

  /** Sends what is due now (at most `CLAIM`), each to its end: delivered, rescheduled or given up. */
  async function deliverDue(): Promise<void> {
    const due = await storage.jobs.claimWebhooks(CLAIM, options.webhooks.timeoutMs * 2);
    await Promise.all(
      due.map(async (job) => {
        const receipt = job.status === 'succeeded' ? await storage.receipts.getByJob(job.id) : undefined;
        const body = JSON.stringify(renderJob(job, receipt));
        let error: string | null = null;
        let refused = false;
        try {
          // Resolved and checked at every attempt (guard.ts): never a private or metadata address.
          const res = await postWebhook(job.webhookUrl!, {
            headers: {
              'content-type': 'application/json',
              'user-agent': 'aipg-gateway',
              'x-aipg-gateway': chain.gateway,
              'x-aipg-signature': await sign(body),
            },
            body,
            timeoutMs: options.webhooks.timeoutMs,
            allowPrivate: options.webhooks.allowPrivate,
          });
          if (res.status < 200 || res.status >= 300) error = `HTTP ${res.status}`;
        } catch (e) {
          error = e instanceof Error ? e.message : String(e);
          refused = isWebhookRefused(e);
        }
        const attempts = job.webhookAttempts + 1;
        const nextAt =
          error === null || refused || attempts >= options.webhooks.maxAttempts
            ? null
            : new Date(Date.now() + options.webhooks.retryBaseMs * 2 ** (attempts - 1));
        await storage.jobs.webhookAttempted(job.id, { delivered: error === null, error, nextAt });
        metrics.webhooks.inc({ result: error === null ? 'delivered' : nextAt ? 'retry' : 'failed' });
        if (error !== null)
          logger.warn({
            msg: 'webhook delivery failed',
            job_id: job.id,
            attempt: attempts,
            error,
            retry: nextAt !== null,
          });
      }),
    );
  }

  let loop: NodeJS.Timeout | undefined;
  let delivering: Promise<void> | undefined;
  function poll() {
    delivering ??= deliverDue()
      .catch((error: unknown) => logger.warn({ msg: 'webhook loop failed', error }))
      .finally(() => {
        delivering = undefined;
      });
  }

  return {
    deliverDue,
    /** Starts looking for due deliveries every 500 ms. */
    start(): void {
      loop ??= setInterval(poll, POLL_MS);
      loop.unref();
    },
    /** Stops the loop and waits for the deliveries under way. */
    async stop(): Promise<void> {
      clearInterval(loop);
      loop = undefined;
      await delivering;
    },
  };
}
