/**
 * A daemon in a real process for the signal tests: `node --import tsx daemon-child.ts <mode>`.
 * It runs `runUntilSignalled` on a daemon whose drain ends when the parent writes `finish` to its
 * stdin (`ready` on stdout once started), and exits with the code `runUntilSignalled` resolves to.
 * Modes: `drain` (a clean drain), `fail-start` (start throws), `fail-stop` (it stops on an error).
 */
import { BaseError } from '@aipg/core';
import { runUntilSignalled } from '../../src/index.ts';

const mode = process.argv[2] ?? 'drain';
let finish: () => void = () => {};
const finished = new Promise<void>((resolve) => {
  finish = resolve;
});
process.stdin.setEncoding('utf8');
process.stdin.on('data', (chunk: string) => {
  if (chunk.includes('finish')) finish();
});

const code = await runUntilSignalled({
  name: 'test-daemon',
  start: async () => {
    if (mode === 'fail-start')
      throw new BaseError('no bond for operator 0xabc', { code: 'TEST_NO_BOND', details: 'bond first' });
    process.stdout.write('ready\n');
    return {
      stop: async () => {
        process.stdout.write('draining\n');
        await finished;
      },
      stopped:
        mode === 'fail-stop'
          ? finished.then(() => ({ error: new Error('the gateway refused the bond\nat line 2') }))
          : undefined,
    };
  },
  draining: () => 'finishing 1 job',
});
process.stdin.destroy();
process.exit(code);
