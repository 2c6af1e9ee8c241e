import type { Address } from 'viem';
import type { Sql } from './db.ts';

export type ApiKeyRecord = {
  id: string;
  payer: Address;
  name: string | null;
  createdAt: Date;
  revokedAt: Date | null;
  lastUsedAt: Date | null;
};

type KeyRow = {
  id: string;
  payer: string;
  name: string | null;
  created_at: Date;
  revoked_at: Date | null;
  last_used_at: Date | null;
};

const COLUMNS = 'id, payer, name, created_at, revoked_at, last_used_at';

function toRecord(r: KeyRow): ApiKeyRecord {
  return {
    id: r.id,
    payer: r.payer as Address,
    name: r.name,
    createdAt: new Date(r.created_at),
    revokedAt: r.revoked_at ? new Date(r.revoked_at) : null,
    lastUsedAt: r.last_used_at ? new Date(r.last_used_at) : null,
  };
}

export function createKeyStore(db: Sql) {
  return {
    /** Stores a new key (its hash only). Returns false when the payer already used `nonce`. */
    async insert(k: {
      id: string;
      keyHash: string;
      payer: Address;
      name: string | null;
      nonce: string;
      message: string;
      signature: string;
    }): Promise<boolean> {
      const rows = await db.query(
        `INSERT INTO api_keys (id, key_hash, payer, name, nonce, message, signature)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING RETURNING id`,
        [k.id, k.keyHash, k.payer, k.name, k.nonce, k.message, k.signature],
      );
      return rows.length === 1;
    },
    async findByNonce(
      payer: Address,
      nonce: string,
    ): Promise<(ApiKeyRecord & { message: string }) | undefined> {
      const rows = await db.query<KeyRow & { message: string }>(
        `SELECT ${COLUMNS}, message FROM api_keys WHERE payer = $1 AND nonce = $2`,
        [payer, nonce],
      );
      const r = rows[0];
      return r ? { ...toRecord(r), message: r.message } : undefined;
    },
    /** The live (not revoked) key with this hash. */
    async findByHash(keyHash: string): Promise<ApiKeyRecord | undefined> {
      const rows = await db.query<KeyRow>(
        `SELECT ${COLUMNS} FROM api_keys WHERE key_hash = $1 AND revoked_at IS NULL`,
        [keyHash],
      );
      return rows[0] ? toRecord(rows[0]) : undefined;
    },
    async listByPayer(payer: Address): Promise<ApiKeyRecord[]> {
      const rows = await db.query<KeyRow>(
        `SELECT ${COLUMNS} FROM api_keys WHERE payer = $1 ORDER BY created_at`,
        [payer],
      );
      return rows.map(toRecord);
    },
    async revoke(id: string, payer: Address): Promise<boolean> {
      const rows = await db.query(
        'UPDATE api_keys SET revoked_at = now() WHERE id = $1 AND payer = $2 AND revoked_at IS NULL RETURNING id',
        [id, payer],
      );
      return rows.length === 1;
    },
    async touch(id: string): Promise<void> {
      await db.query('UPDATE api_keys SET last_used_at = now() WHERE id = $1', [id]);
    },
  };
}

export type KeyStore = ReturnType<typeof createKeyStore>;
