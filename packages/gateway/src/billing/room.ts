import type { Address } from 'viem';

/** Payers whose room is remembered (the most recent; the oldest is forgotten first). */
const PAYERS = 10_000;

/**
 * What each payer may still spend by the gateway's last reservation for it, for work that leaves before
 * its own reservation is written (`jobs` sends a text job to its worker while that statement runs). The
 * database stays the judge: this only decides whether to start the worker early, so a stale figure costs
 * at most a worker's wasted start, never money. Conservative by construction: an unknown payer has no
 * room, and the fees of early jobs whose reservations are not written yet count against it.
 */
export function createPayerRoom(max = PAYERS) {
  /** Spendable on chain minus unsettled and reserved fees, after the payer's last written reservation. */
  const left = new Map<Address, bigint>();
  /** Fees of early jobs whose reservations are not written yet. */
  const pending = new Map<Address, bigint>();
  return {
    /** Takes room for `fee` if the payer has it (then call `written` once its reservation is settled). */
    take(payer: Address, fee: bigint): boolean {
      const l = left.get(payer);
      const p = pending.get(payer) ?? 0n;
      if (l === undefined || l - p < fee) return false;
      pending.set(payer, p + fee);
      return true;
    },
    /** An early job's reservation was written or refused: its fee is no longer pending. */
    written(payer: Address, fee: bigint): void {
      const p = (pending.get(payer) ?? 0n) - fee;
      if (p > 0n) pending.set(payer, p);
      else pending.delete(payer);
    },
    /** What the payer has left after a reservation just written (the database's figure). */
    remember(payer: Address, room: bigint): void {
      left.delete(payer);
      left.set(payer, room);
      if (left.size > max) left.delete(left.keys().next().value as Address);
    },
    /** A reservation of the payer was refused: it has no room until one is written again. */
    forget(payer: Address): void {
      left.delete(payer);
    },
  };
}

export type PayerRoom = ReturnType<typeof createPayerRoom>;
