import type { Hardware, ImageCapabilities } from '@aipg/core';
import { type Logger, pino } from 'pino';
import { formatUnits, getAddress, type Hex } from 'viem';

export type { Logger };

type Labels = Record<string, string | number>;

/**
 * The metrics the indexer reports, in the shape of the daemons' Prometheus registry (the gateway's
 * `Metrics` is one); without one, nothing is recorded.
 */
export type IndexerMetrics = {
  counter(name: string, help: string): { inc(labels?: Labels, value?: number): void };
  gauge(
    name: string,
    help: string,
  ): { set(labels: Labels | undefined, value: number): void; inc(labels?: Labels, value?: number): void };
};

/** What the network feature needs from its process's `Common` (a test passes its own). */
export type NetworkContext = { logger: Logger; metrics: IndexerMetrics };

const ignored = { set() {}, inc() {} };

/** A silent logger and metrics that record nothing (the defaults when a caller passes none). */
export function silentContext(): NetworkContext {
  return {
    logger: pino({ level: 'silent' }),
    metrics: { counter: () => ignored, gauge: () => ignored },
  };
}

/**
 * A connected worker as the hub knows it (`WorkerSession` satisfies it). Only read, never changed:
 * the dashboard shows who is online, their models, GPUs and load.
 */
export type NetworkHubWorker = {
  id: string;
  owner: string;
  operator: string;
  models: ReadonlyMap<
    Hex,
    {
      name: string;
      maxConcurrency: number;
      inFlight: number;
      /** Image models: the sizes, steps, count and schedulers the worker's pipeline accepts. */
      image?: ImageCapabilities | undefined;
    }
  >;
  hardware: Hardware;
  version: string;
  connectedAt: Date;
};

export type NetworkHub = { workers(): readonly NetworkHubWorker[] };

/** An AIPG amount in every response: exact wei, an exact decimal, and a display string. */
export type Amount = {
  /** Decimal wei string: exact, for scripts. */
  wei: string;
  /** Exact decimal AIPG ("1000.5", "0.000033"). */
  aipg: string;
  /** For people: thousands separators, at most 4 decimals (3 significant digits below 1). */
  display: string;
};

/** Human AIPG: `1,234.5`, `0.0123`, `0.000368`; never rounds a non-zero amount to "0". */
export function displayAipg(wei: bigint): string {
  const negative = wei < 0n;
  const abs = negative ? -wei : wei;
  const [int = '0', frac = ''] = formatUnits(abs, 18).split('.');
  const grouped = int.replace(/\B(?=(\d{3})+(?!\d))/g, ',');
  // Below 1: three significant digits (never fewer than 4 decimals), so fees never read as "0".
  const keep = int === '0' && abs > 0n ? Math.max(4, frac.search(/[1-9]/) + 3) : 4;
  const decimals = frac.slice(0, keep).replace(/0+$/, '');
  return `${negative ? '-' : ''}${grouped}${decimals ? `.${decimals}` : ''}`;
}

export function amount(wei: bigint | string | null | undefined): Amount {
  const v = wei === null || wei === undefined ? 0n : BigInt(wei);
  return { wei: v.toString(), aipg: formatUnits(v, 18), display: displayAipg(v) };
}

/** EIP-55 checksummed address (the tables keep lowercase). */
export function checksum(address: string): string;
export function checksum(address: string | null | undefined): string | null;
export function checksum(address: string | null | undefined): string | null {
  return address ? getAddress(address) : null;
}

export function iso(seconds: number | null | undefined): string | null {
  return seconds === null || seconds === undefined || seconds === 0
    ? null
    : new Date(seconds * 1000).toISOString();
}
