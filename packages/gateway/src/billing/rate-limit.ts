/**
 * Token buckets keyed by API key (or client IP): `burst` tokens, refilled at `perMinute / 60` per
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

  return {
    take(key: string, now = Date.now()): RateLimitResult {
      if (buckets.size > 10_000) prune(now);
      const b = buckets.get(key) ?? { tokens: burst, at: now };
      const tokens = Math.min(burst, b.tokens + (now - b.at) * perMs);
      if (tokens < 1) {
        buckets.set(key, { tokens, at: now });
        return { ok: false, remaining: 0, retryAfterMs: Math.ceil((1 - tokens) / perMs), limit: perMinute };
      }
      buckets.set(key, { tokens: tokens - 1, at: now });
      return { ok: true, remaining: Math.floor(tokens - 1), retryAfterMs: 0, limit: perMinute };
    },
  };
}
