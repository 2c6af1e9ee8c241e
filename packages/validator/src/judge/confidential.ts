/**
 * Judging a confidential receipt (docs/confidential.md): it is not re-run (nobody but the client can read
 * it); its worker answers for the attestation it signed under. The receipt's `requestHash` names the
 * evidence (its digest) and the sealed request; the gateway serves both. Then:
 *
 * - evidence that is missing, or does not hash to what the worker signed, is the gateway's doing: abstain;
 * - evidence that fails verification under this validator's own trust anchors at the receipt's time
 *   (wrong root, debug TD, TCB out of date, stale, GPU token invalid, key or signer not bound…), or that
 *   binds another signing key than the one that signed the receipt: FAIL. Only a worker in a valid TEE
 *   can sign a confidential receipt that passes, so marking an ordinary job confidential dodges nothing;
 * - otherwise PASS.
 */
import { confidentialRequestHash, type Receipt, teeEvidenceDigest, teeEvidenceSchema } from '@aipg/core';
import { AttestationError, type TeePolicy, type TrustAnchors, verifyEvidence } from '@aipg/tee';
import type { Address, Hex } from 'viem';
import { evidenceHash } from './evidence.ts';

export type ConfidentialJudgeInput = {
  receipt: Receipt;
  /** The address that signed the receipt (recovered from its signature). */
  signer: Address;
  attestation: Hex;
  sealedRequestHash: Hex;
  evidence: unknown;
  anchors: TrustAnchors;
  policy?: Partial<TeePolicy> | undefined;
};

export type ConfidentialVerdict = {
  verdict: 'pass' | 'fail' | 'abstain';
  /** Gateway faults (abstain) or the worker's (fail), as codes with a message. */
  reasons: { code: string; message: string }[];
  evidenceHash: Hex;
};

const verdictOf = (
  verdict: ConfidentialVerdict['verdict'],
  reasons: ConfidentialVerdict['reasons'],
  attestation: Hex,
): ConfidentialVerdict => ({
  verdict,
  reasons,
  evidenceHash: evidenceHash([{ kind: 'confidential', attestation, verdict }, ...reasons]),
});

export async function judgeConfidential(x: ConfidentialJudgeInput): Promise<ConfidentialVerdict> {
  const { receipt, attestation } = x;
  if (confidentialRequestHash(attestation, x.sealedRequestHash) !== receipt.requestHash.toLowerCase())
    return verdictOf(
      'abstain',
      [
        {
          code: 'CONFIDENTIAL_REQUEST_HASH',
          message: "the gateway's attestation and sealed request do not hash to the signed requestHash",
        },
      ],
      attestation,
    );
  const parsed = teeEvidenceSchema.safeParse(x.evidence);
  if (!parsed.success || teeEvidenceDigest(parsed.data) !== attestation.toLowerCase())
    return verdictOf(
      'abstain',
      [
        {
          code: 'ATTESTATION_MISSING',
          message: 'the gateway serves no evidence with the digest the receipt commits to',
        },
      ],
      attestation,
    );
  const evidence = parsed.data;
  try {
    await verifyEvidence(evidence, {
      anchors: x.anchors,
      policy: x.policy,
      // As it stood when the job completed: collateral valid then, GPU token fresh then.
      now: Number(receipt.completedAt),
    });
  } catch (error) {
    const code = error instanceof AttestationError ? error.code : 'unverifiable';
    return verdictOf(
      'fail',
      [
        {
          code: `ATTESTATION_${code.toUpperCase()}`,
          message: error instanceof Error ? error.message.slice(0, 300) : String(error),
        },
      ],
      attestation,
    );
  }
  if (evidence.signer.toLowerCase() !== x.signer.toLowerCase())
    return verdictOf(
      'fail',
      [
        {
          code: 'ATTESTATION_SIGNER',
          message: `the evidence binds signer ${evidence.signer}; the receipt was signed by ${x.signer}`,
        },
      ],
      attestation,
    );
  return verdictOf('pass', [], attestation);
}
