/**
 * The validator's Prometheus metrics (text exposition format 0.0.4) and the small server that
 * exposes them on `GET /metrics`, with `GET /healthz`. Counters and gauges with labels are all a
 * validator needs; no dependency.
 */
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

const escapeLabel = (v: string) => v.replace(/\\/g, '\\\\').replace(/\n/g, '\\n').replace(/"/g, '\\"');

class Family<L extends string> {
  private readonly series = new Map<string, { labels: Record<L, string>; value: number }>();
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: 'counter' | 'gauge',
  ) {}
  private entry(labels: Record<L, string>) {
    const key = JSON.stringify(Object.entries(labels).sort());
    let e = this.series.get(key);
    if (!e) {
      e = { labels: { ...labels }, value: 0 };
      this.series.set(key, e);
    }
    return e;
  }
  inc(labels: Record<L, string>, by = 1): void {
    if (this.type === 'counter' && by < 0) throw new RangeError('a counter only goes up');
    this.entry(labels).value += by;
  }
  set(labels: Record<L, string>, value: number): void {
    this.entry(labels).value = value;
  }
  get(labels: Record<L, string>): number {
    return this.entry(labels).value;
  }
  render(): string {
    const lines = [`# HELP ${this.name} ${this.help}`, `# TYPE ${this.name} ${this.type}`];
    for (const { labels, value } of this.series.values()) {
      const keys = Object.keys(labels) as L[];
      const l = keys.length ? `{${keys.map((k) => `${k}="${escapeLabel(labels[k])}"`).join(',')}}` : '';
      lines.push(`${this.name}${l} ${Number.isFinite(value) ? value : 'NaN'}`);
    }
    return lines.join('\n');
  }
}

export function createValidatorMetrics() {
  const m = {
    audits: new Family<'verdict'>(
      'aipg_validator_audits_total',
      'Audited jobs judged, by verdict (pass, fail), abstained, or unrevealed (committed, reveal missed).',
      'counter',
    ),
    attestations: new Family<'vote' | 'outcome'>(
      'aipg_validator_attestations_total',
      'Vote transactions, by vote and outcome (committed, revealed, refused).',
      'counter',
    ),
    finalized: new Family<'verdict'>(
      'aipg_validator_finalized_total',
      'Audits this validator finalized, by verdict.',
      'counter',
    ),
    errors: new Family<'code'>('aipg_validator_errors_total', 'Errors, by code.', 'counter'),
    gatewayFaults: new Family<'gateway' | 'reason'>(
      'aipg_validator_gateway_faults_total',
      'Audited jobs whose gateway evidence does not reproduce the worker-signed receipt (abstained, the gateway reported), by gateway and reason code.',
      'counter',
    ),
    scoresRejected: new Family<'reason'>(
      'aipg_validator_scores_rejected_total',
      'Cross-check answers rejected and never judged with (unsigned, signed by a key that is not the drawn bond’s operator, another worker than drawn, other ids, not a distribution), by reason.',
      'counter',
    ),
    scorerDisagreements: new Family<never>(
      'aipg_validator_scorer_disagreements_total',
      'Audits abstained because the second drawn scorer did not confirm the first one’s FAIL (both signed score sets kept).',
      'counter',
    ),
    withdrawn: new Family<never>(
      'aipg_validator_withdrawn_aipg_total',
      'Earnings withdrawn, AIPG.',
      'counter',
    ),
    cursor: new Family<never>('aipg_validator_cursor_block', 'Next block the log cursor reads.', 'gauge'),
    pending: new Family<never>(
      'aipg_validator_pending_audits',
      'Assigned audits whose vote is not committed yet.',
      'gauge',
    ),
    earnings: new Family<never>(
      'aipg_validator_earnings_aipg',
      'Unwithdrawn earnings of the bond owner, AIPG.',
      'gauge',
    ),
  };
  return {
    ...m,
    render: () =>
      `${Object.values(m)
        .map((f) => f.render())
        .join('\n')}\n`,
  };
}
export type ValidatorMetrics = ReturnType<typeof createValidatorMetrics>;

export type MetricsServer = { url: string; close(): Promise<void> };

export async function startMetricsServer(
  metrics: ValidatorMetrics,
  { port, host }: { port: number; host: string },
  health: () => { ok: boolean; state: string } & Record<string, unknown>,
): Promise<MetricsServer> {
  const server: Server = createServer((req, res) => {
    const path = (req.url ?? '/').split('?')[0];
    if (req.method !== 'GET' && req.method !== 'HEAD') res.writeHead(405, { allow: 'GET, HEAD' }).end();
    else if (path === '/metrics')
      res
        .writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
        .end(metrics.render());
    else if (path === '/healthz') {
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
