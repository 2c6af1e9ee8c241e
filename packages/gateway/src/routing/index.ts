import type { Address, Hex } from 'viem';
import type { Common } from '../common.ts';
import type { Storage, WorkerStats } from '../storage/index.ts';

/** What routing needs to know about a connected worker (the hub's session satisfies it). */
export type RoutableWorker = {
  id: string;
  owner: Address;
  operator: Address;
  /** Active bond amount (AIPG wei) at login / last re-check. */
  bond: bigint;
  /** Models served, with their concurrency limit and jobs running now. */
  models: ReadonlyMap<Hex, { maxConcurrency: number; inFlight: number }>;
};

/**
 * The hook for audit history (the `reputation` feature feeds audit verdicts and slashes in here). 1 is
 * neutral; below 1 prefers other workers; 0 excludes the worker unless nobody else can run the job.
 */
export type Reputation = { factor(owner: Address): number };

export const neutralReputation: Reputation = { factor: () => 1 };

const ALPHA = 0.3;
const PRIOR_TTFT_MS = 1_000;
const PRIOR_TPS = 20;
const ONE_AIPG = 10n ** 18n;
const PENALTY_MS = 10 * 60_000;
const STATS_FLUSH_MS = 1_000;

export type Routing = ReturnType<typeof createRouting>;

/**
 * Picks the worker for a job: among those serving the model with a free slot (and the pinned ones,
 * when pinned), the best score of
 *   speed (EWMA of gateway-measured ttft and tokens/s, for the job's expected length)
 * × stake (grows with log2 of the bond)
 * × reliability (EWMA of clean completions; a bad receipt costs much more than an error)
 * × reputation (audit history hook)
 * × load (fraction of the worker's slots still free).
 */
export function createRouting({
  common,
  storage,
  reputation = neutralReputation,
}: {
  common: Pick<Common, 'logger'>;
  storage: Pick<Storage, 'workers'>;
  reputation?: Reputation;
}) {
  const stats = new Map<Address, WorkerStats>();

  function statsOf(owner: Address): WorkerStats {
    let s = stats.get(owner);
    if (!s) {
      s = {
        owner,
        ewmaTtftMs: null,
        ewmaTps: null,
        reliability: 1,
        jobsOk: 0,
        jobsFailed: 0,
        receiptsRejected: 0,
        penalizedUntil: null,
      };
      stats.set(owner, s);
    }
    return s;
  }

  function save(s: WorkerStats, operator: Address | null) {
    storage.workers.save(s, operator).catch((error: unknown) => {
      common.logger.warn({ msg: 'saving worker stats failed', worker: s.owner, error });
    });
  }

  // Routine updates are written at most once a second per worker (not one write per job): the stats
  // are soft state, and a crash loses at most that second of them. Penalties are written at once.
  const dirty = new Map<Address, Address | null>();
  let flushTimer: NodeJS.Timeout | undefined;
  function flush() {
    flushTimer = undefined;
    for (const [owner, operator] of dirty) save(statsOf(owner), operator);
    dirty.clear();
  }
  function persist(s: WorkerStats, operator: Address | null) {
    dirty.set(s.owner, operator);
    flushTimer ??= setTimeout(flush, STATS_FLUSH_MS);
    flushTimer.unref?.();
  }

  function ewma(prev: number | null, sample: number): number {
    return prev === null ? sample : prev + ALPHA * (sample - prev);
  }

  function score(w: RoutableWorker, modelId: Hex, expectedTokens: number, now: number): number {
    const s = statsOf(w.owner);
    const ttft = s.ewmaTtftMs ?? PRIOR_TTFT_MS;
    const tps = Math.max(0.1, s.ewmaTps ?? PRIOR_TPS);
    const speed = 1 / (ttft / 1000 + expectedTokens / tps);
    const bondAipg = Number(w.bond / ONE_AIPG);
    const stake = 1 + Math.min(2, Math.log2(Math.max(1, bondAipg / 1000)) / 4);
    const penalized = s.penalizedUntil !== null && s.penalizedUntil.getTime() > now;
    const reliability = Math.max(0.01, s.reliability) * (penalized ? 0.01 : 1);
    const rep = Math.max(0, reputation.factor(w.owner));
    const m = w.models.get(modelId);
    const load = m ? 1 - m.inFlight / (m.maxConcurrency + 1) : 0;
    return speed * stake * reliability * rep * load;
  }

  return {
    /** Loads a worker's remembered stats (at login). */
    async load(owner: Address): Promise<void> {
      if (stats.has(owner)) return;
      const saved = await storage.workers.get(owner).catch(() => undefined);
      if (saved && !stats.has(owner)) stats.set(owner, saved);
    },
    stats(owner: Address): WorkerStats {
      return { ...statsOf(owner) };
    },
    /** Workers that serve `modelId` at all (capacity aside), limited to `pin` when given. */
    eligible<W extends RoutableWorker>(
      workers: Iterable<W>,
      modelId: Hex,
      pin: readonly Address[] | null,
    ): W[] {
      const pinned = pin ? new Set(pin.map((a) => a.toLowerCase())) : null;
      return [...workers].filter(
        (w) =>
          w.models.has(modelId) &&
          (!pinned || pinned.has(w.owner.toLowerCase()) || pinned.has(w.operator.toLowerCase())),
      );
    },
    /** The best worker with a free slot among `workers`, skipping `exclude` (worker ids). */
    pick<W extends RoutableWorker>(
      workers: readonly W[],
      modelId: Hex,
      opts: { exclude: ReadonlySet<string>; expectedTokens: number },
    ): W | undefined {
      const now = Date.now();
      let best: W | undefined;
      let bestScore = -1;
      for (const w of workers) {
        if (opts.exclude.has(w.id)) continue;
        const m = w.models.get(modelId);
        if (!m || m.inFlight >= m.maxConcurrency) continue;
        const sc = score(w, modelId, opts.expectedTokens, now);
        if (sc > bestScore) {
          best = w;
          bestScore = sc;
        }
      }
      return best;
    },
    score(w: RoutableWorker, modelId: Hex, expectedTokens: number): number {
      return score(w, modelId, expectedTokens, Date.now());
    },
    recordSuccess(w: { owner: Address; operator: Address }, m: { ttftMs: number; tokensPerSecond: number }) {
      const s = statsOf(w.owner);
      s.ewmaTtftMs = ewma(s.ewmaTtftMs, m.ttftMs);
      if (Number.isFinite(m.tokensPerSecond) && m.tokensPerSecond > 0)
        s.ewmaTps = ewma(s.ewmaTps, m.tokensPerSecond);
      s.reliability = ewma(s.reliability, 1);
      s.jobsOk += 1;
      persist(s, w.operator);
    },
    recordFailure(w: { owner: Address; operator: Address }) {
      const s = statsOf(w.owner);
      s.reliability = ewma(s.reliability, 0);
      s.jobsFailed += 1;
      persist(s, w.operator);
    },
    /** A receipt that did not match: heavy, lasting penalty (the worker is tried last for a while). */
    recordInvalidReceipt(w: { owner: Address; operator: Address }) {
      const s = statsOf(w.owner);
      s.reliability = s.reliability * 0.1;
      s.receiptsRejected += 1;
      s.jobsFailed += 1;
      s.penalizedUntil = new Date(Date.now() + PENALTY_MS);
      dirty.delete(s.owner);
      save(s, w.operator);
    },
  };
}
