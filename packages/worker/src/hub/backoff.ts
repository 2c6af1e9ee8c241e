/**
 * Reconnect delay after `attempt` consecutive failures (0-based): exponential, capped, with "equal
 * jitter" (half fixed, half random) so a gateway restart is not met by every worker at once while
 * no worker ever retries in a tight loop.
 */
export function backoffDelay(
  attempt: number,
  { initialDelayMs, maxDelayMs }: { initialDelayMs: number; maxDelayMs: number },
  random: () => number = Math.random,
): number {
  const exp = Math.min(maxDelayMs, initialDelayMs * 2 ** Math.min(attempt, 30));
  return Math.round(exp / 2 + random() * (exp / 2));
}
