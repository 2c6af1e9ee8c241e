import { describe, expect, test } from 'vitest';
import { GatewayError } from '../src/errors.ts';
import type { JobOutcome, RunHooks } from '../src/jobs/index.ts';
import { type JobEvent, streamEvents } from '../src/jobs/stream.ts';
import type { JobRecord } from '../src/storage/index.ts';

const job = { id: '0x01' } as unknown as JobRecord;
const ok = { ok: true, job, receipt: {} } as unknown as JobOutcome;

/** A job run the test drives: `hooks` is what the stream wired, `finish` ends the run. */
function controlled() {
  let hooks: RunHooks = {};
  let finish: (o: JobOutcome) => void = () => {};
  const execute = (_job: JobRecord, h: RunHooks) => {
    hooks = h;
    return new Promise<JobOutcome>((resolve) => {
      finish = resolve;
    });
  };
  return { execute, hooks: () => hooks, finish: (o: JobOutcome) => finish(o) };
}

async function drain(it: AsyncGenerator<JobEvent, JobOutcome>) {
  const events: JobEvent[] = [];
  for (let r = await it.next(); ; r = await it.next()) {
    if (r.done) return { events, outcome: r.value };
    events.push(r.value);
  }
}

describe('a job as an async iterator of its events', () => {
  test('events come in order, held until read; the outcome is the return value', async () => {
    const run = controlled();
    const it = streamEvents(run.execute, job);
    const first = it.next();
    // The run starts on the first read.
    await Promise.resolve();
    run.hooks().onToken!('a');
    expect(await first).toEqual({ done: false, value: { type: 'text', text: 'a' } });
    // Produced while nobody reads: kept, in order.
    run.hooks().onToken!('b');
    run.hooks().onSealedChunk!({
      type: 'sealed-chunk',
      jobId: '0x01',
      seq: 0,
      final: true,
      ciphertext: 'AA==',
    } as never);
    run.hooks().onProgress!({ image: 0, step: 1, steps: 4 });
    run.finish(ok);
    const rest = await drain(it);
    expect(rest.events.map((e) => e.type)).toEqual(['text', 'sealed', 'progress']);
    expect(rest.events[0]).toEqual({ type: 'text', text: 'b' });
    expect(rest.outcome).toBe(ok);
    expect(run.hooks().signal!.aborted).toBe(false);
  });

  test('a failure before any event is the first read', async () => {
    const failed: JobOutcome = {
      ok: false,
      job,
      error: new GatewayError('no_worker_available', 'no worker serves this model'),
      afterFirstToken: false,
    };
    const it = streamEvents(async () => failed, job);
    expect(await it.next()).toEqual({ done: true, value: failed });
  });

  test('a run that throws (a bug, not an outcome) is thrown to the reader, never a hang', async () => {
    let hooks: RunHooks = {};
    let fail: (e: Error) => void = () => {};
    const it = streamEvents((_job, h) => {
      hooks = h;
      return new Promise<JobOutcome>((_, reject) => {
        fail = reject;
      });
    }, job);
    const first = it.next();
    await Promise.resolve();
    hooks.onToken!('a');
    expect(await first).toEqual({ done: false, value: { type: 'text', text: 'a' } });
    const second = it.next();
    fail(new Error('boom'));
    await expect(second).rejects.toThrow('boom');
  });

  test('aborting the signal (the client went away) stops the job', async () => {
    const run = controlled();
    const abort = new AbortController();
    const it = streamEvents(run.execute, job, abort.signal);
    const first = it.next();
    await Promise.resolve();
    expect(run.hooks().signal!.aborted).toBe(false);
    abort.abort();
    expect(run.hooks().signal!.aborted).toBe(true);
    run.finish(ok);
    expect((await first).done).toBe(true);
  });

  test('a reader that stops before the end stops the job, and waits for it to end', async () => {
    const run = controlled();
    const it = streamEvents(run.execute, job);
    const first = it.next();
    await Promise.resolve();
    run.hooks().onToken!('a');
    await first;
    let returned = false;
    const closing = it.return(undefined as never).then(() => {
      returned = true;
    });
    await Promise.resolve();
    expect(run.hooks().signal!.aborted).toBe(true);
    // Not before the run itself has ended (nothing it holds is left behind).
    await new Promise((r) => setImmediate(r));
    expect(returned).toBe(false);
    run.finish(ok);
    await closing;
    expect(returned).toBe(true);
  });
});
