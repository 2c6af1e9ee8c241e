import type { ListOf, Worker } from '../api.ts';
import {
  Address,
  Amount,
  Badge,
  Card,
  Empty,
  ErrorNote,
  Loading,
  OnlineDot,
  RelTime,
} from '../components/ui.tsx';
import { formatCompact, formatDuration, formatMemory, formatNumber, formatPercent } from '../format.ts';
import { useResource } from '../hooks.ts';

export function BondState({
  b,
}: {
  b: { active: boolean; unbonding: { wei: string }; stake: { wei: string } };
}) {
  if (b.active) return <Badge tone="good">active</Badge>;
  if (BigInt(b.unbonding.wei) > 0n) return <Badge tone="warn">unbonding</Badge>;
  if (BigInt(b.stake.wei) > 0n) return <Badge tone="warn">below minimum</Badge>;
  return <Badge>withdrawn</Badge>;
}

function Gpu({ w }: { w: Worker }) {
  if (!w.hardware) return <span class="muted">offline</span>;
  if (w.hardware.gpus.length === 0) return <span class="muted">CPU · {w.hardware.cpu_cores} cores</span>;
  const names = [...new Set(w.hardware.gpus.map((g) => g.name))];
  return (
    <>
      <div>
        {w.hardware.gpus.length > 1 ? `${w.hardware.gpus.length}× ` : ''}
        {names.join(', ')}
      </div>
      <div class="muted small">{formatMemory(w.hardware.vram_mb)} VRAM</div>
    </>
  );
}

export function WorkersPage() {
  const { data, error } = useResource<ListOf<Worker>>('/workers');
  const online = data?.data.filter((w) => w.online).length ?? 0;
  return (
    <div class="page">
      <div class="page-head">
        <div>
          <h1>Workers</h1>
          <p class="muted">
            GPU operators serving inference. A bond of at least the minimum makes a worker active; stake,
            slashes and earnings are read from the chain, jobs from this gateway.
          </p>
        </div>
      </div>
      <ErrorNote error={error} />
      <Card
        title={
          data
            ? `${data.data.length} worker${data.data.length === 1 ? '' : 's'} · ${online} online`
            : 'Workers'
        }
        testid="workers"
      >
        {!data ? (
          <Loading rows={4} />
        ) : data.data.length === 0 ? (
          <Empty title="No worker has bonded yet">
            Bond with <code>aipg stake worker 1000</code>, then start a worker node.
          </Empty>
        ) : (
          <div class="table-wrap">
            <table class="table" data-testid="workers-table">
              <thead>
                <tr>
                  <th>Worker</th>
                  <th class="num">Stake</th>
                  <th>Models</th>
                  <th>GPU / VRAM</th>
                  <th class="num">Jobs served</th>
                  <th class="num">Speed</th>
                  <th class="num" title="Share of audited jobs that passed">
                    Audit pass rate
                  </th>
                  <th class="num">Earnings</th>
                  <th class="num">Slashes</th>
                </tr>
              </thead>
              <tbody>
                {data.data.map((w) => (
                  <tr key={w.address} data-testid={`worker-${w.address}`}>
                    <td data-label="Worker">
                      <div class="cell-title">
                        <OnlineDot online={w.online} /> <Address address={w.address} />
                      </div>
                      <div class="small">
                        <BondState b={w} />
                      </div>
                    </td>
                    <td class="num" data-label="Stake" data-col="stake">
                      <Amount value={w.stake} />
                      {BigInt(w.unbonding.wei) > 0n && (
                        <div class="muted small">+{w.unbonding.display} unbonding</div>
                      )}
                    </td>
                    <td data-label="Models">
                      {w.models.length === 0 ? (
                        <span class="muted">—</span>
                      ) : (
                        <div class="chips">
                          {w.models.map((m) => (
                            <span key={m.id} class={`chip ${m.online ? 'chip-on' : ''}`} title={m.id}>
                              {m.name}
                            </span>
                          ))}
                        </div>
                      )}
                    </td>
                    <td data-label="GPU / VRAM">
                      <Gpu w={w} />
                    </td>
                    <td class="num" data-label="Jobs served" data-col="jobs">
                      {formatCompact(w.jobs.served)}
                      {(w.jobs.images ?? 0) > 0 && (
                        <span class="muted small" data-col="images">
                          {' '}
                          · {formatCompact(w.jobs.images ?? 0)} images
                        </span>
                      )}
                      <div class="muted small">
                        {w.jobs.last_at ? (
                          <>
                            last <RelTime iso={w.jobs.last_at} />
                          </>
                        ) : (
                          'none yet'
                        )}
                      </div>
                    </td>
                    <td class="num" data-label="Speed">
                      {w.jobs.median_tokens_per_second !== null
                        ? `${formatNumber(w.jobs.median_tokens_per_second, 1)} tok/s`
                        : '—'}
                      <div class="muted small">TTFT {formatDuration(w.jobs.median_ttft_ms)}</div>
                    </td>
                    <td class="num" data-label="Audit pass rate" data-col="audits">
                      {w.audits.total === 0 ? (
                        <span
                          class="muted"
                          title={
                            data.audits_enabled ? 'no audited job yet' : 'audits arrive with the AuditFacet'
                          }
                        >
                          {formatPercent(w.audits.pass_rate)}
                        </span>
                      ) : (
                        <>
                          <span class={w.audits.failed > 0 ? 'bad' : 'good'}>
                            {formatPercent(w.audits.pass_rate)}
                          </span>
                          <div class="muted small">
                            {w.audits.total} audit{w.audits.total === 1 ? '' : 's'}
                            {w.audits.failed > 0 ? ` · ${w.audits.failed} failed` : ''}
                          </div>
                        </>
                      )}
                    </td>
                    <td class="num" data-label="Earnings" data-col="earnings">
                      <Amount value={w.earnings.earned} />
                      {BigInt(w.earnings.available.wei) > 0n && (
                        <div class="muted small">{w.earnings.available.display} to withdraw</div>
                      )}
                    </td>
                    <td class="num" data-label="Slashes" data-col="slashes">
                      {w.slashes.count === 0 ? (
                        <span class="muted">none</span>
                      ) : (
                        <span class="bad">
                          {w.slashes.count} · <Amount value={w.slashes.amount} />
                        </span>
                      )}
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
        {data && !data.audits_enabled && (
          <p class="note">
            Audit pass rates appear once validators start auditing jobs (the audit contracts are not deployed
            on this network yet).
          </p>
        )}
      </Card>
    </div>
  );
}
