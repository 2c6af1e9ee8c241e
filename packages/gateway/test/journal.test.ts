import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { cpSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import type { Address } from 'viem';
import { afterAll, describe, expect, test } from 'vitest';
import type { Storage } from '../src/index.ts';
import { openGatewayDatabase } from '../src/index.ts';
import { openCommitJournal } from '../src/storage/journal.ts';
import { buildTestBatch, openTestStorage, reserveTestJob, testCommit, testJob } from './helpers/storage.ts';

// Embedded PGlite answers a job once its commit is in the journal, and the statement follows. Here: a
// process killed (SIGKILL) between the two leaves its commit in the journal and the next start commits
// it, once however often it is replayed; a torn last line is skipped and any other unreadable line stops
// the start; and nothing read after an early answer misses what it committed.

const CHILD = resolve(import.meta.dirname, 'helpers/journal-child.ts');
const payer = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8' as Address;
const gateway = '0x90F79bf6EB2c4f870365E785982E1f101E93b906' as Address;
const worker = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC' as Address;
const root = mkdtempSync(join(tmpdir(), 'aipg-journal-'));
const dir = join(root, 'db');
const journalDir = `${dir}-journal`;
const kept = join(root, 'kept');
/** The database as the killed process left it (its journal not replayed yet). */
const keptDb = join(root, 'kept-db');

afterAll(() => rmSync(root, { recursive: true, force: true }));

/** The journal's files and their sizes. */
const journalFiles = () =>
  readdirSync(journalDir)
    .filter((n) => n.endsWith('.jsonl'))
    .map((n) => ({ name: n, bytes: statSync(join(journalDir, n)).size }));

async function open(keyId: string) {
  return openTestStorage('journal', { dir }, { keyId, payer });
}

async function stateOf(storage: Storage, jobId: string) {
  const job = await storage.jobs.get(jobId);
  const receipts = await storage.db.query<{ n: number }>(
    'SELECT count(*)::int AS n FROM receipts WHERE job_id = $1',
    [jobId],
  );
  return {
    status: job?.status,
    fee: job?.fee,
    reservedFee: job?.reservedFee,
    outputText: job?.outputText,
    receipts: receipts[0]!.n,
    spend: await storage.payerSpend(payer),
  };
}

/** A storage of its own (in memory unless `db` says otherwise) with one key, numbering initialised. */
async function openWith(db: { dir?: string; url?: string }, set: Record<string, unknown>) {
  const keyId = `kjournal${randomBytes(3).toString('hex')}`;
  const opened = await openTestStorage('journal', db, { keyId, payer }, set);
  await opened.storage.receiptNumbers.init(gateway, 0n);
  return { ...opened, keyId };
}

/** A job reserved with its first dispatch to `worker` numbered, expiring `expiresInMs` from now. */
async function reserve(storage: Storage, keyId: string, fee: bigint, expiresInMs = 600_000) {
  const job = testJob({ keyId, payer, reservedFee: fee });
  const { seq, commit } = await reserveTestJob(storage, job, { gateway, worker, fee, expiresInMs });
  return { job, seq, args: commit };
}

describe('the commit journal (embedded PGlite on disk)', () => {
  let journaled: { jobId: string; journaled: boolean; fee: string; seq: string };

  test('a process killed after it answered, before the statement ran: the next start commits the job, charged once', async () => {
    const child = spawn(
      process.execPath,
      ['--import', 'tsx', CHILD, dir, 'kjournal0001', payer, gateway, worker],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    let out = '';
    let err = '';
    child.stderr!.on('data', (d) => {
      err += d;
    });
    const line = await new Promise<string>((resolveLine, reject) => {
      child.stdout!.on('data', (d) => {
        out += d;
        if (out.includes('\n')) resolveLine(out.split('\n')[0]!);
      });
      child.once('exit', (code) => reject(new Error(`the child exited (${code}) before journaling: ${err}`)));
    });
    journaled = JSON.parse(line);
    expect(journaled.journaled).toBe(true);
    // Its line is in the journal: one line, whole.
    const files = journalFiles().filter((f) => f.bytes > 0);
    expect(files).toHaveLength(1);
    const text = readFileSync(join(journalDir, files[0]!.name), 'utf8');
    expect(text.endsWith('\n')).toBe(true);
    expect(text.trim().split('\n')).toHaveLength(1);
    expect(text).not.toContain('"status"');
    child.kill('SIGKILL');
    await new Promise((r) => child.once('exit', r));
    cpSync(journalDir, kept, { recursive: true });
    cpSync(dir, keptDb, { recursive: true });

    const { storage, close } = await open('kjournal0002');
    try {
      const s = await stateOf(storage, journaled.jobId);
      expect(s).toMatchObject({
        status: 'succeeded',
        fee: BigInt(journaled.fee),
        reservedFee: 0n,
        outputText: 'abcdefgh',
        receipts: 1,
      });
      expect(s.spend).toEqual({ unsettled: BigInt(journaled.fee), reserved: 0n });
      expect(await storage.receiptNumbers.status(gateway, BigInt(journaled.seq))).toBe('receipted');
      // What the dead process left is gone once committed.
      expect(journalFiles().every((f) => f.bytes === 0)).toBe(true);
    } finally {
      await close();
    }
    // A clean stop leaves no file behind.
    expect(journalFiles()).toEqual([]);
  }, 60_000);

  test('replayed again (a start killed before it removed the files): nothing changes, nothing is charged twice', async () => {
    cpSync(kept, journalDir, { recursive: true });
    expect(journalFiles().length).toBeGreaterThan(0);
    const { storage, close } = await open('kjournal0003');
    try {
      const s = await stateOf(storage, journaled.jobId);
      expect(s).toMatchObject({ status: 'succeeded', receipts: 1, reservedFee: 0n });
      expect(s.spend).toEqual({ unsettled: BigInt(journaled.fee), reserved: 0n });
    } finally {
      await close();
    }
    expect(journalFiles()).toEqual([]);
  }, 60_000);

  test('the standalone indexer opening what a killed gateway left commits its journal first, as the gateway would', async () => {
    const other = join(root, 'indexer-db');
    cpSync(keptDb, other, { recursive: true });
    cpSync(kept, `${other}-journal`, { recursive: true });
    const store = await openGatewayDatabase({ dir: other, schema: 'public', poolSize: 1 });
    try {
      expect(store.journalReplayed).toEqual({ entries: 1, committedNow: 1 });
      const [row] = await store.db.query<{ status: string; receipts: number }>(
        `SELECT status, (SELECT count(*)::int FROM receipts WHERE job_id = $1) AS receipts FROM jobs WHERE id = $1`,
        [journaled.jobId],
      );
      expect(row).toEqual({ status: 'succeeded', receipts: 1 });
    } finally {
      await store.close();
    }
    expect(readdirSync(`${other}-journal`).filter((n) => n.endsWith('.jsonl'))).toEqual([]);
  }, 60_000);

  test('a torn last line (its write never finished) is skipped; any other unreadable line stops the start, files kept', async () => {
    const whole = readFileSync(join(kept, readdirSync(kept)[0]!), 'utf8');
    writeFileSync(join(journalDir, '000000000000001-000000.jsonl'), `${whole}${whole.slice(0, 40)}`);
    const a = await open('kjournal0004');
    try {
      expect((await stateOf(a.storage, journaled.jobId)).receipts).toBe(1);
    } finally {
      await a.close();
    }
    expect(journalFiles()).toEqual([]);

    writeFileSync(join(journalDir, '000000000000002-000000.jsonl'), `{"v":1,"r":\n${whole}`);
    await expect(open('kjournal0005')).rejects.toThrow(/line 1 is unreadable/);
    expect(journalFiles().map((f) => f.name)).toContain('000000000000002-000000.jsonl');
    rmSync(join(journalDir, '000000000000002-000000.jsonl'));
  }, 60_000);
});

describe('journal files', () => {
  test('a file whose lines are all committed is removed once a newer one takes the lines; what is left reads back whole', () => {
    const jdir = join(root, 'files');
    const j = openCommitJournal(jdir);
    const job = testJob({ keyId: 'k', payer, reservedFee: 1n });
    const entry = testCommit(job, 2n ** 63n + 5n, { gateway, worker, fee: 10n ** 24n + 1n });
    const [r, jobId, c] = entry;
    const first = Date.now();
    const firstTokenAt = new Date(first);
    // ~1.3 KB a line: 1 MiB fills after ~800.
    const segs = Array.from({ length: 2_000 }, () => j.append({ r, jobId, c: { ...c, firstTokenAt } }));
    const files = () => readdirSync(jdir).filter((n) => n.endsWith('.jsonl'));
    expect(files().length).toBeGreaterThanOrEqual(2);
    expect(j.pending()).toBe(2_000);
    for (const s of segs.slice(0, 1_990)) j.committed(s);
    // Only the newest file is left: the older ones were all committed.
    expect(files()).toHaveLength(1);
    expect(j.pending()).toBe(10);
    // What a restart would read: every line of the newest file, bigints and date as written.
    const again = openCommitJournal(jdir);
    expect(again.left.length).toBeGreaterThanOrEqual(10);
    expect(again.left[0]).toEqual({ r, jobId, c: { ...c, firstTokenAt } });
    again.close();
    j.close();
    // Lines not committed keep their file on close: the next start commits them.
    expect(files()).toHaveLength(1);
    rmSync(jdir, { recursive: true });
  });
});

describe('reads after an early answer', () => {
  test('see its commit at once, however long the statement was allowed to wait (a read issued after it runs after it)', async () => {
    const { storage, close, keyId } = await openWith(
      { dir: 'memory://' },
      { 'database.commitDelayMs': 600_000 },
    );
    try {
      for (const via of ['statement', 'transaction', 'payer totals'] as const) {
        const fee = 1_000n;
        const { job, args } = await reserve(storage, keyId, fee);
        const spendBefore = await storage.payerSpend(payer);
        // A read issued before the commit shares its group: the commit still runs first.
        const before = storage.jobs.get(job.id);
        const committing = storage.commitReceipt(...args, { early: true });
        expect(committing.journaled).toBe(true);
        if (via === 'statement') expect((await storage.jobs.get(job.id))?.status).toBe('succeeded');
        if (via === 'transaction') {
          const rows = await storage.transaction((tx) =>
            tx.query<{ status: string }>('SELECT status FROM jobs WHERE id = $1', [job.id]),
          );
          expect(rows[0]!.status).toBe('succeeded');
        }
        if (via === 'payer totals')
          expect(await storage.payerSpend(payer)).toEqual({
            unsettled: spendBefore.unsettled + fee,
            reserved: spendBefore.reserved - fee,
          });
        expect(await committing.stored).toBe(true);
        await before;
      }
    } finally {
      await close();
    }
  });

  test('settlement batches an answered job whose statement had not run yet, its number never given up, even once expired', async () => {
    const { storage, close, keyId } = await openWith(
      { dir: 'memory://' },
      { 'database.commitDelayMs': 600_000 },
    );
    try {
      const fee = 77n;
      // Its number expired already: settlement would give it up were the receipt not committed first.
      const { job, seq, args } = await reserve(storage, keyId, fee, -1_000);
      const committing = storage.commitReceipt(...args, { early: true });
      expect(committing.journaled).toBe(true);
      const batch = await storage.receipts.createBatch({ gateway, from: 0n, max: 10 }, buildTestBatch);
      expect(batch?.receipts.map((x) => x.receipt.jobId)).toEqual([job.id]);
      expect(batch?.batch.total).toBe(fee);
      expect(await committing.stored).toBe(true);
      expect(await storage.receiptNumbers.status(gateway, seq)).toBe('receipted');
    } finally {
      await close();
    }
  });

  test('a commit whose statement fails after the answer is tried again in the running process: stored, charged once, no restart needed', async () => {
    const { storage, close, keyId } = await openWith({ dir: 'memory://' }, {});
    try {
      // The next three receipt inserts fail (a full disk, say); a sequence counts them, as it is not
      // rolled back with the statement that fails.
      await storage.db.query('CREATE SEQUENCE failing_commits');
      await storage.db.query(
        `CREATE FUNCTION failing_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           IF nextval('failing_commits') <= 3 THEN RAISE EXCEPTION 'no space left on device (test)'; END IF;
           RETURN NEW;
         END $$`,
      );
      await storage.db.query(
        'CREATE TRIGGER failing_commit BEFORE INSERT ON receipts FOR EACH ROW EXECUTE FUNCTION failing_commit()',
      );
      const fee = 55n;
      const spendBefore = await storage.payerSpend(payer);
      const { job, seq, args } = await reserve(storage, keyId, fee);
      const committing = storage.commitReceipt(...args, { early: true });
      expect(committing.journaled).toBe(true);
      expect(await committing.stored).toBe(true);
      const [tries] = await storage.db.query<{ n: string }>(
        'SELECT last_value::text AS n FROM failing_commits',
      );
      expect(Number(tries!.n)).toBe(4);
      expect(await stateOf(storage, job.id)).toMatchObject({ status: 'succeeded', fee, receipts: 1 });
      expect(await storage.receiptNumbers.status(gateway, seq)).toBe('receipted');
      expect(await storage.payerSpend(payer)).toEqual({
        unsettled: spendBefore.unsettled + fee,
        reserved: spendBefore.reserved,
      });
    } finally {
      await close();
    }
  });

  test('a commit still failing when the storage closes is not tried again: it gives up at once, its line kept for the next start', async () => {
    const closingDir = join(root, 'closing');
    const { storage, close, keyId } = await openWith({ dir: closingDir }, {});
    let closed = false;
    try {
      await storage.db.query(
        `CREATE FUNCTION failing_commit() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN RAISE EXCEPTION 'no space left on device (test)'; END $$`,
      );
      await storage.db.query(
        'CREATE TRIGGER failing_commit BEFORE INSERT ON receipts FOR EACH ROW EXECUTE FUNCTION failing_commit()',
      );
      const { job, args } = await reserve(storage, keyId, 9n);
      const committing = storage.commitReceipt(...args, { early: true });
      expect(committing.journaled).toBe(true);
      const outcome = committing.stored.then(
        () => 'stored',
        () => 'gave up',
      );
      const closedAt = Date.now();
      await close();
      closed = true;
      expect(await outcome).toBe('gave up');
      // Well before the 20 s it would keep trying in a running process.
      expect(Date.now() - closedAt).toBeLessThan(10_000);
      const lines = readdirSync(`${closingDir}-journal`)
        .map((name) => readFileSync(join(`${closingDir}-journal`, name), 'utf8'))
        .join('');
      expect(lines).toContain(job.id);
    } finally {
      if (!closed) await close();
    }
  });

  test('`database.journal=false` (and a PostgreSQL server, always): the answer waits for the statement', async () => {
    const targets = [
      { dir: 'memory://', set: { 'database.journal': false } },
      ...(process.env.DATABASE_URL ? [{ url: process.env.DATABASE_URL, set: {} }] : []),
    ];
    for (const t of targets) {
      const { storage, close, keyId } = await openWith(t, t.set);
      try {
        const { args } = await reserve(storage, keyId, 10n);
        const committing = storage.commitReceipt(...args, { early: true });
        expect(committing.journaled).toBe(false);
        expect(await committing.stored).toBe(true);
      } finally {
        await close();
      }
    }
  });
});
