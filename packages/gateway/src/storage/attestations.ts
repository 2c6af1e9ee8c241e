import type { TeeEvidence } from '@aipg/core';
import type { Address, Hex } from 'viem';
import type { Database } from './db.ts';

export type StoredAttestation = {
  digest: Hex;
  worker: Address;
  signer: Address;
  evidence: TeeEvidence;
  tcbStatus: string;
  simulated: boolean;
  verifiedAt: Date;
  expiresAt: Date;
};

/**
 * Every TEE evidence the gateway verified, by digest: a confidential receipt commits to one, and a
 * validator auditing the receipt fetches it here (and verifies it under its own trust anchors).
 */
export function createAttestationStore(db: Database) {
  return {
    async put(a: Omit<StoredAttestation, 'verifiedAt'>): Promise<void> {
      await db.query(
        `INSERT INTO attestations (digest, worker, signer, evidence, tcb_status, simulated, expires_at)
         VALUES ($1, $2, $3, $4::jsonb, $5, $6, $7) ON CONFLICT (digest) DO NOTHING`,
        [
          a.digest.toLowerCase(),
          a.worker.toLowerCase(),
          a.signer.toLowerCase(),
          JSON.stringify(a.evidence),
          a.tcbStatus,
          a.simulated,
          a.expiresAt,
        ],
      );
    },
    async get(digest: string): Promise<StoredAttestation | undefined> {
      const rows = await db.query<Record<string, unknown>>('SELECT * FROM attestations WHERE digest = $1', [
        digest.toLowerCase(),
      ]);
      const r = rows[0];
      if (!r) return undefined;
      return {
        digest: r.digest as Hex,
        worker: r.worker as Address,
        signer: r.signer as Address,
        evidence: (typeof r.evidence === 'string' ? JSON.parse(r.evidence) : r.evidence) as TeeEvidence,
        tcbStatus: r.tcb_status as string,
        simulated: Boolean(r.simulated),
        verifiedAt: new Date(r.verified_at as string),
        expiresAt: new Date(r.expires_at as string),
      };
    },
  };
}

export type AttestationStore = ReturnType<typeof createAttestationStore>;
