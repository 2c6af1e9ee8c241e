import type { ComponentChildren } from 'preact';
import { useState } from 'preact/hooks';
import type { Amount as AmountValue } from '../api.ts';
import { formatDateTime, formatRelative, shortAddress } from '../format.ts';
import { useNow } from '../hooks.ts';

export function Amount({ value, unit = true }: { value: AmountValue | null | undefined; unit?: boolean }) {
  if (!value) return <span class="muted">—</span>;
  return (
    <span class="amount" title={`${value.aipg} AIPG (${value.wei} wei)`}>
      <span class="num">{value.display}</span>
      {unit && <span class="unit"> AIPG</span>}
    </span>
  );
}

export function Address({ address, link = true }: { address: string | null | undefined; link?: boolean }) {
  if (!address) return <span class="muted">—</span>;
  const text = <span class="mono">{shortAddress(address)}</span>;
  return link ? (
    <a class="address" href={`#/operator/${address}`} title={address}>
      {text}
    </a>
  ) : (
    <span class="address" title={address}>
      {text}
    </span>
  );
}

/**
 * A relative time that keeps itself current. Past events (the default) never read "in 2 min": a
 * timestamp slightly ahead of this clock (skew, or a devnet whose clock was advanced) reads "just
 * now"; `future` is for deadlines.
 */
export function RelTime({ iso, future = false }: { iso: string | null | undefined; future?: boolean }) {
  const now = useNow(1_000);
  if (!iso) return <span class="muted">—</span>;
  const t = Date.parse(iso);
  return (
    <time dateTime={iso} title={formatDateTime(iso)}>
      {formatRelative(iso, future ? now : Math.max(now, t))}
    </time>
  );
}

export function Card({
  title,
  subtitle,
  actions,
  children,
  class: cls,
  testid,
}: {
  title?: ComponentChildren;
  subtitle?: ComponentChildren;
  actions?: ComponentChildren;
  children: ComponentChildren;
  class?: string;
  testid?: string;
}) {
  return (
    <section class={`card ${cls ?? ''}`} data-testid={testid}>
      {(title || actions) && (
        <header class="card-head">
          <div>
            {title && <h2>{title}</h2>}
            {subtitle && <p class="muted small">{subtitle}</p>}
          </div>
          {actions && <div class="card-actions">{actions}</div>}
        </header>
      )}
      {children}
    </section>
  );
}

export function Stat({
  label,
  value,
  hint,
  testid,
  tone,
}: {
  label: string;
  value: ComponentChildren;
  hint?: ComponentChildren;
  testid?: string;
  tone?: 'good' | 'warn' | 'bad';
}) {
  return (
    <div class={`stat ${tone ? `tone-${tone}` : ''}`} data-testid={testid}>
      <div class="stat-label">{label}</div>
      <div class="stat-value">{value}</div>
      {hint && <div class="stat-hint">{hint}</div>}
    </div>
  );
}

export function Badge({
  tone = 'neutral',
  children,
  title,
}: {
  tone?: 'neutral' | 'good' | 'warn' | 'bad' | 'info';
  children: ComponentChildren;
  title?: string;
}) {
  return (
    <span class={`badge badge-${tone}`} title={title}>
      {children}
    </span>
  );
}

export function OnlineDot({ online }: { online: boolean }) {
  return (
    <span
      class={`dot ${online ? 'dot-on' : 'dot-off'}`}
      role="img"
      aria-label={online ? 'online' : 'offline'}
      title={online ? 'online' : 'offline'}
    />
  );
}

export function Empty({ title, children }: { title: string; children?: ComponentChildren }) {
  return (
    <div class="empty">
      <div class="empty-title">{title}</div>
      {children && <div class="empty-body">{children}</div>}
    </div>
  );
}

export function ErrorNote({ error }: { error: string | undefined }) {
  if (!error) return null;
  return (
    <div class="error-note" role="alert">
      Could not load: {error}
    </div>
  );
}

export function Loading({ rows = 3 }: { rows?: number }) {
  return (
    <div class="skeleton" role="status" aria-busy="true" aria-label="loading">
      {Array.from({ length: rows }, (_, i) => (
        <div key={i} class="skeleton-line" />
      ))}
    </div>
  );
}

export function CopyButton({ text, label = 'Copy' }: { text: string; label?: string }) {
  const [copied, setCopied] = useState(false);
  return (
    <button
      type="button"
      class="btn btn-small"
      onClick={async () => {
        try {
          await navigator.clipboard.writeText(text);
          setCopied(true);
          setTimeout(() => setCopied(false), 1_500);
        } catch {
          // no clipboard permission: the text stays selectable
        }
      }}
    >
      {copied ? 'Copied' : label}
    </button>
  );
}

export function Segmented<T extends string>({
  value,
  options,
  onChange,
  label,
}: {
  value: T;
  options: readonly { value: T; label: string }[];
  onChange: (v: T) => void;
  label: string;
}) {
  return (
    <fieldset class="segmented">
      <legend class="sr-only">{label}</legend>
      {options.map((o) => (
        <button
          type="button"
          key={o.value}
          class={o.value === value ? 'active' : ''}
          aria-pressed={o.value === value}
          onClick={() => onChange(o.value)}
        >
          {o.label}
        </button>
      ))}
    </fieldset>
  );
}
