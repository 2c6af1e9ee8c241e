import { closeSync, fstatSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Address } from 'viem';

/** File in the data directory: `{ "<gateway, lower case>": "<highest receipt number signed>" }`. */
export const SEQ_STATE_FILE = 'receipt-seqs.json';

export type ReceiptSeqGuardParameters = {
  /** Where the highest number signed per gateway survives a restart; undefined: this process only. */
  dataDir?: string | undefined;
  /** Numbers remembered per gateway in this process (default 65,536); older ones fall under a floor. */
  maxPerGateway?: number | undefined;
};

type GatewayState = {
  /** Numbers accepted in this process (at most `maxPerGateway`). */
  accepted: Set<bigint>;
  /** Every number at or below this is refused: signed before a restart, or evicted from `accepted`. */
  floor: bigint;
  /** Highest number signed (what the data directory holds). */
  highestSigned: bigint;
};

export type ReceiptSeqGuard = Awaited<ReturnType<typeof createReceiptSeqGuard>>;

/**
 * A gateway numbers its receipts and settles each number once; a worker that signed two receipts with
 * one number would let the gateway pay one job and hold the other's signature. So the worker accepts each
 * `(gateway, seq)` once: `accept` refuses a number it already accepted in this process, or one at or below
 * the highest it signed before a restart (read from `dataDir`). Memory is bounded: past `maxPerGateway`
 * numbers of one gateway, the lowest is forgotten and becomes the floor (a correct gateway hands out
 * numbers in increasing order, so an old number never legitimately comes back).
 */
export async function createReceiptSeqGuard({
  dataDir,
  maxPerGateway = 65_536,
}: ReceiptSeqGuardParameters = {}) {
  const gateways = new Map<string, GatewayState>();
  const path = dataDir === undefined ? undefined : join(dataDir, SEQ_STATE_FILE);
  if (path) {
    const stored = await readState(path);
    for (const [gateway, highest] of Object.entries(stored)) {
      gateways.set(gateway, { accepted: new Set(), floor: highest, highestSigned: highest });
    }
  }
  const stateOf = (gateway: Address): GatewayState => {
    const key = gateway.toLowerCase();
    let state = gateways.get(key);
    if (!state) {
      state = { accepted: new Set(), floor: -1n, highestSigned: -1n };
      gateways.set(key, state);
    }
    return state;
  };

  // The file stays open; each signature rewrites it in place with one write (below).
  let fd: number | undefined;
  let written = 0;

  /**
   * One positioned write of the whole state over the file's start, padded with spaces to at least what
   * was there (JSON ignores them): a process that dies is either before or after it, never halfway, and
   * nothing waits on the thread pool. Like the rename it replaces, it does not fsync: what it keeps
   * across a crash of the process, not of the machine.
   */
  function persist(): void {
    if (!path || !dataDir) return;
    const snapshot: Record<string, string> = {};
    for (const [gateway, state] of gateways) {
      if (state.highestSigned >= 0n) snapshot[gateway] = state.highestSigned.toString();
    }
    if (fd === undefined) {
      mkdirSync(dataDir, { recursive: true });
      // Never truncated: a crash right after opening must not leave an empty (unreadable) file.
      try {
        fd = openSync(path, 'r+');
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
        fd = openSync(path, 'wx');
      }
      written = fstatSync(fd).size;
    }
    const text = `${JSON.stringify(snapshot, null, 2)}\n`;
    const bytes = Buffer.from(text.length < written ? text.padEnd(written, ' ') : text);
    writeSync(fd, bytes, 0, bytes.length, 0);
    written = bytes.length;
  }

  return {
    /**
     * Takes `seq` for a job from `gateway`: true the first time, false when this number was already
     * accepted, or is at or below the floor (signed before a restart, or forgotten).
     */
    accept(gateway: Address, seq: bigint): boolean {
      const state = stateOf(gateway);
      if (seq <= state.floor || state.accepted.has(seq)) return false;
      state.accepted.add(seq);
      if (state.accepted.size > maxPerGateway) {
        let lowest = seq;
        for (const s of state.accepted) if (s < lowest) lowest = s;
        state.accepted.delete(lowest);
        state.floor = lowest;
      }
      return true;
    },
    /** Records that a receipt with `seq` is signed; returns once the data directory holds it. */
    signed(gateway: Address, seq: bigint): void {
      const state = stateOf(gateway);
      if (seq <= state.highestSigned) return;
      state.highestSigned = seq;
      persist();
    },
    /** The highest number signed for `gateway` (-1 when none). */
    highestSigned(gateway: Address): bigint {
      return stateOf(gateway).highestSigned;
    },
    /** Closes the state file (the worker's shutdown). */
    close(): void {
      if (fd !== undefined) closeSync(fd);
      fd = undefined;
    },
  };
}

async function readState(path: string): Promise<Record<string, bigint>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return {};
    throw error;
  }
  const json = JSON.parse(text) as unknown;
  if (!json || typeof json !== 'object' || Array.isArray(json))
    throw new Error(`${path} is not a JSON object`);
  const out: Record<string, bigint> = {};
  for (const [gateway, value] of Object.entries(json)) {
    if (typeof value !== 'string' || !/^\d{1,20}$/.test(value))
      throw new Error(`${path}: ${gateway} is not a number`);
    out[gateway.toLowerCase()] = BigInt(value);
  }
  return out;
}
