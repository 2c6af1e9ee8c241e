/**
 * Number formatting for people. Pure functions (no DOM), unit-tested in Node.
 * AIPG amounts arrive from the API as exact wei strings with a `display` string; these helpers cover
 * everything else: counts, rates, durations, countdowns and relative times.
 */

const LOCALE = 'en-US';

/** `1234.5` → `1,234.5`; at most `digits` decimals; `null` → `—`. */
export function formatNumber(n: number | null | undefined, digits = 2): string {
  if (n === null || n === undefined || !Number.isFinite(n)) return '—';
  return new Intl.NumberFormat(LOCALE, { maximumFractionDigits: digits }).format(n);
}

/** `12345` → `12.3k`, `4200000` → `4.2M` (counts of tokens, jobs). */
export function formatCompact(n: number | string | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const v = typeof n === 'string' ? Number(n) : n;
  if (!Number.isFinite(v)) return '—';
  if (Math.abs(v) < 10_000) return formatNumber(v, v < 10 ? 2 : 0);
  return new Intl.NumberFormat(LOCALE, { notation: 'compact', maximumFractionDigits: 1 }).format(v);
}

/** AIPG from wei (exact BigInt math): separators, at most `maxDecimals`, small amounts keep 3 significant digits. */
export function formatAipg(wei: string | bigint | null | undefined, maxDecimals = 4): string {
  if (wei === null || wei === undefined) return '—';
  let v = typeof wei === 'bigint' ? wei : BigInt(wei);
  const negative = v < 0n;
  if (negative) v = -v;
  const int = (v / 10n ** 18n).toString();
  const frac = (v % 10n ** 18n).toString().padStart(18, '0');
  // Below 1: three significant digits (never fewer than `maxDecimals`), so fees never read as "0".
  const keep = int === '0' && v > 0n ? Math.max(maxDecimals, frac.search(/[1-9]/) + 3) : maxDecimals;
  const decimals = frac.slice(0, keep).replace(/0+$/, '');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  return `${negative ? '-' : ''}${grouped}${decimals ? `.${decimals}` : ''}`;
}

/** Milliseconds as `850 ms`, `1.2 s`, `2 min 5 s`, `3 h 20 min`, `2 d 4 h`. */
export function formatDuration(ms: number | null | undefined): string {
  if (ms === null || ms === undefined || !Number.isFinite(ms)) return '—';
  if (ms < 1) return `${formatNumber(ms, 2)} ms`;
  if (ms < 1_000) return `${formatNumber(ms, ms < 10 ? 1 : 0)} ms`;
  return formatSeconds(ms / 1000);
}

/** Seconds as `42 s`, `2 min 5 s`, `3 h 20 min`, `6 d 23 h` (a countdown or an age). */
export function formatSeconds(totalSeconds: number): string {
  const s = Math.max(0, totalSeconds);
  if (s < 10) return `${formatNumber(s, 1)} s`;
  if (s < 60) return `${Math.floor(s)} s`;
  const m = Math.floor(s / 60);
  if (m < 60) {
    const rest = Math.floor(s % 60);
    return rest ? `${m} min ${rest} s` : `${m} min`;
  }
  const h = Math.floor(m / 60);
  if (h < 24) {
    const rest = m % 60;
    return rest ? `${h} h ${rest} min` : `${h} h`;
  }
  const d = Math.floor(h / 24);
  const rest = h % 24;
  return rest ? `${d} d ${rest} h` : `${d} d`;
}

/** `just now`, `12 s ago`, `5 min ago`, `in 2 min`, `3 h ago`, `2 d ago`, then a date. */
export function formatRelative(iso: string | null | undefined, now: number = Date.now()): string {
  if (!iso) return '—';
  const t = Date.parse(iso);
  if (!Number.isFinite(t)) return '—';
  const diff = (now - t) / 1000;
  const abs = Math.abs(diff);
  if (abs < 5) return 'just now';
  if (abs >= 30 * 86_400) {
    return new Date(t).toLocaleDateString(LOCALE, { year: 'numeric', month: 'short', day: 'numeric' });
  }
  let text: string;
  if (abs < 60) text = `${Math.floor(abs)} s`;
  else if (abs < 3_600) text = `${Math.floor(abs / 60)} min`;
  else if (abs < 86_400) text = `${Math.floor(abs / 3_600)} h`;
  else text = `${Math.floor(abs / 86_400)} d`;
  return diff >= 0 ? `${text} ago` : `in ${text}`;
}

/** Full local date and time, for tooltips. */
export function formatDateTime(iso: string | null | undefined): string {
  if (!iso) return '';
  return new Date(iso).toLocaleString(LOCALE, {
    year: 'numeric',
    month: 'short',
    day: 'numeric',
    hour: '2-digit',
    minute: '2-digit',
    second: '2-digit',
  });
}

/** `0x1234…abcd`. */
export function shortAddress(address: string | null | undefined, chars = 4): string {
  if (!address) return '—';
  return `${address.slice(0, 2 + chars)}…${address.slice(-chars)}`;
}

/** Basis points as a percentage: `2500` → `25%`, `+25%` with `sign`. */
export function formatBps(bps: number | null | undefined, sign = false): string {
  if (bps === null || bps === undefined) return '—';
  return `${sign && bps > 0 ? '+' : ''}${formatNumber(bps / 100, 2)}%`;
}

/** A ratio in [0, 1] as a percentage; `null` (no data yet) as `—`. */
export function formatPercent(ratio: number | null | undefined, digits = 1): string {
  if (ratio === null || ratio === undefined || !Number.isFinite(ratio)) return '—';
  return `${formatNumber(ratio * 100, digits)}%`;
}

/** Megabytes of VRAM as `24 GB` / `512 MB`. */
export function formatMemory(mb: number | null | undefined): string {
  if (mb === null || mb === undefined) return '—';
  if (mb >= 1024) return `${formatNumber(mb / 1024, 1)} GB`;
  return `${formatNumber(mb, 0)} MB`;
}

/** Parameter counts: `113000` → `113K`, `7000000000` → `7B`. */
export function formatParams(n: string | number | null | undefined): string {
  if (n === null || n === undefined) return '—';
  const v = Number(n);
  if (v >= 1e9) return `${formatNumber(v / 1e9, 1)}B`;
  if (v >= 1e6) return `${formatNumber(v / 1e6, 1)}M`;
  if (v >= 1e3) return `${formatNumber(v / 1e3, 0)}K`;
  return String(v);
}

/**
 * Fee of an image job in AIPG wei at `perMegapixelStep` (wei), as the grid bills it (`computeImageFee`
 * of @aipg/core without the confidential premium): ⌈width × height × steps × n × rate / 10⁶⌉.
 */
export function imageFeeWei(
  perMegapixelStep: string | bigint,
  p: { width: number; height: number; steps: number; n: number },
): bigint {
  const base = BigInt(p.width) * BigInt(p.height) * BigInt(p.steps) * BigInt(p.n) * BigInt(perMegapixelStep);
  return base === 0n ? 0n : (base - 1n) / 1_000_000n + 1n;
}

/** `1024x1024` → `1024×1024`. */
export function formatSize(size: string | null | undefined): string {
  return size ? size.replace('x', '×') : '—';
}
