/**
 * Token buckets keyed by API key, payer or client IP: `burst` tokens, refilled at `perMinute / 60` per
 * second. In memory per gateway process: with N replicas behind a balancer a key gets up to N× the
 * rate, which is fine for abuse protection (billing limits live on chain).
 */
export type RateLimitResult = { ok: boolean; remaining: number; retryAfterMs: number; limit: number };

export type RateLimiter = ReturnType<typeof createRateLimiter>;

export function createRateLimiter({ perMinute, burst }: { perMinute: number; burst: number }) {
  const buckets = new Map<string, { tokens: number; at: number }>();
  const perMs = perMinute / 60_000;

  function prune(now: number) {
    for (const [k, b] of buckets) {
      if (b.tokens + (now - b.at) * perMs >= burst) buckets.delete(k);
    }
  }

  /** The bucket's tokens now (refilled), without taking any. */
  function level(key: string, now: number): number {
    const b = buckets.get(key);
    return b ? Math.min(burst, b.tokens + (now - b.at) * perMs) : burst;
  }

  function refusal(tokens: number): RateLimitResult {
    return { ok: false, remaining: 0, retryAfterMs: Math.ceil((1 - tokens) / perMs), limit: perMinute };
  }

  return {
    perMinute,
    take(key: string, now = Date.now()): RateLimitResult {
      if (buckets.size > 10_000) prune(now);
      const tokens = level(key, now);
      if (tokens < 1) {
        buckets.set(key, { tokens, at: now });
        return refusal(tokens);
      }
      buckets.set(key, { tokens: tokens - 1, at: now });
      return { ok: true, remaining: Math.floor(tokens - 1), retryAfterMs: 0, limit: perMinute };
    },
    /** What `take` would answer, taking nothing. */
    peek(key: string, now = Date.now()): RateLimitResult {
      const tokens = level(key, now);
      return tokens < 1
        ? refusal(tokens)
        : { ok: true, remaining: Math.floor(tokens - 1), retryAfterMs: 0, limit: perMinute };
    },
  };
}

/**
 * Takes one token from each bucket, or none: a request refused by one limit spends nothing of the
 * others. Answers with the tightest limit (the refusal with the longest wait, else the fewest left).
 */
export function takeAll(
  entries: readonly { limiter: RateLimiter; key: string; scope: string }[],
  now = Date.now(),
): RateLimitResult & { scope: string } {
  const peeked = entries.map((e) => ({ ...e.limiter.peek(e.key, now), scope: e.scope }));
  const refused = peeked.filter((r) => !r.ok).sort((a, b) => b.retryAfterMs - a.retryAfterMs)[0];
  if (refused) return refused;
  const taken = entries.map((e) => ({ ...e.limiter.take(e.key, now), scope: e.scope }));
  return taken.sort((a, b) => a.remaining - b.remaining)[0]!;
}
