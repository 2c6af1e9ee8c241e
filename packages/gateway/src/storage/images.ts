import type { ImageFormat } from '@aipg/core';
import type { Hex } from 'viem';
import type { Database } from './db.ts';

/**
 * Delivered images, content-addressed by `keccak256(bytes)` (what receipts commit to), kept until they
 * expire: `response_format: url` answers a link to them, and a client that lost an answer can fetch
 * them again. Written before the job's receipt is committed, so a billed job never lacks its images.
 */
export function createImageStore(db: Database) {
  return {
    async put(
      images: readonly { hash: Hex; format: ImageFormat; bytes: Uint8Array }[],
      jobId: string,
      expiresAt: Date,
    ): Promise<void> {
      for (const i of images) {
        await db.query(
          `INSERT INTO images (hash, format, bytes, job_id, expires_at) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (hash) DO UPDATE SET expires_at = GREATEST(images.expires_at, EXCLUDED.expires_at)`,
          [i.hash.toLowerCase(), i.format, i.bytes, jobId, expiresAt],
        );
      }
    },
    /** An image's committed latents (float32 LE, `steps + 1`), kept for validators until `expiresAt`. */
    async putTrajectory(jobId: string, image: number, latents: Uint8Array, expiresAt: Date): Promise<void> {
      await db.query(
        `INSERT INTO trajectories (job_id, image, latents, expires_at) VALUES ($1, $2, $3, $4)
         ON CONFLICT (job_id, image) DO UPDATE SET latents = EXCLUDED.latents, expires_at = EXCLUDED.expires_at`,
        [jobId, image, latents, expiresAt],
      );
    },
    async getTrajectory(jobId: string, image: number): Promise<Uint8Array | undefined> {
      const rows = await db.query<{ latents: Uint8Array }>(
        'SELECT latents FROM trajectories WHERE job_id = $1 AND image = $2 AND expires_at > now()',
        [jobId, image],
      );
      return rows[0]?.latents;
    },
    /** The image with this hash, unless it expired. */
    async get(
      hash: string,
    ): Promise<{ format: ImageFormat; bytes: Uint8Array; expiresAt: Date } | undefined> {
      const rows = await db.query<{ format: ImageFormat; bytes: Uint8Array; expires_at: string }>(
        'SELECT format, bytes, expires_at FROM images WHERE hash = $1 AND expires_at > now()',
        [hash.toLowerCase()],
      );
      const r = rows[0];
      return r && { format: r.format, bytes: r.bytes, expiresAt: new Date(r.expires_at) };
    },
    /** Deletes expired images; returns how many. */
    async deleteExpired(): Promise<number> {
      const rows = await db.query('DELETE FROM images WHERE expires_at <= now() RETURNING hash');
      const t = await db.query('DELETE FROM trajectories WHERE expires_at <= now() RETURNING job_id');
      return rows.length + t.length;
    },
  };
}

export type ImageStore = ReturnType<typeof createImageStore>;
