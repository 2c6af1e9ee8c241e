/**
 * A small Prometheus registry (text exposition format 0.0.4): counters, gauges and histograms with
 * labels. Enough for the gateway's needs without a dependency.
 */
type Labels = Record<string, string | number>;

type Metric = {
  name: string;
  help: string;
  type: 'counter' | 'gauge' | 'histogram';
  render(): string[];
};

function labelKey(labels: Labels | undefined): string {
  if (!labels) return '';
  const keys = Object.keys(labels).sort();
  return keys
    .map(
      (k) => `${k}="${String(labels[k]).replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"')}"`,
    )
    .join(',');
}

function withLabels(name: string, key: string, extra?: string): string {
  const all = [key, extra].filter((s) => s).join(',');
  return all ? `${name}{${all}}` : name;
}

export type Counter = { inc(labels?: Labels, value?: number): void };
export type Gauge = {
  set(labels: Labels | undefined, value: number): void;
  inc(labels?: Labels, value?: number): void;
};
export type Histogram = { observe(labels: Labels | undefined, value: number): void };

export type Metrics = ReturnType<typeof createMetrics>;

export function createMetrics() {
  const metrics: Metric[] = [];
  const collectors: (() => void | Promise<void>)[] = [];

  function counter(name: string, help: string): Counter {
    const values = new Map<string, number>();
    metrics.push({
      name,
      help,
      type: 'counter',
      render: () => [...values].map(([k, v]) => `${withLabels(name, k)} ${v}`),
    });
    return {
      inc(labels, value = 1) {
        const k = labelKey(labels);
        values.set(k, (values.get(k) ?? 0) + value);
      },
    };
  }

  function gauge(name: string, help: string): Gauge {
    const values = new Map<string, number>();
    metrics.push({
      name,
      help,
      type: 'gauge',
      render: () => [...values].map(([k, v]) => `${withLabels(name, k)} ${v}`),
    });
    return {
      set(labels, value) {
        values.set(labelKey(labels), value);
      },
      inc(labels, value = 1) {
        const k = labelKey(labels);
        values.set(k, (values.get(k) ?? 0) + value);
      },
    };
  }

  function histogram(name: string, help: string, buckets: number[]): Histogram {
    const series = new Map<string, { counts: number[]; sum: number; count: number }>();
    metrics.push({
      name,
      help,
      type: 'histogram',
      render: () =>
        [...series].flatMap(([k, s]) => [
          ...buckets.map((b, i) => `${withLabels(`${name}_bucket`, k, `le="${b}"`)} ${s.counts[i]}`),
          `${withLabels(`${name}_bucket`, k, 'le="+Inf"')} ${s.count}`,
          `${withLabels(`${name}_sum`, k)} ${s.sum}`,
          `${withLabels(`${name}_count`, k)} ${s.count}`,
        ]),
    });
    return {
      observe(labels, value) {
        const k = labelKey(labels);
        let s = series.get(k);
        if (!s) {
          s = { counts: buckets.map(() => 0), sum: 0, count: 0 };
          series.set(k, s);
        }
        buckets.forEach((b, i) => {
          if (value <= b) s.counts[i] = (s.counts[i] ?? 0) + 1;
        });
        s.sum += value;
        s.count += 1;
      },
    };
  }

  const seconds = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];

  return {
    counter,
    gauge,
    histogram,
    /** Runs before each scrape (gauges read from the hub or the database). */
    addCollector(fn: () => void | Promise<void>) {
      collectors.push(fn);
    },
    async render(): Promise<string> {
      for (const c of collectors) await c();
      const out: string[] = [];
      for (const m of metrics) {
        out.push(`# HELP ${m.name} ${m.help}`, `# TYPE ${m.name} ${m.type}`, ...m.render());
      }
      return `${out.join('\n')}\n`;
    },
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
    unsettledReceipts: gauge('aipg_gateway_unsettled_receipts', 'Receipts stored and not yet settled.'),
    settlementErrors: counter(
      'aipg_gateway_settlement_errors_total',
      'Settlement attempts that failed, by kind.',
    ),
    webhooks: counter('aipg_gateway_webhooks_total', 'Webhook deliveries, by result.'),
    rateLimited: counter('aipg_gateway_rate_limited_total', 'Requests refused by a rate limit.'),
  };
}
