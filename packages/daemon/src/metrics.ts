/**
 * One Prometheus registry (text exposition format 0.0.4: counters, gauges and histograms with labels)
 * and one `/metrics` server, for every daemon. Enough for one process's own metrics without a dependency.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export type Labels<L extends string = string> = { readonly [K in L]: string | number };

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');
const formatNumber = (n: number) =>
  Number.isFinite(n) ? String(n) : n > 0 ? '+Inf' : n < 0 ? '-Inf' : 'NaN';

/** The series' identity: its labels whatever the order they were given in. */
function seriesKey(labels: Labels | undefined): string {
  if (!labels || Object.keys(labels).length === 0) return '';
  return JSON.stringify(
    Object.keys(labels)
      .sort()
      .map((k) => [k, String(labels[k])]),
  );
}
/** `a="1",b="2"` in the order the labels were first given. */
function labelText(labels: Labels | undefined): string {
  if (!labels) return '';
  return Object.keys(labels)
    .map((k) => `${k}="${escapeLabel(String(labels[k]))}"`)
    .join(',');
}
function withLabels(name: string, key: string, extra?: string): string {
  const all = [key, extra].filter((s) => s).join(',');
  return all ? `${name}{${all}}` : name;
}

type Family = { name: string; help: string; type: 'counter' | 'gauge' | 'histogram'; lines(): string[] };

export type Counter<L extends string = string> = {
  inc(labels?: Labels<L>, by?: number): void;
  get(labels?: Labels<L>): number;
};
export type Gauge<L extends string = string> = {
  set(labels: Labels<L> | undefined, value: number): void;
  inc(labels?: Labels<L>, by?: number): void;
  dec(labels?: Labels<L>, by?: number): void;
  get(labels?: Labels<L>): number;
};
export type Histogram<L extends string = string> = {
  observe(labels: Labels<L> | undefined, value: number): void;
};

export type MetricsRegistry = {
  counter<L extends string = string>(name: string, help: string): Counter<L>;
  gauge<L extends string = string>(name: string, help: string): Gauge<L>;
  histogram<L extends string = string>(name: string, help: string, buckets: readonly number[]): Histogram<L>;
  /** Runs before each scrape (gauges read from elsewhere: a hub, a database). */
  addCollector(fn: () => void | Promise<void>): void;
  /** The exposition text of every family, collectors run first. */
  render(): Promise<string>;
};

/** Durations in seconds, from 5 ms to 2 minutes. */
export const SECONDS_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120,
] as const;

/**
 * A registry. A name registered twice gives the family registered first (a feature created twice in
 * one process shares its series), and throws when the second asks for another type.
 */
export function createMetricsRegistry(): MetricsRegistry {
  const families = new Map<string, { family: Family; handle: unknown }>();
  const collectors: (() => void | Promise<void>)[] = [];

  function register<T>(name: string, type: Family['type'], make: () => { family: Family; handle: T }): T {
    const existing = families.get(name);
    if (existing) {
      if (existing.family.type !== type)
        throw new TypeError(`metric ${name} is already registered as a ${existing.family.type}`);
      return existing.handle as T;
    }
    const made = make();
    families.set(name, made);
    return made.handle;
  }

  function values(name: string, help: string, type: 'counter' | 'gauge') {
    const series = new Map<string, { text: string; value: number }>();
    const family: Family = {
      name,
      help,
      type,
      lines: () => [...series.values()].map((s) => `${withLabels(name, s.text)} ${formatNumber(s.value)}`),
    };
    const entry = (labels: Labels | undefined) => {
      const k = seriesKey(labels);
      let e = series.get(k);
      if (!e) {
        e = { text: labelText(labels), value: 0 };
        series.set(k, e);
      }
      return e;
    };
    const add = (labels: Labels | undefined, by: number) => {
      entry(labels).value += by;
    };
    const get = (labels: Labels | undefined) => series.get(seriesKey(labels))?.value ?? 0;
    return { family, entry, add, get };
  }

  return {
    counter<L extends string>(name: string, help: string): Counter<L> {
      return register(name, 'counter', () => {
        const { family, add, get } = values(name, help, 'counter');
        const handle: Counter<L> = {
          inc(labels, by = 1) {
            if (by < 0) throw new RangeError('a counter only goes up');
            add(labels, by);
          },
          get,
        };
        return { family, handle };
      });
    },
    gauge<L extends string>(name: string, help: string): Gauge<L> {
      return register(name, 'gauge', () => {
        const { family, entry, add, get } = values(name, help, 'gauge');
        const handle: Gauge<L> = {
          set: (labels, value) => {
            entry(labels).value = value;
          },
          inc: (labels, by = 1) => add(labels, by),
          dec: (labels, by = 1) => add(labels, -by),
          get,
        };
        return { family, handle };
      });
    },
    histogram<L extends string>(name: string, help: string, buckets: readonly number[]): Histogram<L> {
      return register(name, 'histogram', () => {
        const series = new Map<string, { text: string; counts: number[]; sum: number; count: number }>();
        const family: Family = {
          name,
          help,
          type: 'histogram',
          lines: () =>
            [...series.values()].flatMap((s) => [
              ...buckets.map(
                (b, i) => `${withLabels(`${name}_bucket`, s.text, `le="${formatNumber(b)}"`)} ${s.counts[i]}`,
              ),
              `${withLabels(`${name}_bucket`, s.text, 'le="+Inf"')} ${s.count}`,
              `${withLabels(`${name}_sum`, s.text)} ${formatNumber(s.sum)}`,
              `${withLabels(`${name}_count`, s.text)} ${s.count}`,
            ]),
        };
        const handle: Histogram<L> = {
          observe(labels, value) {
            const k = seriesKey(labels);
            let s = series.get(k);
            if (!s) {
              s = { text: labelText(labels), counts: buckets.map(() => 0), sum: 0, count: 0 };
              series.set(k, s);
            }
            buckets.forEach((b, i) => {
              if (value <= b) s.counts[i] = (s.counts[i] ?? 0) + 1;
            });
            s.sum += value;
            s.count += 1;
          },
        };
        return { family, handle };
      });
    },
    addCollector(fn) {
      collectors.push(fn);
    },
    async render() {
      for (const c of collectors) await c();
      const out: string[] = [];
      for (const { family: f } of families.values())
        out.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`, ...f.lines());
      return `${out.join('\n')}\n`;
    },
  };
}

export type MetricsServer = {
  /** `http://host:port/metrics`. */
  url: string;
  close(): Promise<void>;
};

export type StartMetricsServerParameters = {
  port: number;
  host: string;
  /** `GET /healthz`: 200 when `ok`, else 503, with this object as JSON. Without it, /healthz is 404. */
  health?: (() => { ok: boolean } & Record<string, unknown>) | undefined;
};

/** Serves `GET /metrics` (Prometheus text format) and `GET /healthz`; port 0 picks a free port. */
export async function startMetricsServer(
  registry: Pick<MetricsRegistry, 'render'>,
  { port, host, health }: StartMetricsServerParameters,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') res.writeHead(405, { allow: 'GET, HEAD' }).end();
    else if (path === '/metrics')
      registry.render().then(
        (text) =>
          res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' }).end(text),
        () => res.writeHead(500, { 'content-type': 'text/plain' }).end('metrics collection failed\n'),
      );
    else if (path === '/healthz' && health) {
      const h = health();
      res.writeHead(h.ok ? 200 : 503, { 'content-type': 'application/json' }).end(JSON.stringify(h));
    } else res.writeHead(404, { 'content-type': 'text/plain' }).end('not found\n');
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const hostForUrl = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return {
    url: `http://${hostForUrl}:${address.port}/metrics`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
