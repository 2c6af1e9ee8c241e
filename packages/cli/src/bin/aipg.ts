#!/usr/bin/env node
import { main } from '../main.ts';

// The only place that touches the real process: argv, env, streams, exit code.
const code = await main(process.argv.slice(2), {
  env: process.env,
  stdout: process.stdout,
  stderr: process.stderr,
  stdin: process.stdin,
});
// Flush, then exit: idle keep-alive sockets to the RPC must not hold the process open.
await new Promise<void>((resolve) => process.stdout.write('', () => resolve()));
process.exit(code);
