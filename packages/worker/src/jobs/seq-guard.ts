import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
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
  let writing: Promise<void> = Promise.resolve();

  const stateOf = (gateway: Address): GatewayState => {
    const key = gateway.toLowerCase();
    let state = gateways.get(key);
    if (!state) {
      state = { accepted: new Set(), floor: -1n, highestSigned: -1n };
      gateways.set(key, state);
    }
    return state;
  };

  async function persist(): Promise<void> {
    if (!path || !dataDir) return;
    const snapshot: Record<string, string> = {};
    for (const [gateway, state] of gateways) {
      if (state.highestSigned >= 0n) snapshot[gateway] = state.highestSigned.toString();
    }
    await mkdir(dataDir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, `${JSON.stringify(snapshot, null, 2)}\n`);
    await rename(tmp, path);
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
    /** Records that a receipt with `seq` is signed; resolves once the data directory holds it. */
    signed(gateway: Address, seq: bigint): Promise<void> {
      const state = stateOf(gateway);
      if (seq <= state.highestSigned) return writing;
      state.highestSigned = seq;
      writing = writing.then(persist, persist);
      return writing;
    },
    /** The highest number signed for `gateway` (-1 when none). */
    highestSigned(gateway: Address): bigint {
      return stateOf(gateway).highestSigned;
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
