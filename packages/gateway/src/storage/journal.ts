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
import type { CommitEntry } from './commit.ts';

/** A journal file is left for a new one past this size (it is removed once all it holds is committed). */
const SEGMENT_BYTES = 4 * 1024 * 1024;
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
 * Files: lines go to the newest file until it passes 4 MiB, then to a new one; a file whose lines are all
 * committed is removed (the newest one emptied). A line torn at the end of a file (its write never
 * finished, so its answer was never sent) is skipped; any other unreadable line stops the start.
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
    const path = join(
      dir,
      `${String(Date.now()).padStart(15, '0')}-${String(counter++).padStart(6, '0')}.jsonl`,
    );
    return { path, fd: openSync(path, 'a', 0o600), bytes: 0, open: 0 };
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
    /** Writes the entry; its segment is what `committed` takes once the database has it. */
    append(entry: CommitEntry): JournalSegment {
      const line = `${JSON.stringify({ v: VERSION, ...entry }, replacer)}\n`;
      const seg = current;
      seg.bytes += writeSync(seg.fd, line);
      seg.open += 1;
      if (seg.bytes >= SEGMENT_BYTES) {
        older.add(seg);
        current = open();
      }
      return seg;
    },
    committed(seg: JournalSegment): void {
      seg.open -= 1;
      if (seg.open > 0) return;
      if (seg === current) {
        ftruncateSync(seg.fd, 0);
        seg.bytes = 0;
      } else {
        older.delete(seg);
        closeSync(seg.fd);
        unlinkSync(seg.path);
      }
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
  const text = readFileSync(path, 'utf8');
  const lines = text.split('\n');
  // The text after the last newline is a line whose write never finished (empty after a whole one).
  const torn = lines.pop();
  const out: CommitEntry[] = [];
  for (const [i, line] of lines.entries()) {
    if (line === '') continue;
    let parsed: ({ v?: unknown } & CommitEntry) | undefined;
    try {
      parsed = JSON.parse(line, reviver);
    } catch {}
    if (
      !parsed ||
      parsed.v !== VERSION ||
      !parsed.r?.receipt ||
      typeof parsed.jobId !== 'string' ||
      !parsed.c
    )
      throw new Error(
        `commit journal ${path}: line ${i + 1} is unreadable; the database lacks what it records`,
      );
    const { v: _v, ...entry } = parsed;
    out.push(entry);
  }
  void torn;
  return out;
}

/** Bigints as `{ "$n": "<decimal>" }` (JSON has none); dates are ISO strings already. */
function replacer(_key: string, value: unknown): unknown {
  return typeof value === 'bigint' ? { $n: value.toString() } : value;
}

function reviver(key: string, value: unknown): unknown {
  if (value !== null && typeof value === 'object' && !Array.isArray(value)) {
    const o = value as Record<string, unknown>;
    if (typeof o.$n === 'string' && Object.keys(o).length === 1) return BigInt(o.$n);
  }
  if (key === 'firstTokenAt' && typeof value === 'string') return new Date(value);
  return value;
}
