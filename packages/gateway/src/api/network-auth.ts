import { NetworkError, type PayerAuthenticator } from '@aipg/indexer';
import { hashApiKey, looksLikeApiKey } from '../billing/keys.ts';
import type { Sql } from '../storage/index.ts';
import { createKeyStore } from '../storage/keys.ts';

/**
 * Bearer keys checked against the gateway's `api_keys` table (the same rule as the API's `auth`), for
 * the network API's job activity of a payer (`/v1/network/activity?kind=job&address=…`).
 */
export function apiKeyAuthenticator(db: Sql): PayerAuthenticator {
  const keys = createKeyStore(db);
  return async (authorization) => {
    const token = authorization?.match(/^Bearer\s+(\S+)\s*$/i)?.[1] ?? (authorization || undefined);
    if (!token) {
      throw new NetworkError(
        'missing_api_key',
        'job activity by payer address is private: send that payer\'s key as "Authorization: Bearer aipg-…"',
      );
    }
    const record = looksLikeApiKey(token) ? await keys.findByHash(hashApiKey(token)) : undefined;
    if (!record) throw new NetworkError('invalid_api_key', 'invalid or revoked API key');
    return record.payer;
  };
}
