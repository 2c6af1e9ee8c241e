import type { ComponentChildren } from 'preact';
import { useRef } from 'preact/hooks';
import type { ActivityItem } from '../api.ts';
import {
  formatAipg,
  formatCompact,
  formatDuration,
  formatNumber,
  formatSeconds,
  formatSize,
  shortAddress,
} from '../format.ts';
import { faultReasonTitle } from './gateways.tsx';
import { Icon, type IconName } from './icons.tsx';
import { Address, Amount, RelTime } from './ui.tsx';

type Tone = 'good' | 'warn' | 'bad' | 'info' | 'neutral';
type Described = { icon: IconName; tone: Tone; title: ComponentChildren; body?: ComponentChildren };

const d = (item: ActivityItem) => item.details as Record<string, unknown>;
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);
const role = (item: ActivityItem) => cap(item.role ?? 'account');
const aipg = (wei: unknown) => `${formatAipg(String(wei ?? '0'))} AIPG`;

/** An image job (`details.kind` is `image`): only its parameters are in the feed, never its prompt or images. */
export const isImageJob = (item: ActivityItem) => item.kind === 'job' && d(item).kind === 'image';

/** `1024×1024 · 20 steps · 2 images` (what the grid bills an image job for). */
function imageShape(x: Record<string, unknown>) {
  const n = Number(x.n ?? 1);
  return `${formatSize(String(x.size ?? ''))} · ${formatNumber(Number(x.steps), 0)} steps · ${n} image${n === 1 ? '' : 's'}`;
}

function describeImageJob(item: ActivityItem): Described {
  const x = d(item);
  if (item.type === 'job_failed') {
    return {
      icon: 'image',
      tone: 'warn',
      title: (
        <>
          Image job failed on <b>{item.model?.name ?? 'a model'}</b>
        </>
      ),
      body: (
        <>
          {imageShape(x)} · {String(x.error ?? 'failed')} · nothing was charged
        </>
      ),
    };
  }
  const sps = x.seconds_per_step as number | null | undefined;
  return {
    icon: 'image',
    tone: 'info',
    title: (
      <>
        Image job completed on <b>{item.model?.name ?? 'a model'}</b>
      </>
    ),
    body: (
      <>
        {imageShape(x)} · <Amount value={item.amount} /> · {formatDuration(x.total_ms as number)}
        {sps != null && <> ({formatNumber(sps, 3)} s/step)</>} · by <Address address={item.account} />
      </>
    ),
  };
}

/** What an activity item says, for people. Unknown types (future audit events) get a generic line. */
export function describe(item: ActivityItem): Described {
  const x = d(item);
  if (isImageJob(item)) return describeImageJob(item);
  switch (item.type) {
    case 'job_completed':
      return {
        icon: 'bolt',
        tone: 'info',
        title: (
          <>
            Job completed on <b>{item.model?.name ?? 'a model'}</b>
          </>
        ),
        body: (
          <>
            {formatCompact(x.output_tokens as number)} tokens · <Amount value={item.amount} /> · first token{' '}
            {formatDuration(x.ttft_ms as number)} · by <Address address={item.account} />
          </>
        ),
      };
    case 'job_failed':
      return {
        icon: 'alert',
        tone: 'warn',
        title: (
          <>
            Job failed on <b>{item.model?.name ?? 'a model'}</b>
          </>
        ),
        body: <>{String(x.error ?? 'failed')} · nothing was charged</>,
      };
    case 'batch_settled':
      return {
        icon: 'link',
        tone: 'good',
        title: <>Batch #{item.batch_id} settled</>,
        body: (
          <>
            {formatCompact(Number(x.receiptCount))} receipt{Number(x.receiptCount) === 1 ? '' : 's'} ·{' '}
            <Amount value={item.amount} /> · gateway <Address address={item.account} link={false} />
          </>
        ),
      };
    case 'bonded': {
      const first = x.amount === x.newAmount;
      return {
        icon: 'plus',
        tone: 'good',
        title: first ? (
          <>
            {role(item)} bonded <Amount value={item.amount} />
          </>
        ) : (
          <>
            {role(item)} bond increased by <Amount value={item.amount} />
          </>
        ),
        body: (
          <>
            <Address address={item.account} />
            {!first && <> · now {aipg(x.newAmount)}</>}
          </>
        ),
      };
    }
    case 'unbond_requested':
      return {
        icon: 'clock',
        tone: 'warn',
        title: (
          <>
            {role(item)} unbonding <Amount value={item.amount} />
          </>
        ),
        body: (
          <>
            <Address address={item.account} /> · withdrawable{' '}
            <RelTime iso={new Date(Number(x.readyAt) * 1000).toISOString()} future />
          </>
        ),
      };
    case 'unbond_cancelled':
      return {
        icon: 'undo',
        tone: 'neutral',
        title: <>{role(item)} cancelled an unbond</>,
        body: (
          <>
            <Address address={item.account} /> · <Amount value={item.amount} /> back to the active bond
          </>
        ),
      };
    case 'bond_withdrawn':
      return {
        icon: 'out',
        tone: 'neutral',
        title: (
          <>
            {role(item)} withdrew <Amount value={item.amount} />
          </>
        ),
        body: <Address address={item.account} />,
      };
    case 'operator_set':
      return {
        icon: 'key',
        tone: 'neutral',
        title: <>{role(item)} operator key set</>,
        body: (
          <>
            <Address address={item.account} /> signs with{' '}
            <span class="mono">{shortAddress(item.related ?? item.account)}</span>
          </>
        ),
      };
    case 'bond_slashed':
      return {
        icon: 'slash',
        tone: 'bad',
        title: (
          <>
            {role(item)} slashed <Amount value={item.amount} />
          </>
        ),
        body: <Address address={item.account} />,
      };
    case 'deposited':
      return {
        icon: 'in',
        tone: 'neutral',
        title: (
          <>
            Deposit of <Amount value={item.amount} />
          </>
        ),
        body: (
          <>
            payer <Address address={item.account} />
          </>
        ),
      };
    case 'gateway_approved':
      return {
        icon: 'check',
        tone: 'neutral',
        title: <>Gateway approved</>,
        body: (
          <>
            payer <Address address={item.account} /> · cap {aipg(x.cap)}
          </>
        ),
      };
    case 'deposit_withdrawal_requested':
    case 'deposit_withdrawn':
      return {
        icon: 'out',
        tone: 'neutral',
        title: (
          <>
            {item.type === 'deposit_withdrawn' ? 'Deposit withdrawn' : 'Deposit withdrawal requested'}:{' '}
            <Amount value={item.amount} />
          </>
        ),
        body: (
          <>
            payer <Address address={item.account} />
          </>
        ),
      };
    case 'earnings_withdrawn':
      return {
        icon: 'coins',
        tone: 'good',
        title: (
          <>
            Earnings withdrawn: <Amount value={item.amount} />
          </>
        ),
        body: <Address address={item.account} />,
      };
    case 'worker_credited':
      return {
        icon: 'plus',
        tone: 'good',
        title: (
          <>
            Credited {aipg(x.net)} in batch #{item.batch_id}
          </>
        ),
        body: <>gross {aipg(x.gross)} before the validator and protocol shares</>,
      };
    case 'payer_debited':
      return {
        icon: 'minus',
        tone: 'neutral',
        title: (
          <>
            Debited <Amount value={item.amount} /> in batch #{item.batch_id}
          </>
        ),
      };
    case 'model_registered':
      return { icon: 'cube', tone: 'info', title: <>Model {String(x.name)} registered</> };
    case 'model_rates_updated': {
      const r = (x.rates ?? {}) as Record<string, string>;
      if (BigInt(r.perMegapixelStep ?? '0') > 0n && BigInt(r.inputPerMTokens ?? '0') === 0n) {
        return {
          icon: 'cube',
          tone: 'info',
          title: <>Rates of {item.model?.name ?? 'a model'} updated</>,
          body: <>{aipg(r.perMegapixelStep)} per megapixel-step</>,
        };
      }
      return {
        icon: 'cube',
        tone: 'info',
        title: <>Rates of {item.model?.name ?? 'a model'} updated</>,
        body: (
          <>
            {aipg(r.inputPerMTokens)} in / {aipg(r.outputPerMTokens)} out per 1M tokens
          </>
        ),
      };
    }
    case 'model_active_set':
      return {
        icon: 'cube',
        tone: 'info',
        title: (
          <>
            Model {item.model?.name ?? ''} {x.active ? 'activated' : 'deactivated'}
          </>
        ),
      };
    case 'confidential_premium_updated':
      return {
        icon: 'lock',
        tone: 'info',
        title: <>Confidential premium set to {Number(x.bps) / 100}%</>,
      };
    case 'attested': {
      const fail = Number(x.vote) === 2;
      return {
        icon: 'shield',
        tone: fail ? 'warn' : 'info',
        title: (
          <>
            Validator attested <b>{fail ? 'FAIL' : 'PASS'}</b> on a receipt of batch #{item.batch_id}
          </>
        ),
        body: (
          <>
            <Address address={item.account} /> · receipt{' '}
            <span class="mono">{shortAddress(String(x.leaf ?? ''), 4)}</span>
          </>
        ),
      };
    }
    case 'audit_finalized': {
      const verdict = Number(x.verdict);
      const slashed = BigInt(String(x.slashed ?? '0'));
      return {
        icon: 'shield',
        tone: verdict === 1 ? 'good' : verdict === 2 ? 'bad' : 'neutral',
        title: (
          <>
            Audit verdict: <b>{verdict === 1 ? 'PASS' : verdict === 2 ? 'FAIL' : 'inconclusive'}</b> (batch #
            {item.batch_id})
          </>
        ),
        body: (
          <>
            worker <Address address={item.account} />
            {slashed > 0n && <> · bond slashed {aipg(slashed)}</>}
            {verdict === 3 && <> · too few or tied votes: nobody paid or slashed</>}
          </>
        ),
      };
    }
    case 'validator_rewarded':
      return {
        icon: 'coins',
        tone: 'good',
        title: (
          <>
            Validator earned <Amount value={item.amount} /> for an audit
          </>
        ),
        body: <Address address={item.account} />,
      };
    case 'false_attestation_slashed':
      return {
        icon: 'slash',
        tone: 'bad',
        title: (
          <>
            False attestation: validator slashed <Amount value={item.amount} />
          </>
        ),
        body: (
          <>
            <Address address={item.account} /> voted against the verdict · receipt{' '}
            <span class="mono">{shortAddress(String(x.leaf ?? ''), 4)}</span>
          </>
        ),
      };
    case 'gateway_fault_reported': {
      const reason = String(x.reason_code ?? x.reason ?? '');
      return {
        icon: 'alert',
        tone: 'bad',
        title: (
          <>
            Gateway fault reported: <b title={faultReasonTitle(reason)}>{reason}</b> (batch #{item.batch_id})
          </>
        ),
        body: (
          <>
            gateway <Address address={item.account} link={false} /> served evidence that does not match the
            receipt · by validator <Address address={item.related} /> · receipt{' '}
            <span class="mono">{shortAddress(String(x.leaf ?? ''), 4)}</span>
          </>
        ),
      };
    }
    case 'audit_randomness_fixed':
      return {
        icon: 'shield',
        tone: 'info',
        title: <>Audit sample drawn for batch #{item.batch_id}</>,
        body: (
          <>
            attestations until <RelTime iso={new Date(Number(x.deadline) * 1000).toISOString()} future />
          </>
        ),
      };
    default:
      return {
        icon:
          item.kind === 'slash'
            ? 'slash'
            : item.kind === 'attestation' || item.kind === 'audit'
              ? 'shield'
              : 'dot',
        tone: item.kind === 'slash' ? 'bad' : 'neutral',
        title: cap(item.type.replace(/_/g, ' ')),
        body: item.account ? <Address address={item.account} /> : undefined,
      };
  }
}

export function ActivityList({ items, compact = false }: { items: ActivityItem[]; compact?: boolean }) {
  // Items present at the first render are history; later ones arrived live and flash once.
  const initial = useRef<Set<string> | null>(null);
  initial.current ??= new Set(items.map((i) => i.id));
  return (
    <ol class={`activity ${compact ? 'activity-compact' : ''}`} data-testid="activity-list">
      {items.map((item) => {
        const x = describe(item);
        return (
          <li
            key={item.id}
            class={`activity-item tone-${x.tone}${initial.current?.has(item.id) ? '' : ' fresh'}`}
            data-type={item.type}
            data-job={isImageJob(item) ? 'image' : undefined}
            data-id={item.id}
          >
            <span class="activity-icon">
              <Icon name={x.icon} />
            </span>
            <div class="activity-main">
              <div class="activity-title">{x.title}</div>
              {x.body && <div class="activity-body muted small">{x.body}</div>}
            </div>
            <div class="activity-meta small muted">
              <RelTime iso={item.time} />
              {item.block !== null && (
                <div title={item.tx ?? undefined}>
                  block {item.block}
                  {item.tx ? ` · ${shortAddress(item.tx, 4)}` : ''}
                </div>
              )}
            </div>
          </li>
        );
      })}
    </ol>
  );
}

export function formatCountdown(seconds: number | null): string {
  if (seconds === null) return '—';
  return seconds <= 0 ? 'ready now' : formatSeconds(seconds);
}
