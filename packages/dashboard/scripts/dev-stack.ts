/**
 * A live network for working on the dashboard: anvil + Grid, a gateway with the network feature,
 * two worker nodes (one also serving an image model), and a little traffic (a job every few seconds,
 * an image every ~10 s, a batch settled every ~30 s).
 *
 *   npx tsx packages/dashboard/scripts/dev-stack.ts [port]     # default 8080; Ctrl-C stops it
 *   npm run dev -w packages/dashboard                          # vite on :5173, proxying /v1 to it
 */
import { startStack } from '../test/stack.ts';

const port = Number(process.argv[2] ?? 8080);
const stack = await startStack({ port });
console.log(`dashboard: ${stack.url}/   (API: ${stack.url}/v1/network)`);
let n = 0;
const timer = setInterval(async () => {
  try {
    await stack.chat(`request ${++n}`);
    if (n % 3 === 0) await stack.image({ prompt: `image ${n}`, size: '128x64', steps: 12 });
    if (n % 8 === 0) await stack.settle();
  } catch (error) {
    console.error((error as Error).message);
  }
}, 3_500);
const shutdown = async () => {
  clearInterval(timer);
  await stack.stop();
  process.exit(0);
};
process.on('SIGINT', shutdown);
process.on('SIGTERM', shutdown);
