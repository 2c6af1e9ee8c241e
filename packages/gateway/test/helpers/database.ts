import { type Database, openDatabase } from '../../src/storage/db.ts';
import { migrate } from '../../src/storage/migrations.ts';

/** A fresh gateway database (its migrations applied): in memory, or in `dir` to test restarts. */
export async function openGatewayDatabase(dir = 'memory://'): Promise<Database> {
  const db = await openDatabase({ url: undefined, dir, schema: 'public', poolSize: 1 });
  await migrate(db);
  return db;
}

export type { Database };
