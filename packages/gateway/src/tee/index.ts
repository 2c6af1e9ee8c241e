/**
 * Workers in TEEs (docs/confidential.md): the gateway verifies each one's evidence when it logs in (made
 * for the login challenge's nonce) and again every `tee.recheckMs` (made for a fresh nonce), under the trust
 * anchors it is configured with, and only a worker whose latest evidence verified and has not expired gets
 * confidential jobs. Every evidence that verifies is stored by digest for validators.
 */
import { randomBytes } from 'node:crypto';
import type { TeeEvidence } from '@aipg/core';
import { AttestationError, type VerifiedEvidence, verifyEvidence } from '@aipg/tee';
import type { Hex } from 'viem';
import type { Common } from '../common.ts';
import type { Hub, WorkerSession } from '../hub/index.ts';
import type { Storage } from '../storage/index.ts';

export type Tee = ReturnType<typeof createTee>;

/** A worker's attestation as `/v1/attestation` lists it. */
export type AttestationView = {
  worker: Hex;
  signer: Hex;
  models: string[];
  status: 'valid' | 'expired' | 'invalid' | 'pending';
  tcb_status: string | null;
  simulated: boolean;
  verified_at: number | null;
  expires_at: number | null;
  digest: Hex | null;
  error: string | null;
  capacity: Record<string, number>;
  evidence?: TeeEvidence | undefined;
};

const nowSec = () => Math.floor(Date.now() / 1000);

export function createTee({ common, storage, hub }: { common: Common; storage: Storage; hub: Hub }) {
  const { options, logger } = common;
  const { anchors, recheckMs, attestTimeoutMs, maxAgeSec } = options.tee;

  /**
   * Verifies `evidence` for `worker`, made for `nonce`: under the gateway's anchors, and bound to the key
   * that signs the worker's receipts (its operator). Stored by digest when it verifies.
   */
  async function check(worker: WorkerSession, evidence: TeeEvidence, nonce: Hex): Promise<VerifiedEvidence> {
    const verified = await verifyEvidence(evidence, {
      anchors,
      policy: { maxAgeSeconds: maxAgeSec },
      expectedNonce: nonce,
    });
    if (verified.signer.toLowerCase() !== worker.operator.toLowerCase()) {
      throw new AttestationError(
        'report_data',
        `the evidence binds signer ${verified.signer}, not this worker's operator ${worker.operator}`,
      );
    }
    const tee = worker.tee;
    if (tee?.verified && tee.verified.hpkePublicKey !== verified.hpkePublicKey) {
      // A new key: what clients sealed to the old one can no longer be opened; forget its digests.
      tee.digests.clear();
    }
    await storage.attestations.put({
      digest: verified.digest,
      worker: worker.owner,
      signer: verified.signer,
      evidence,
      tcbStatus: verified.tcbStatus,
      simulated: verified.simulated,
      expiresAt: new Date(verified.expiresAt * 1000),
    });
    if (tee) {
      tee.status = 'valid';
      tee.evidence = evidence;
      tee.verified = verified;
      tee.error = undefined;
      tee.digests.set(verified.digest.toLowerCase() as Hex, verified.expiresAt);
    }
    return verified;
  }

  function refuse(worker: WorkerSession, error: unknown) {
    const reason =
      error instanceof AttestationError
        ? `${error.code}: ${error.message}`
        : `unverifiable: ${error instanceof Error ? error.message : String(error)}`;
    if (worker.tee) {
      worker.tee.status = 'invalid';
      worker.tee.error = reason.slice(0, 300);
    }
    logger.warn({ msg: 'worker attestation refused', worker: worker.owner, reason: reason.slice(0, 300) });
  }

  /** Asks `worker` for evidence made for `nonce` and verifies it; undefined (and the worker refused) when it fails. */
  async function challenge(
    worker: WorkerSession,
    nonce: Hex,
  ): Promise<{ evidence: TeeEvidence; verified: VerifiedEvidence } | undefined> {
    const evidence = await hub.attest(worker, nonce, attestTimeoutMs);
    if (evidence && worker.tee) worker.tee.simulated = evidence.simulated;
    if (!evidence) {
      refuse(worker, new AttestationError('stale', 'the worker did not answer the attestation challenge'));
      return undefined;
    }
    try {
      return { evidence, verified: await check(worker, evidence, nonce) };
    } catch (error) {
      refuse(worker, error);
      return undefined;
    }
  }

  hub.onLogin((worker) => {
    const login = worker.tee?.login;
    if (!login) return;
    worker.tee!.login = undefined;
    check(worker, login.evidence, login.nonce).then(
      (v) =>
        logger.info({
          msg: 'worker attested',
          worker: worker.owner,
          tcb_status: v.tcbStatus,
          simulated: v.simulated,
          expires_at: v.expiresAt,
        }),
      (error: unknown) => {
        refuse(worker, error);
      },
    );
  });

  const timer = setInterval(() => {
    for (const w of hub.workers()) {
      if (w.tee && w.tee.status !== 'pending')
        void challenge(w, `0x${randomBytes(32).toString('hex')}` as Hex);
    }
  }, recheckMs);
  timer.unref();

  /** Whether `worker` may take confidential jobs now: its latest evidence verified and is unexpired. */
  function attested(worker: WorkerSession): boolean {
    const t = worker.tee;
    return t?.status === 'valid' && t.verified !== undefined && t.verified.expiresAt > nowSec();
  }

  function view(worker: WorkerSession, withEvidence: boolean, modelId?: Hex): AttestationView {
    const t = worker.tee!;
    const expired = t.verified !== undefined && t.verified.expiresAt <= nowSec();
    // The tier runs chat: a worker's image models are not confidential capacity.
    const models = [...worker.models.entries()].filter(
      ([id, m]) => m.image === undefined && (!modelId || id === modelId),
    );
    return {
      worker: worker.owner,
      signer: worker.operator,
      models: models.map(([, m]) => m.name),
      status: t.status === 'valid' && expired ? 'expired' : t.status,
      tcb_status: t.verified?.tcbStatus ?? null,
      simulated: t.verified?.simulated ?? t.simulated,
      verified_at: t.verified ? t.verified.issuedAt : null,
      expires_at: t.verified?.expiresAt ?? null,
      digest: t.verified?.digest ?? null,
      error: t.error ?? null,
      capacity: Object.fromEntries(models.map(([, m]) => [m.name, m.maxConcurrency])),
      ...(withEvidence && t.evidence ? { evidence: t.evidence } : {}),
    };
  }

  return {
    attested,
    /**
     * Whether `digest` names evidence verified on `worker`'s current connection that has not expired: the
     * evidence a client sealed its request to must be one of those.
     */
    knows(worker: WorkerSession, digest: Hex): boolean {
      const exp = worker.tee?.digests.get(digest.toLowerCase() as Hex);
      return exp !== undefined && exp > nowSec() && attested(worker);
    },
    /** Workers in TEEs (serving `modelId`, when given), attested or not, for `/v1/attestation` and the dashboard. */
    list(opts: { modelId?: Hex | undefined; evidence: boolean }): AttestationView[] {
      return hub
        .workers()
        .filter((w) => w.tee && (!opts.modelId || w.models.has(opts.modelId)))
        .map((w) => view(w, opts.evidence, opts.modelId));
    },
    /**
     * Fresh evidence, made for a client's own `nonce`, from each attested worker serving `modelId`: verified
     * here too (and stored), so the client's request can name its digest. Workers that fail are left out.
     */
    async challengeFor(modelId: Hex, nonce: Hex, only?: Hex): Promise<AttestationView[]> {
      const workers = hub
        .workers()
        .filter((w) => w.models.has(modelId) && attested(w))
        .filter((w) => !only || w.owner.toLowerCase() === only.toLowerCase());
      const answers = await Promise.all(
        workers.map(async (w) => {
          const got = await challenge(w, nonce);
          if (!got) return undefined;
          const v: AttestationView = {
            ...view(w, false, modelId),
            digest: got.verified.digest,
            evidence: got.evidence,
          };
          return v;
        }),
      );
      return answers.filter((a) => a !== undefined);
    },
    stop() {
      clearInterval(timer);
    },
  };
}
