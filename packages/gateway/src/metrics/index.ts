/**
 * The gateway's metrics: @aipg/daemon's Prometheus registry (the one every daemon uses) with the
 * gateway's own series created on it, so every feature shares them.
 */
import {
  type Counter,
  createMetricsRegistry,
  type Gauge,
  type Histogram,
  SECONDS_BUCKETS,
} from '@aipg/daemon';

export type { Counter, Gauge, Histogram };

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const registry = createMetricsRegistry();
  const { counter, gauge, histogram } = registry;
  const seconds = SECONDS_BUCKETS;

  return {
    ...registry,
    // The gateway's own series, created once here so every feature shares them.
    httpRequests: counter('aipg_gateway_http_requests_total', 'HTTP requests by route, method and status.'),
    httpDuration: histogram(
      'aipg_gateway_http_request_duration_seconds',
      'HTTP request duration (until headers for streams).',
      seconds,
    ),
    jobs: counter('aipg_gateway_jobs_total', 'Jobs finished, by model and final status.'),
    jobsByStatus: gauge('aipg_gateway_jobs_by_status', 'Jobs in the database, by status.'),
    batchesByStatus: gauge(
      'aipg_gateway_settlement_batches_by_status',
      'Settlement batches in the database, by status.',
    ),
    jobsInFlight: gauge('aipg_gateway_jobs_in_flight', 'Jobs currently running on workers.'),
    jobDuration: histogram(
      'aipg_gateway_job_duration_seconds',
      'Job duration from dispatch to receipt.',
      seconds,
    ),
    ttft: histogram(
      'aipg_gateway_time_to_first_token_seconds',
      'Time to first token, measured by the gateway.',
      seconds,
    ),
    jobRetries: counter(
      'aipg_gateway_job_retries_total',
      'Jobs handed to another worker after a failure before the first token.',
    ),
    receiptsRejected: counter(
      'aipg_gateway_receipts_rejected_total',
      'Receipts that failed verification, by reason.',
    ),
    workersOnline: gauge('aipg_gateway_workers_online', 'Workers connected and logged in.'),
    workerLogins: counter('aipg_gateway_worker_logins_total', 'Worker login attempts, by result.'),
    batches: counter('aipg_gateway_settlement_batches_total', 'Settlement batches, by final status.'),
    batchReceipts: counter('aipg_gateway_settled_receipts_total', 'Receipts settled on chain.'),
    unsettledReceipts: gauge(
      'aipg_gateway_unsettled_receipts',
      'Receipts waiting to settle: stored and not yet batched, or in a batch not yet settled (held-out receipts are not counted).',
    ),
    settlementErrors: counter(
      'aipg_gateway_settlement_errors_total',
      'Settlement attempts that failed, by kind.',
    ),
    webhooks: counter('aipg_gateway_webhooks_total', 'Webhook deliveries, by result.'),
    rateLimited: counter('aipg_gateway_rate_limited_total', 'Requests refused by a rate limit.'),
  };
}
