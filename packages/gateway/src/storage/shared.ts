import type { PayerAuthenticator } from '@aipg/indexer';
import { apiKeyAuthenticator, createKeyResolver } from '../auth/index.ts';
import type { GatewayOptions } from '../options.ts';
import { type Database, inMemory, openDatabase } from './db.ts';
import { openCommitJournal, replayJournal } from './journal.ts';
import { createKeyStore } from './keys.ts';
import { migrate } from './migrations.ts';
import { createLeaseStore } from './misc.ts';

export type OpenGatewayDatabaseParameters = Omit<
  GatewayOptions['database'],
  'journal' | 'commitDelayMs' | 'vacuumIntervalMs'
> & {
  /** How long an API key is remembered after a lookup (the gateway's `keys.cacheMs`; default 5 s). */
  keyCacheMs?: number | undefined;
};

/**
 * The gateway's database for another process that serves from it: the standalone network indexer
 * (`aipg indexer start`), whose read API also reads the gateway's jobs, receipts and API keys. Opened and
 * migrated as the gateway does (a no-op when the gateway got there first), with its leases (replicas on one
 * PostgreSQL: one follows the chain) and the API's payer check of API keys.
 *
 * Embedded PGlite is one process's: a PGlite directory may only be opened where no gateway holds it. Beside a
 * running gateway, both must use one PostgreSQL server (`url`). A directory a killed gateway left has its
 * commit journal committed first, as the gateway's next start would (`journalReplayed`): what it answered
 * is read as committed, not as still running.
 */
export async function openGatewayDatabase(p: OpenGatewayDatabaseParameters): Promise<{
  db: Database;
  leases: ReturnType<typeof createLeaseStore>;
  authenticate: PayerAuthenticator;
  /** Migrations this call applied (none when the gateway's schema was current). */
  migrationsApplied: number[];
  /** Commits a killed gateway had journaled, committed by this call (embedded PGlite on disk). */
  journalReplayed: { entries: number; committedNow: number };
  close(): Promise<void>;
}> {
  const db = await openDatabase(p);
  try {
    const migrationsApplied = await migrate(db);
    let journalReplayed = { entries: 0, committedNow: 0 };
    if (!p.url && !inMemory(p.dir)) {
      const journal = openCommitJournal(`${p.dir}-journal`);
      try {
        journalReplayed = await replayJournal(db, journal);
      } finally {
        journal.close();
      }
    }
    const keys = createKeyResolver({ keys: createKeyStore(db), cacheMs: p.keyCacheMs ?? 5_000 });
    return {
      db,
      leases: createLeaseStore(db),
      authenticate: apiKeyAuthenticator(keys),
      migrationsApplied,
      journalReplayed,
      close: () => db.close(),
    };
  } catch (error) {
    await db.close();
    throw error;
  }
}
