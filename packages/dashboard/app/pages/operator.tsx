import { useMemo, useState } from 'preact/hooks';
import type { ListOf, Operator, Worker } from '../api.ts';
import { ActivityList, formatCountdown } from '../components/activity.tsx';
import {
  Address,
  Amount,
  Badge,
  Card,
  CopyButton,
  Empty,
  ErrorNote,
  Loading,
  OnlineDot,
  RelTime,
} from '../components/ui.tsx';
import { formatCompact, formatDuration, formatMemory, shortAddress } from '../format.ts';
import { useNow, useResource } from '../hooks.ts';
import { BondState } from './workers.tsx';

const ADDRESS = /^0x[0-9a-fA-F]{40}$/;

/** `2× NVIDIA RTX A5000`, `NVIDIA RTX 4090, AMD …`, or `CPU`. */
function gpuSummary(gpus: { name: string }[]): string {
  if (gpus.length === 0) return 'CPU';
  const names = [...new Set(gpus.map((g) => g.name))];
  return names.length === 1 && gpus.length > 1 ? `${gpus.length}× ${names[0]}` : names.join(', ');
}

function Lookup({ initial }: { initial?: string }) {
  const [value, setValue] = useState(initial ?? '');
  const valid = ADDRESS.test(value.trim());
  return (
    <form
      class="lookup"
      onSubmit={(e) => {
        e.preventDefault();
        if (valid) location.hash = `#/operator/${value.trim()}`;
      }}
    >
      <label for="address" class="sr-only">
        Bond owner address
      </label>
      <input
        id="address"
        class="input mono"
        placeholder="0x… bond owner address"
        value={value}
        onInput={(e) => setValue((e.target as HTMLInputElement).value)}
        spellcheck={false}
        autocomplete="off"
      />
      <button type="submit" class="btn btn-primary" disabled={!valid}>
        Open
      </button>
    </form>
  );
}

type BondLike = NonNullable<Operator['worker']> | NonNullable<Operator['validator']>;

function Countdown({ readyAt, skewMs }: { readyAt: string | null; skewMs: number }) {
  const now = useNow(1_000);
  if (!readyAt) return null;
  const left = Math.ceil((Date.parse(readyAt) - (now + skewMs)) / 1000);
  return (
    <span class={left <= 0 ? 'good' : ''} data-testid="unbond-countdown">
      {formatCountdown(left)}
    </span>
  );
}

function BondCard({
  kind: role,
  bond,
  skewMs,
}: {
  kind: 'worker' | 'validator';
  bond: BondLike | null;
  skewMs: number;
}) {
  const title = role === 'worker' ? 'Worker bond' : 'Validator bond';
  if (
    !bond ||
    (BigInt(bond.stake.wei) === 0n && BigInt(bond.unbonding.wei) === 0n && !bond.first_bonded_at)
  ) {
    return (
      <Card title={title} testid={`${role}-bond`}>
        <Empty title={`No ${role} bond`}>
          {role === 'worker' ? 'Workers serve jobs' : 'Validators audit jobs'} with at least{' '}
          {bond?.minimum.display ?? (role === 'worker' ? '1,000' : '10,000')} AIPG bonded.
        </Empty>
      </Card>
    );
  }
  const unbonding = BigInt(bond.unbonding.wei) > 0n;
  const w = role === 'worker' ? (bond as NonNullable<Operator['worker']>) : null;
  return (
    <Card title={title} actions={<BondState b={bond} />} testid={`${role}-bond`}>
      <div class="big-number" data-testid={`${role}-stake`}>
        <Amount value={bond.stake} />
      </div>
      <dl class="kv">
        <dt>Minimum</dt>
        <dd>
          <Amount value={bond.minimum} />
        </dd>
        {unbonding && (
          <>
            <dt>Unbonding</dt>
            <dd>
              <Amount value={bond.unbonding} />
            </dd>
            <dt>Withdrawable in</dt>
            <dd>
              <Countdown readyAt={bond.unbond_ready_at} skewMs={skewMs} />
            </dd>
          </>
        )}
        <dt>Operator key</dt>
        <dd class="mono" title={bond.operator ?? ''}>
          {shortAddress(bond.operator)}
        </dd>
        <dt>Slashed</dt>
        <dd>{bond.slashes.count === 0 ? 'never' : <Amount value={bond.slashes.amount} />}</dd>
        <dt>Bonded since</dt>
        <dd>
          <RelTime iso={bond.first_bonded_at} />
        </dd>
        {w && (
          <>
            <dt>Jobs served</dt>
            <dd>
              {formatCompact(w.jobs.served)}
              {(w.jobs.images ?? 0) > 0 && (
                <span class="muted small"> · {formatCompact(w.jobs.images ?? 0)} images</span>
              )}
              {w.jobs.median_ttft_ms !== null && (
                <span class="muted small"> · median first token {formatDuration(w.jobs.median_ttft_ms)}</span>
              )}
            </dd>
            <dt>Status</dt>
            <dd>
              <OnlineDot online={w.online} /> {w.online ? 'online' : 'offline'}
              {w.hardware && (
                <span class="muted small">
                  {' '}
                  · {gpuSummary(w.hardware.gpus)}
                  {w.hardware.vram_mb ? ` · ${formatMemory(w.hardware.vram_mb)}` : ''}
                </span>
              )}
            </dd>
          </>
        )}
      </dl>
    </Card>
  );
}

function Suggestions() {
  const { data } = useResource<ListOf<Worker>>('/workers', 60_000);
  if (!data || data.data.length === 0) return null;
  return (
    <p class="muted small">
      Or pick a worker:{' '}
      {data.data.slice(0, 6).map((w, i) => (
        <span key={w.address}>
          {i > 0 && ', '}
          <Address address={w.address} />
        </span>
      ))}
    </p>
  );
}

export function OperatorPage({ address }: { address: string | null }) {
  const valid = address !== null && ADDRESS.test(address);
  const { data, error } = useResource<Operator>(valid ? `/operators/${address}` : null, 10_000);
  const skewMs = useMemo(() => (data?.chain_time ? Date.parse(data.chain_time) - Date.now() : 0), [data]);
  if (!valid) {
    return (
      <div class="page">
        <div class="page-head">
          <div>
            <h1>Operator</h1>
            <p class="muted">
              Your bonds, unbonding countdown, earnings and audits, with the CLI command for each action.
            </p>
          </div>
        </div>
        <Card>
          {address !== null && (
            <div class="error-note">"{address}" is not an address (0x and 40 hex digits).</div>
          )}
          <Lookup initial={address ?? ''} />
          <Suggestions />
        </Card>
      </div>
    );
  }
  return (
    <div class="page">
      <div class="page-head">
        <div>
          <h1>Operator</h1>
          <p class="mono break" data-testid="operator-address">
            {data?.address ?? address}
          </p>
        </div>
        <Lookup />
      </div>
      <ErrorNote error={error} />
      {!data ? (
        <Loading rows={6} />
      ) : (
        <>
          <div class="grid-3">
            <BondCard kind="worker" bond={data.worker} skewMs={skewMs} />
            <BondCard kind="validator" bond={data.validator} skewMs={skewMs} />
            <Card title="Earnings" testid="earnings">
              <div class="big-number" data-testid="earnings-available">
                <Amount value={data.earnings.available} />
              </div>
              <p class="muted small">to withdraw</p>
              <dl class="kv">
                <dt>Earned in total</dt>
                <dd>
                  <Amount value={data.earnings.earned} />
                </dd>
                <dt>Withdrawn</dt>
                <dd>
                  <Amount value={data.earnings.withdrawn} />
                </dd>
                <dt>Gross fees</dt>
                <dd>
                  <Amount value={data.earnings.gross} />
                </dd>
              </dl>
            </Card>
          </div>
          <div class="grid-2">
            <Card title="Act from the CLI" subtitle="run these with this address's key" testid="commands">
              <ul class="commands">
                {data.commands.map((c) => (
                  <li key={c.command} class={c.available ? '' : 'unavailable'}>
                    <div class="command-head">
                      <span>{c.action}</span>
                      {!c.available && <Badge>not yet</Badge>}
                    </div>
                    <div class="command-line">
                      <code>{c.command}</code>
                      <CopyButton text={c.command} />
                    </div>
                    {c.note && (
                      <div class="muted small">
                        {c.note.startsWith('ready at ') ? (
                          <>
                            ready in <Countdown readyAt={c.note.slice(9)} skewMs={skewMs} />
                          </>
                        ) : (
                          c.note
                        )}
                      </div>
                    )}
                  </li>
                ))}
              </ul>
            </Card>
            <Card title="Recent audits" testid="audits">
              {data.audits.recent.length > 0 ? (
                <ul class="audits" data-testid="audits-list">
                  {data.audits.recent.map((a) => (
                    <li key={`${a.role}:${a.leaf}`} class="audit-item" data-verdict={a.verdict ?? 'open'}>
                      <div>
                        <b>
                          {a.role === 'worker'
                            ? 'Your job was audited'
                            : `You attested ${a.vote?.toUpperCase()}`}
                        </b>
                        {' · '}
                        {a.verdict === null ? (
                          <span class="muted">awaiting the verdict</span>
                        ) : (
                          <span
                            class={a.verdict === 'pass' ? 'good' : a.verdict === 'fail' ? 'bad' : 'muted'}
                          >
                            verdict {a.verdict.toUpperCase()}
                          </span>
                        )}
                        {a.agreed === false && <span class="bad"> · against the verdict</span>}
                      </div>
                      <div class="muted small">
                        batch #{a.batch_id} · receipt <span class="mono">{shortAddress(a.leaf, 4)}</span>
                        {a.role === 'worker' && a.slashed && BigInt(a.slashed.wei) > 0n && (
                          <>
                            {' '}
                            · slashed <Amount value={a.slashed} />
                          </>
                        )}
                        {a.reward && BigInt(a.reward.wei) > 0n && (
                          <>
                            {' '}
                            · earned <Amount value={a.reward} />
                          </>
                        )}
                        {a.false_attestation_slash && (
                          <>
                            {' '}
                            · slashed <Amount value={a.false_attestation_slash} />
                          </>
                        )}{' '}
                        · <RelTime iso={a.time} />
                      </div>
                    </li>
                  ))}
                </ul>
              ) : (
                <Empty
                  title={data.audits.enabled ? 'No audit of this operator yet' : 'Audits are not live yet'}
                >
                  {data.audits.enabled
                    ? 'Audits of your jobs (or by your validator) will be listed here.'
                    : 'When validators audit jobs, the audits of your jobs and your attestations appear here, each with its verdict.'}
                </Empty>
              )}
            </Card>
          </div>
          <Card title="Recent activity" testid="operator-activity">
            {data.activity.length === 0 ? (
              <Empty title="No activity yet" />
            ) : (
              <ActivityList items={data.activity} compact />
            )}
          </Card>
        </>
      )}
    </div>
  );
}
