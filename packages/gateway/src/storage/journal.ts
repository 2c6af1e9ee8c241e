import { randomBytes } from 'node:crypto';
import {
  closeSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import { receiptFromJson, receiptJsonSchema, receiptToJson } from '@aipg/core';
import { type CommitEntry, commitReceipt } from './commit.ts';
import type { Database } from './db.ts';

/** A journal file is left for a new one past this size (it is removed once all it holds is committed). */
const SEGMENT_BYTES = 1024 * 1024;
const VERSION = 1;

/** One journal file and how many of its lines are not committed yet. */
export type JournalSegment = { path: string; fd: number; bytes: number; open: number };

/**
 * The commit journal of embedded PGlite on disk. A job's receipt and result are appended here (one JSON
 * line) before its client is answered, and committed to the database right after, with whatever other
 * writes join them (`Database.batch` deferred): the answer no longer waits for the statement, which costs
 * embedded PGlite 1–2 ms of the gateway's CPU per request when it runs alone. A process that dies
 * between the two leaves the line behind, and the next start commits it before anything else reads the
 * database (before the recovery pass, which would otherwise fail the job and free its number).
 *
 * Durability is PGlite's own: a line is written with write(2) before the answer, as PGlite writes its
 * pages (neither calls fsync), so what survives a killed process survives here too.
 *
 * Files: lines go to the newest file until it passes 1 MiB, then to a new one; a file whose lines are all
 * committed is removed once it is not the newest (so a restart replays at most about 1 MiB of lines
 * already committed, which changes nothing; a clean stop removes every file). A line torn at the end of a
 * file (its write never finished, so its answer was never sent) is skipped; any other unreadable line
 * stops the start.
 */
export function openCommitJournal(dir: string) {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  const names = readdirSync(dir)
    .filter((n) => n.endsWith('.jsonl'))
    .sort();
  /** What a process that died left uncommitted (and what a clean stop left: nothing). */
  const left: CommitEntry[] = [];
  for (const name of names) left.push(...readSegment(join(dir, name)));
  let counter = 0;
  const open = (): JournalSegment => {
    // Named to sort in the order written; never one that exists (`ax`), even with the clock set back.
    const path = join(
      dir,
      `${String(Date.now()).padStart(15, '0')}-${String(counter++).padStart(6, '0')}-${randomBytes(4).toString('hex')}.jsonl`,
    );
    return { path, fd: openSync(path, 'ax', 0o600), bytes: 0, open: 0 };
  };
  let current = open();
  const older = new Set<JournalSegment>();
  return {
    /** Entries a previous process left (committed or not: committing them again changes nothing). */
    left,
    /** Removes the files `left` came from (call once they are committed). */
    discardLeft(): void {
      for (const name of names) unlinkSync(join(dir, name));
      left.length = 0;
    },
    /**
     * Writes the entry (one write); its segment is what `committed` takes once the database has it.
     * Throws when the line could not be written whole (a full disk): what was written of it is cut off
     * again, so no torn line sits between whole ones.
     */
    append(entry: CommitEntry): JournalSegment {
      const seg = current;
      const line = Buffer.from(encode(entry));
      const written = writeSync(seg.fd, line);
      if (written !== line.length) {
        ftruncateSync(seg.fd, seg.bytes);
        throw new Error(`commit journal: ${written} of ${line.length} bytes written`);
      }
      seg.bytes += written;
      seg.open += 1;
      if (seg.bytes >= SEGMENT_BYTES) {
        older.add(seg);
        current = open();
      }
      return seg;
    },
    committed(seg: JournalSegment): void {
      seg.open -= 1;
      if (seg.open > 0 || seg === current) return;
      older.delete(seg);
      closeSync(seg.fd);
      unlinkSync(seg.path);
    },
    /** Lines not committed yet, in every file. */
    pending(): number {
      let n = current.open;
      for (const s of older) n += s.open;
      return n;
    },
    /** Closes the files; removes those with nothing uncommitted (after a clean stop: all of them). */
    close(): void {
      for (const s of [...older, current]) {
        closeSync(s.fd);
        if (s.open === 0) unlinkSync(s.path);
      }
      older.clear();
    },
  };
}

export type CommitJournal = ReturnType<typeof openCommitJournal>;

function readSegment(path: string): CommitEntry[] {
  const lines = readFileSync(path, 'utf8').split('\n');
  // The text after the last newline is a line whose write never finished (empty after a whole one).
  lines.pop();
  const out: CommitEntry[] = [];
  for (const [i, line] of lines.entries()) {
    if (line === '') continue;
    let entry: CommitEntry | undefined;
    try {
      entry = decode(line);
    } catch {}
    if (!entry)
      throw new Error(
        `commit journal ${path}: line ${i + 1} is unreadable; the database lacks what it records`,
      );
    out.push(entry);
  }
  return out;
}

/** One line: the entry with the receipt as the wire has it (`receiptToJson`), the fee a decimal string. */
function encode(e: CommitEntry): string {
  const r = { ...e.r, receipt: receiptToJson(e.r.receipt) };
  const c = { ...e.c, fee: e.c.fee.toString() };
  return `${JSON.stringify({ v: VERSION, r, jobId: e.jobId, c })}\n`;
}

function decode(line: string): CommitEntry | undefined {
  const o = JSON.parse(line) as { v?: unknown; r?: { receipt?: unknown }; jobId?: unknown; c?: unknown };
  if (o.v !== VERSION || typeof o.r !== 'object' || typeof o.jobId !== 'string' || typeof o.c !== 'object')
    return undefined;
  const receipt = receiptJsonSchema.safeParse(o.r.receipt);
  if (!receipt.success) return undefined;
  const c = o.c as Record<string, unknown>;
  c.fee = BigInt(c.fee as string);
  if (typeof c.firstTokenAt === 'string') c.firstTokenAt = new Date(c.firstTokenAt);
  return { r: { ...o.r, receipt: receiptFromJson(receipt.data) }, jobId: o.jobId, c: o.c } as CommitEntry;
}

/**
 * Commits what a killed process left in `journal`, before anything else reads the database: a line
 * already committed changes nothing (its number is no longer in flight), so a replay may repeat. Its
 * files are removed only once all of it is in the database; a failure throws with them kept. Whoever
 * opens the database of embedded PGlite first does this: the gateway at its start, the standalone
 * indexer (`openGatewayDatabase`) when it opens the directory of a gateway that was killed.
 */
export async function replayJournal(
  db: Database,
  journal: CommitJournal,
): Promise<{ entries: number; committedNow: number }> {
  if (journal.left.length === 0) return { entries: 0, committedNow: 0 };
  const stored = await Promise.all(journal.left.map((e) => commitReceipt(db, e.r, e.jobId, e.c)));
  journal.discardLeft();
  return { entries: stored.length, committedNow: stored.filter(Boolean).length };
}
