import { EventEmitter } from 'node:events';
import { BaseError } from '@aipg/core';
import { describe, expect, test } from 'vitest';
import { describeError, EXIT_CODES, type RunnableDaemon, runUntilSignalled } from '../src/index.ts';

/** Signals, stderr and exit in memory (the real-process tests are in signals.test.ts). */
function harness() {
  const signals = new EventEmitter();
  const out = { stderr: '', exits: [] as number[] };
  return {
    signals,
    out,
    send: (signal: NodeJS.Signals) => signals.emit(signal, signal),
    deps: {
      name: 'd',
      signals: signals as unknown as Pick<NodeJS.Process, 'on' | 'off'>,
      stderr: { write: (s: string) => (out.stderr += s) },
      exit: (code: number) => void out.exits.push(code),
    },
  };
}

/** A daemon whose drain ends when the test says so. */
function daemon(): RunnableDaemon & { stopCalls: number; finish(): void; draining: Promise<void> } {
  let finish = () => {};
  let draining = () => {};
  const drainStarted = new Promise<void>((resolve) => {
    draining = resolve;
  });
  const finished = new Promise<void>((resolve) => {
    finish = resolve;
  });
  const d = {
    stopCalls: 0,
    finish: () => finish(),
    draining: drainStarted,
    stop: async () => {
      d.stopCalls++;
      draining();
      await finished;
    },
  };
  return d;
}

describe('runUntilSignalled', () => {
  test('drains on the first signal, exits 0 when the drain ends; the handlers are removed after', async () => {
    const h = harness();
    const d = daemon();
    let started: () => void = () => {};
    const up = new Promise<void>((resolve) => {
      started = resolve;
    });
    const run = runUntilSignalled({
      ...h.deps,
      start: async () => {
        queueMicrotask(started);
        return d;
      },
      draining: () => 'finishing 3 jobs',
    });
    await up;
    h.send('SIGTERM');
    await d.draining;
    expect(h.out.stderr).toBe('d: SIGTERM: finishing 3 jobs (SIGTERM again to exit now)\n');
    d.finish();
    expect(await run).toBe(EXIT_CODES.ok);
    expect(h.signals.listenerCount('SIGTERM') + h.signals.listenerCount('SIGINT')).toBe(0);
    expect(h.out.exits).toEqual([]);
  });

  test('a second signal exits at once with 128 + its number', async () => {
    const h = harness();
    const d = daemon();
    void runUntilSignalled({ ...h.deps, start: async () => d });
    await new Promise<void>((resolve) => setImmediate(resolve));
    h.send('SIGINT');
    await d.draining;
    h.send('SIGTERM');
    expect(h.out.exits).toEqual([143]);
    expect(h.out.stderr).toContain('d: second SIGTERM, exiting now\n');
    expect(d.stopCalls).toBe(1);
  });

  test('a signal while starting drains as soon as the daemon is up', async () => {
    const h = harness();
    const d = daemon();
    let release: () => void = () => {};
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    let starting: () => void = () => {};
    const inStart = new Promise<void>((resolve) => {
      starting = resolve;
    });
    const run = runUntilSignalled({
      ...h.deps,
      start: async () => {
        starting();
        await gate;
        return d;
      },
    });
    await inStart;
    h.send('SIGINT');
    expect(d.stopCalls).toBe(0);
    release();
    await d.draining;
    expect(d.stopCalls).toBe(1);
    d.finish();
    expect(await run).toBe(0);
  });

  test('start-up failure: one line, exit 1; a failed stop and an error stop: exit 1', async () => {
    const h = harness();
    expect(
      await runUntilSignalled({
        ...h.deps,
        start: async () => {
          throw new Error('connect ECONNREFUSED 127.0.0.1:9\n    at somewhere');
        },
      }),
    ).toBe(EXIT_CODES.failed);
    expect(h.out.stderr).toBe('d: connect ECONNREFUSED 127.0.0.1:9\n');

    const h2 = harness();
    const run2 = runUntilSignalled({
      ...h2.deps,
      start: async () => ({ stop: async () => Promise.reject(new Error('database close failed')) }),
    });
    await new Promise<void>((resolve) => setImmediate(resolve));
    h2.send('SIGTERM');
    expect(await run2).toBe(1);
    expect(h2.out.stderr).toContain('d: stopping failed: database close failed\n');

    const h3 = harness();
    const run3 = runUntilSignalled({
      ...h3.deps,
      start: async () => ({
        stop: async () => {},
        stopped: Promise.resolve({ error: new Error('bond gone') }),
      }),
    });
    expect(await run3).toBe(1);
    expect(h3.out.stderr).toBe('d: stopped: bond gone\n');
  });

  test('describeError: one line, details included', () => {
    expect(
      describeError(new BaseError('bad config', { code: 'X', details: 'port: too big;\nhost: empty' })),
    ).toBe('bad config: port: too big; host: empty');
    expect(describeError({ shortMessage: 'HTTP request failed.' })).toBe('HTTP request failed.');
    expect(describeError('plain')).toBe('plain');
  });
});
