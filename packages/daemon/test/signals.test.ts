import { type ChildProcess, spawn } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath } from 'node:url';
import { afterEach, describe, expect, test } from 'vitest';
import { EXIT_CODES } from '../src/index.ts';

// `runUntilSignalled` in a real process: real signals, the real exit code.
const CHILD = fileURLToPath(new URL('./helpers/daemon-child.ts', import.meta.url));
const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const children: ChildProcess[] = [];
afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
});

function spawnDaemon(mode: 'drain' | 'fail-start' | 'fail-stop') {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, mode], {
    cwd: REPO,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  children.push(child);
  const out = { stdout: '', stderr: '' };
  const waiters: { stream: 'stdout' | 'stderr'; text: string; resolve: () => void }[] = [];
  const check = () => {
    for (const w of [...waiters])
      if (out[w.stream].includes(w.text)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
  };
  child.stdout!.on('data', (d) => {
    out.stdout += String(d);
    check();
  });
  child.stderr!.on('data', (d) => {
    out.stderr += String(d);
    check();
  });
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  /** Resolves when `text` has appeared on the stream (an event, not a timer); fails if the child exits first. */
  const output = (stream: 'stdout' | 'stderr', text: string) =>
    Promise.race([
      new Promise<void>((resolve) => {
        waiters.push({ stream, text, resolve });
        check();
      }),
      exited.then(() => {
        if (!out[stream].includes(text))
          throw new Error(`exited before "${text}" on ${stream}: ${out.stderr}`);
      }),
    ]);
  return { child, out, exited, output };
}

describe('runUntilSignalled in a real process', () => {
  test('the first SIGTERM drains; when the drain ends the process exits 0', async () => {
    const d = spawnDaemon('drain');
    await d.output('stdout', 'ready');
    d.child.kill('SIGTERM');
    await d.output('stdout', 'draining');
    await d.output('stderr', '\n');
    expect(d.out.stderr).toBe('test-daemon: SIGTERM: finishing 1 job (SIGTERM again to exit now)\n');
    expect(d.child.exitCode).toBeNull();
    d.child.stdin!.write('finish\n');
    expect(await d.exited).toEqual([EXIT_CODES.ok, null]);
  });

  test('a second SIGINT during the drain exits at once with 130', async () => {
    const d = spawnDaemon('drain');
    await d.output('stdout', 'ready');
    d.child.kill('SIGINT');
    await d.output('stdout', 'draining');
    d.child.kill('SIGINT');
    expect(await d.exited).toEqual([130, null]);
    expect(d.out.stderr).toContain('test-daemon: second SIGINT, exiting now\n');
  });

  test('a second SIGTERM during the drain exits at once with 143', async () => {
    const d = spawnDaemon('drain');
    await d.output('stdout', 'ready');
    d.child.kill('SIGTERM');
    await d.output('stdout', 'draining');
    d.child.kill('SIGTERM');
    expect(await d.exited).toEqual([143, null]);
  });

  test('a daemon that cannot start: one line on stderr, exit 1', async () => {
    const d = spawnDaemon('fail-start');
    expect(await d.exited).toEqual([EXIT_CODES.failed, null]);
    expect(d.out.stderr).toBe('test-daemon: no bond for operator 0xabc: bond first\n');
    expect(d.out.stdout).toBe('');
  });

  test('a daemon that stops itself on an error: one line on stderr, exit 1', async () => {
    const d = spawnDaemon('fail-stop');
    await d.output('stdout', 'ready');
    d.child.stdin!.write('finish\n');
    expect(await d.exited).toEqual([EXIT_CODES.failed, null]);
    expect(d.out.stderr).toBe('test-daemon: stopped: the gateway refused the bond\n');
  });
});
