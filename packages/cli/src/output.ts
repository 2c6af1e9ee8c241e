import { formatAipg } from '@aipg/core';

/** `1,500 AIPG`. */
export function aipg(wei: bigint): string {
  return `${formatAipg(wei)} AIPG`;
}

/** `2 d 3 h`, `5 min 10 s`, `25 s`. */
export function formatDuration(seconds: number): string {
  if (seconds <= 0) return '0 s';
  const units: [number, string][] = [
    [86_400, 'd'],
    [3_600, 'h'],
    [60, 'min'],
    [1, 's'],
  ];
  const parts: string[] = [];
  let rest = Math.round(seconds);
  for (const [size, name] of units) {
    if (rest >= size) {
      parts.push(`${Math.floor(rest / size)} ${name}`);
      rest %= size;
    }
    if (parts.length === 2) break;
  }
  return parts.join(' ');
}

/** Unix seconds as `2026-11-24 20:31:05 UTC`. */
export function formatTime(seconds: number): string {
  return new Date(seconds * 1000)
    .toISOString()
    .replace('T', ' ')
    .replace(/\.\d+Z$/, ' UTC');
}

/** Left-aligned columns; the first row is the header when `header` is set. */
export function table(rows: readonly (readonly string[])[], indent = '  '): string {
  const widths: number[] = [];
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length);
    });
  }
  return rows
    .map(
      (row) =>
        `${indent}${row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')}`,
    )
    .join('\n');
}

/** JSON with bigints as decimal strings (wei). */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_key, v) => (typeof v === 'bigint' ? v.toString() : v), 2);
}
