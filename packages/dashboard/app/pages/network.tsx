import { useState } from 'preact/hooks';
import type { Model, Models, Summary, Timeseries } from '../api.ts';
import { PendingChangesCard } from '../components/audits.tsx';
import { LineChart, type Series } from '../components/chart.tsx';
import { GatewaysCard } from '../components/gateways.tsx';
import {
  Amount,
  Badge,
  Card,
  Empty,
  ErrorNote,
  Loading,
  RelTime,
  Segmented,
  Stat,
} from '../components/ui.tsx';
import {
  formatAipg,
  formatBps,
  formatCompact,
  formatDuration,
  formatNumber,
  formatParams,
  formatSize,
  imageFeeWei,
} from '../format.ts';
import { useResource } from '../hooks.ts';

type WindowName = '15m' | '1h' | '6h' | '24h' | '7d';
const WINDOWS: { value: WindowName; label: string }[] = [
  { value: '15m', label: '15 min' },
  { value: '1h', label: '1 h' },
  { value: '6h', label: '6 h' },
  { value: '24h', label: '24 h' },
  { value: '7d', label: '7 d' },
];

const PALETTE = ['var(--c1)', 'var(--c2)', 'var(--c3)', 'var(--c4)', 'var(--c5)', 'var(--c6)'];

function timeLabel(window: WindowName) {
  return (ms: number) => {
    const d = new Date(ms);
    if (window === '7d') return d.toLocaleDateString('en-US', { weekday: 'short', day: 'numeric' });
    return d.toLocaleTimeString('en-US', { hour: '2-digit', minute: '2-digit', hour12: false });
  };
}

function SummaryCards({ s }: { s: Summary | undefined }) {
  if (!s) return <Loading rows={2} />;
  const stake = BigInt(s.workers.stake.wei) + BigInt(s.validators.stake.wei);
  const last = s.settlement.last_batch;
  return (
    <div class="stats-grid" data-testid="summary">
      <Stat
        label="Workers online"
        testid="stat-workers-online"
        value={formatNumber(s.workers.online, 0)}
        hint={`${formatNumber(s.workers.bonded, 0)} bonded · ${s.models.active} model${s.models.active === 1 ? '' : 's'}`}
        tone={s.workers.online > 0 ? 'good' : undefined}
      />
      <Stat
        label="Throughput (5 min)"
        testid="stat-throughput"
        value={
          <>
            {formatNumber(s.throughput.tokens_per_second ?? 0, 1)}
            <span class="unit"> tok/s</span>
          </>
        }
        hint={
          <>
            {formatNumber(s.throughput.jobs_per_minute ?? 0, 1)} jobs/min
            {(s.models.active_image ?? 0) > 0 && (
              <span data-testid="stat-images-per-minute">
                {' '}
                · {formatNumber(s.throughput.images_per_minute ?? 0, 1)} images/min
              </span>
            )}
          </>
        }
      />
      <Stat
        label="Jobs (24 h)"
        testid="stat-jobs"
        value={formatCompact(s.last_24h.jobs)}
        hint={`median first token ${formatDuration(s.last_24h.median_ttft_ms)}${
          (s.models.active_image ?? 0) > 0 ? ` · ${formatCompact(s.last_24h.images ?? 0)} images` : ''
        }`}
      />
      <Stat
        label="Total staked"
        testid="stat-stake"
        value={
          <>
            {formatAipg(stake, 0)}
            <span class="unit"> AIPG</span>
          </>
        }
        hint={`workers ${s.workers.stake.display} · validators ${s.validators.stake.display}`}
      />
      <Stat
        label="Settled on chain"
        testid="stat-settled"
        value={<Amount value={s.settlement.total} />}
        hint={
          last ? (
            <>
              {s.settlement.batches} batch{s.settlement.batches === 1 ? '' : 'es'} · last{' '}
              <RelTime iso={last.time} />
            </>
          ) : (
            'no batch settled yet'
          )
        }
      />
      <Stat
        label="Slashes"
        testid="stat-slashes"
        value={formatNumber(s.slashes.count, 0)}
        hint={s.slashes.count ? <Amount value={s.slashes.total} /> : 'none so far'}
        tone={s.slashes.count ? 'bad' : undefined}
      />
    </div>
  );
}

/** Whether a model is an image model (`kind`); gateways older than the image flavour list text models only. */
const isImage = (m: Model) => m.kind === 'image';

function TextRateTable({ models, premiumBps }: { models: Model[]; premiumBps: number }) {
  return (
    <div class="table-wrap">
      <table class="table rate-card" data-testid="rate-card">
        <thead>
          <tr>
            <th>Model</th>
            <th class="num">Input / 1M</th>
            <th class="num">Output / 1M</th>
            <th class="num" title="Confidential jobs pay the premium on both rates">
              Confidential {formatBps(premiumBps, true)}
            </th>
            <th class="num">Workers</th>
            <th class="num">Tokens/s</th>
            <th class="num">Median TTFT</th>
            <th class="num">Jobs/min</th>
            <th class="num">Queue</th>
          </tr>
        </thead>
        <tbody>
          {models.map((m: Model) => (
            <tr key={m.id} data-testid={`model-${m.name}`} class={m.active ? '' : 'inactive'}>
              <td data-label="Model">
                <div class="cell-title">
                  {m.name} {!m.active && <Badge tone="warn">inactive</Badge>}
                </div>
                <div class="muted small">
                  {m.kind} · {formatParams(m.parameter_count)} params
                  {m.min_vram_mb ? ` · ≥${formatNumber(m.min_vram_mb / 1024, 1)} GB VRAM` : ''}
                </div>
              </td>
              <td class="num" data-label="Input / 1M" data-col="input">
                <Amount value={m.rates.input_per_m} />
              </td>
              <td class="num" data-label="Output / 1M" data-col="output">
                <Amount value={m.rates.output_per_m} />
              </td>
              <td class="num" data-label="Confidential">
                <span class="muted small">
                  {m.rates.confidential_input_per_m.display} / {m.rates.confidential_output_per_m.display}
                </span>
              </td>
              <td class="num" data-label="Workers" data-col="workers">
                <Workers m={m} />
              </td>
              <td class="num" data-label="Tokens/s" data-col="tps">
                {formatNumber(m.recent.tokens_per_second ?? 0, 1)}
              </td>
              <td class="num" data-label="Median TTFT" data-col="ttft">
                {formatDuration(m.latency.median_ttft_ms)}
              </td>
              <td class="num" data-label="Jobs/min" data-col="jpm">
                {formatNumber(m.recent.jobs_per_minute ?? 0, 1)}
                <div class="muted small">{formatCompact(m.totals.jobs)} total</div>
              </td>
              <td class="num" data-label="Queue" data-col="queue">
                <Queue m={m} />
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </div>
  );
}

function Workers({ m }: { m: Model }) {
  return (
    <>
      {m.workers_online}
      {m.capacity > 0 && (
        <span class="muted small">
          {' '}
          · {m.in_flight}/{m.capacity} busy
        </span>
      )}
    </>
  );
}

function Queue({ m }: { m: Model }) {
  return (
    <>
      {m.queue.queued}
      {m.queue.running > 0 && <span class="muted small"> · {m.queue.running} running</span>}
    </>
  );
}

const EXAMPLE = { width: 1024, height: 1024, steps: 20, n: 1 } as const;

/**
 * Image models: AIPG per megapixel-step, the price of one 1024×1024 image at 20 steps, images per
 * minute, seconds per step and the queue. Never a prompt or an image (the API has neither).
 */
function ImageRateTable({ models }: { models: Model[] }) {
  return (
    <div class="table-wrap">
      <table class="table rate-card" data-testid="image-rate-card">
        <thead>
          <tr>
            <th>Image model</th>
            <th class="num" title="AIPG per megapixel-step: width × height × steps × images / 1,000,000">
              Per megapixel-step
            </th>
            <th class="num" title="One 1024×1024 image at 20 steps">
              1024×1024 · 20 steps
            </th>
            <th class="num">Workers</th>
            <th class="num">Images/min</th>
            <th class="num" title="Median of total time / (steps × images) over the last hour">
              Sec/step
            </th>
            <th class="num">Jobs/min</th>
            <th class="num">Queue</th>
          </tr>
        </thead>
        <tbody>
          {models.map((m: Model) => {
            const img = m.image ?? null;
            // A gateway that lists the model without `image` (none so far) still gets the example price.
            const example =
              img?.example.price.display ?? formatAipg(imageFeeWei(m.rates.per_megapixel_step.wei, EXAMPLE));
            const offered = img?.offered;
            return (
              <tr key={m.id} data-testid={`model-${m.name}`} class={m.active ? '' : 'inactive'}>
                <td data-label="Model">
                  <div class="cell-title">
                    {m.name} {!m.active && <Badge tone="warn">inactive</Badge>}
                  </div>
                  <div class="muted small" data-col="offered">
                    image
                    {offered
                      ? ` · ${offered.sizes.map(formatSize).join(', ')} · ${offered.min_steps}–${offered.max_steps} steps · up to ${offered.max_n}`
                      : ' · no worker online'}
                  </div>
                </td>
                <td class="num" data-label="Per megapixel-step" data-col="per-mp-step">
                  <Amount value={m.rates.per_megapixel_step} />
                </td>
                <td class="num" data-label="1024×1024 · 20 steps" data-col="example">
                  <span class="amount" title={img ? `${img.example.price.aipg} AIPG` : undefined}>
                    <span class="num">{example}</span>
                    <span class="unit"> AIPG</span>
                  </span>
                </td>
                <td class="num" data-label="Workers" data-col="workers">
                  <Workers m={m} />
                </td>
                <td class="num" data-label="Images/min" data-col="ipm">
                  {formatNumber(img?.recent.images_per_minute ?? 0, 2)}
                  <div class="muted small">{formatCompact(img?.recent.images ?? 0)} in 5 min</div>
                </td>
                <td class="num" data-label="Sec/step" data-col="sps">
                  {img?.latency.median_seconds_per_step != null
                    ? `${formatNumber(img.latency.median_seconds_per_step, 3)} s`
                    : '—'}
                </td>
                <td class="num" data-label="Jobs/min" data-col="jpm">
                  {formatNumber(m.recent.jobs_per_minute ?? 0, 1)}
                  <div class="muted small">{formatCompact(m.totals.jobs)} total</div>
                </td>
                <td class="num" data-label="Queue" data-col="queue">
                  <Queue m={m} />
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>
    </div>
  );
}

function RateCard({ models }: { models: Models | undefined }) {
  if (!models) return <Loading rows={3} />;
  if (models.data.length === 0) {
    return (
      <Empty title="No model registered yet">
        Models appear here as soon as the registry's <code>ModelRegistered</code> event is indexed.
      </Empty>
    );
  }
  const text = models.data.filter((m) => !isImage(m));
  const image = models.data.filter(isImage);
  return (
    <>
      {text.length > 0 && <TextRateTable models={text} premiumBps={models.confidential_premium_bps} />}
      {image.length > 0 && <ImageRateTable models={image} />}
    </>
  );
}

function Charts({ ts, window }: { ts: Timeseries | undefined; window: WindowName }) {
  if (!ts) return <Loading rows={4} />;
  const domain: [number, number] = [Date.parse(ts.from), Date.parse(ts.to)];
  const xs = ts.points.map((p) => Date.parse(p.t) + (ts.bucket_s * 1000) / 2);
  const xFormat = timeLabel(window);
  const throughput: Series[] = [
    {
      name: 'Tokens/s',
      color: 'var(--c1)',
      area: true,
      points: ts.points.map((p, i) => ({ x: xs[i]!, y: p.tokens_per_second ?? 0 })),
    },
  ];
  const jobs: Series[] = [
    {
      name: 'Jobs/min',
      color: 'var(--c2)',
      area: true,
      points: ts.points.map((p, i) => ({ x: xs[i]!, y: p.jobs_per_minute ?? 0 })),
    },
  ];
  const ttft: Series[] = [
    {
      name: 'Median TTFT',
      color: 'var(--c3)',
      points: ts.points.map((p, i) => ({ x: xs[i]!, y: p.median_ttft_ms })),
    },
  ];
  const images = ts.points.some((p) => (p.images ?? 0) > 0);
  if (images) {
    jobs.push({
      name: 'Images/min',
      color: 'var(--c4)',
      points: ts.points.map((p, i) => ({ x: xs[i]!, y: p.images_per_minute ?? 0 })),
    });
  }
  // Per-token rates: an image model's are per megapixel-step (on the rate card).
  const prices: Series[] = ts.prices
    .filter((m) => m.kind !== 'image')
    .flatMap((m, i) => {
      const color = PALETTE[i % PALETTE.length]!;
      const aipg = (wei: string) => Number(BigInt(wei) / 10n ** 12n) / 1e6;
      return [
        {
          name: `${m.name} output`,
          color,
          step: true,
          points: m.points.map((p) => ({ x: Date.parse(p.t), y: aipg(p.output_per_m.wei) })),
        },
        {
          name: `${m.name} input`,
          color,
          step: true,
          dashed: true,
          points: m.points.map((p) => ({ x: Date.parse(p.t), y: aipg(p.input_per_m.wei) })),
        },
      ];
    });
  return (
    <>
      <div class="grid-2">
        <Card title="Throughput" subtitle={`output tokens per second, ${ts.bucket_s}-second buckets`}>
          <LineChart
            label="Throughput in tokens per second"
            series={throughput}
            xDomain={domain}
            xFormat={xFormat}
            yFormat={(v, step) => formatNumber(v, step < 1 ? 2 : 0)}
            empty="No completed jobs in this window"
          />
        </Card>
        <Card
          title="Jobs per minute"
          subtitle={images ? 'completed jobs, and images delivered' : 'completed jobs'}
        >
          <LineChart
            label="Jobs per minute"
            series={jobs}
            xDomain={domain}
            xFormat={xFormat}
            yFormat={(v, step) => formatNumber(v, step < 1 ? 2 : 0)}
            empty="No completed jobs in this window"
          />
        </Card>
      </div>
      <div class="grid-2">
        <Card title="Time to first token" subtitle="median per bucket">
          <LineChart
            label="Median time to first token"
            series={ttft}
            xDomain={domain}
            xFormat={xFormat}
            yFormat={(v) => formatDuration(v)}
            empty="No completed jobs in this window"
          />
        </Card>
        <Card title="Prices" subtitle="AIPG per 1M tokens: output (solid), input (dashed)">
          {prices.length ? (
            <LineChart
              label="Rate card over time"
              series={prices}
              xDomain={domain}
              xFormat={xFormat}
              yFormat={(v, step) => formatNumber(v, step < 1 ? 4 : 0)}
              hoverable={false}
            />
          ) : (
            <Empty title="No rate card yet" />
          )}
        </Card>
      </div>
    </>
  );
}

export function NetworkPage() {
  const summary = useResource<Summary>('/summary');
  const models = useResource<Models>('/models');
  const [window, setWindow] = useState<WindowName>('1h');
  const ts = useResource<Timeseries>(`/stats/timeseries?window=${window}`, 30_000);
  const s = summary.data;
  return (
    <div class="page">
      <div class="page-head">
        <div>
          <h1>Network</h1>
          <p class="muted">
            Live rates and capacity of the grid. Workers keep{' '}
            {s?.revenue_shares_bps.worker ? formatBps(s.revenue_shares_bps.worker) : '—'} of each fee,
            validators {s?.revenue_shares_bps.validator ? formatBps(s.revenue_shares_bps.validator) : '—'}.
          </p>
        </div>
      </div>
      <ErrorNote error={summary.error} />
      <SummaryCards s={s} />
      <Card
        title="Rate card"
        subtitle={
          (models.data?.data ?? []).some(isImage)
            ? 'AIPG per million tokens (text) and per megapixel-step (image), live from the on-chain model registry; stats over the last 5 minutes (TTFT and seconds per step: 1 hour)'
            : 'AIPG per million tokens, live from the on-chain model registry; stats over the last 5 minutes (TTFT: 1 hour)'
        }
        testid="rates"
      >
        <ErrorNote error={models.error} />
        <RateCard models={models.data} />
      </Card>
      <GatewaysCard />
      <div class="section-head">
        <h2>Over time</h2>
        <Segmented label="Time window" value={window} options={WINDOWS} onChange={setWindow} />
      </div>
      <ErrorNote error={ts.error} />
      <Charts ts={ts.data} window={window} />
      <PendingChangesCard />
    </div>
  );
}
