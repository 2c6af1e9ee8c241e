/**
 * The bench's load generator, as its own process (so the processes measured never share a core with
 * it in the same event loop): `count` POSTs of `body` to `url` with `headers`, `concurrency` at a
 * time, over keep-alive connections. Streaming requests time the first content chunk. Prints one JSON
 * line: per-request latencies (and time to first byte of content), failures, wall time.
 *
 *   node --import tsx bench/load.ts '<json spec>'
 */
import type { LoadSpec } from './side-by-side.ts';

const spec = JSON.parse(process.argv[2]!) as LoadSpec;
const payload = JSON.stringify(spec.body);
const latencies: number[] = [];
const ttfts: number[] = [];
let failures = 0;
let firstError: string | undefined;
let next = 0;
// This process's own CPU over the requests (its start-up excluded): the load's share of the machine.
const cpuAtStart = process.cpuUsage();
// One untimed request per connection first, so a round's latencies are not its connections' set-up
// (the processes' CPU counts them: `warmups` in the output).
await Promise.all(
  Array.from({ length: spec.concurrency }, async () => {
    const res = await fetch(spec.url, {
      method: 'POST',
      headers: { 'content-type': 'application/json', ...spec.headers },
      body: payload,
    }).catch(() => undefined);
    await res?.arrayBuffer().catch(() => undefined);
  }),
);
const started = performance.now();
await Promise.all(
  Array.from({ length: spec.concurrency }, async () => {
    while (next < spec.count) {
      next++;
      const t = performance.now();
      try {
        const res = await fetch(spec.url, {
          method: 'POST',
          headers: { 'content-type': 'application/json', ...spec.headers },
          body: payload,
        });
        if (spec.stream && res.ok && res.body) {
          let first = 0;
          const decoder = new TextDecoder();
          for await (const chunk of res.body) {
            if (!first && decoder.decode(chunk as Uint8Array, { stream: true }).includes('"content":"'))
              first = performance.now() - t;
          }
          ttfts.push(first || performance.now() - t);
        } else if (res.ok) await res.arrayBuffer();
        if (!res.ok) {
          failures++;
          const text = spec.stream ? '' : await res.text().catch(() => '');
          firstError ??= `HTTP ${res.status} ${text.slice(0, 300)}`;
        }
      } catch (error) {
        failures++;
        firstError ??= (error as Error).message;
      }
      latencies.push(performance.now() - t);
    }
  }),
);
function cpuMsSince(from: NodeJS.CpuUsage): number {
  const u = process.cpuUsage(from);
  return (u.user + u.system) / 1000;
}
process.stdout.write(
  `${JSON.stringify({ latencies, ttfts, failures, firstError, wallMs: performance.now() - started, warmups: spec.concurrency, cpuMs: cpuMsSince(cpuAtStart) })}\n`,
);
