/**
 * The worker's metrics: @aipg/daemon's Prometheus registry (the one every daemon uses) with the
 * worker's series created on it.
 */
import { createMetricsRegistry } from '@aipg/daemon';

/** Everything the worker exports on `/metrics`. */
export function createWorkerMetrics() {
  const registry = createMetricsRegistry();
  return {
    ...registry,
    jobs: registry.counter<'model' | 'outcome'>(
      'aipg_worker_jobs_total',
      'Jobs received, by model and outcome (completed, failed, cancelled, rejected).',
    ),
    tokens: registry.counter<'model' | 'direction'>(
      'aipg_worker_tokens_total',
      'Tokens of completed jobs, by model and direction (input = prompt, output = generated).',
    ),
    errors: registry.counter<'model' | 'code'>(
      'aipg_worker_job_errors_total',
      'job-error frames sent, by model and code.',
    ),
    activeJobs: registry.gauge<'model'>('aipg_worker_active_jobs', 'Jobs running now, by model.'),
    capacity: registry.gauge<'model'>('aipg_worker_max_concurrency', 'Jobs a model may run at once.'),
    connected: registry.gauge('aipg_worker_gateway_connected', '1 while logged in to the gateway, else 0.'),
    reconnects: registry.counter('aipg_worker_gateway_reconnects_total', 'Connection attempts after a drop.'),
    jobSeconds: registry.histogram<'model'>(
      'aipg_worker_job_duration_seconds',
      'Wall time of completed jobs.',
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    ),
    ttftSeconds: registry.histogram<'model'>(
      'aipg_worker_time_to_first_token_seconds',
      'Time to first token of completed jobs.',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    ),
  };
}
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
