/**
 * A small Prometheus registry (text exposition format 0.0.4): counters, gauges and histograms with
 * labels. Enough for one process's own metrics without a dependency.
 */
type Labels<L extends string> = { [K in L]: string };

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const formatNumber = (n: number) =>
  Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';

function labelString(labels: Record<string, string>, extra?: Record<string, string>): string {
  const all = { ...labels, ...extra };
  const keys = Object.keys(all);
  if (keys.length === 0) return '';
  return `{${keys.map((k) => `${k}="${escapeLabel(all[k] ?? '')}"`).join(',')}}`;
}

interface Metric {
  render(): string;
}

class Series<L extends string, V> {
  protected readonly series = new Map<string, { labels: Labels<L>; value: V }>();
  protected entry(labels: Labels<L>, init: () => V) {
    const key = JSON.stringify(Object.entries(labels).sort());
    let e = this.series.get(key);
    if (!e) {
      e = { labels: { ...labels }, value: init() };
      this.series.set(key, e);
    }
    return e;
  }
}

export class Counter<L extends string = never> extends Series<L, number> implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
  ) {
    super();
  }
  inc(labels: Labels<L>, by = 1): void {
    if (by < 0) throw new RangeError('a counter only goes up');
    this.entry(labels, () => 0).value += by;
  }
  get(labels: Labels<L>): number {
    return this.entry(labels, () => 0).value;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} counter`];
    for (const { labels, value } of this.series.values())
      lines.push(`${this.name}${labelString(labels)} ${formatNumber(value)}`);
    return lines.join('\n');
  }
}

export class Gauge<L extends string = never> extends Series<L, number> implements Metric {
  constructor(
    readonly name: string,
    readonly help: string,
  ) {
    super();
  }
  set(labels: Labels<L>, value: number): void {
    this.entry(labels, () => 0).value = value;
  }
  inc(labels: Labels<L>, by = 1): void {
    this.entry(labels, () => 0).value += by;
  }
  dec(labels: Labels<L>, by = 1): void {
    this.entry(labels, () => 0).value -= by;
  }
  get(labels: Labels<L>): number {
    return this.entry(labels, () => 0).value;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} gauge`];
    for (const { labels, value } of this.series.values())
      lines.push(`${this.name}${labelString(labels)} ${formatNumber(value)}`);
    return lines.join('\n');
  }
}

export class Histogram<L extends string = never>
  extends Series<L, { buckets: number[]; sum: number; count: number }>
  implements Metric
{
  constructor(
    readonly name: string,
    readonly help: string,
    readonly bounds: readonly number[],
  ) {
    super();
  }
  observe(labels: Labels<L>, value: number): void {
    const e = this.entry(labels, () => ({ buckets: this.bounds.map(() => 0), sum: 0, count: 0 })).value;
    this.bounds.forEach((b, i) => {
      if (value <= b) e.buckets[i] = (e.buckets[i] ?? 0) + 1;
    });
    e.sum += value;
    e.count += 1;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} histogram`];
    for (const { labels, value } of this.series.values()) {
      this.bounds.forEach((b, i) => {
        lines.push(
          `${this.name}_bucket${labelString(labels, { le: formatNumber(b) })} ${value.buckets[i] ?? 0}`,
        );
      });
      lines.push(`${this.name}_bucket${labelString(labels, { le: '+Inf' })} ${value.count}`);
      lines.push(`${this.name}_sum${labelString(labels)} ${formatNumber(value.sum)}`);
      lines.push(`${this.name}_count${labelString(labels)} ${value.count}`);
    }
    return lines.join('\n');
  }
}

/** Everything the worker exports on `/metrics`. */
export function createWorkerMetrics() {
  const m = {
    jobs: new Counter<'model' | 'outcome'>(
      'aipg_worker_jobs_total',
      'Jobs received, by model and outcome (completed, failed, cancelled, rejected).',
    ),
    tokens: new Counter<'model' | 'direction'>(
      'aipg_worker_tokens_total',
      'Tokens of completed jobs, by model and direction (input = prompt, output = generated).',
    ),
    errors: new Counter<'model' | 'code'>(
      'aipg_worker_job_errors_total',
      'job-error frames sent, by model and code.',
    ),
    activeJobs: new Gauge<'model'>('aipg_worker_active_jobs', 'Jobs running now, by model.'),
    capacity: new Gauge<'model'>('aipg_worker_max_concurrency', 'Jobs a model may run at once.'),
    connected: new Gauge('aipg_worker_gateway_connected', '1 while logged in to the gateway, else 0.'),
    reconnects: new Counter('aipg_worker_gateway_reconnects_total', 'Connection attempts after a drop.'),
    jobSeconds: new Histogram<'model'>(
      'aipg_worker_job_duration_seconds',
      'Wall time of completed jobs.',
      [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300],
    ),
    ttftSeconds: new Histogram<'model'>(
      'aipg_worker_time_to_first_token_seconds',
      'Time to first token of completed jobs.',
      [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    ),
  };
  return {
    ...m,
    render(): string {
      return `${Object.values(m)
        .map((x) => x.render())
        .join('\n')}\n`;
    },
  };
}
export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;
