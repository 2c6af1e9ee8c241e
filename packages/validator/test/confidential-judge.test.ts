/**
 * Judging confidential receipts (judge/confidential.ts) through the production verifier, with only the
 * trust anchors injected (a simulated TEE's root): an honest attested worker passes; a receipt signed
 * under evidence that does not verify here — another root, a debug TD, stale at the receipt's time, or
 * binding another signing key — fails; evidence the gateway cannot match to the receipt is its fault.
 */
import {
  confidentialRequestHash,
  type Receipt,
  sealedRequestHash,
  type TeeEvidence,
  teeEvidenceDigest,
} from '@aipg/core';
import { generateTeeKeyPair, SimulatedTee, type TeeKeyPair } from '@aipg/tee';
import { type Hex, keccak256, toBytes, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { beforeAll, describe, expect, test } from 'vitest';
import { judgeConfidential } from '../src/judge/confidential.ts';

const signer = privateKeyToAccount(keccak256(toBytes('confidential judge test operator')));
const other = privateKeyToAccount(keccak256(toBytes('another operator')));
const sealedHash = sealedRequestHash(new Uint8Array(32).fill(1), new Uint8Array(64).fill(2));
const nonce = keccak256(toBytes('a gateway challenge')) as Hex;

let tee: SimulatedTee;
let keys: TeeKeyPair;
let now: number;

beforeAll(async () => {
  now = Math.floor(Date.now() / 1000);
  tee = await SimulatedTee.create({ now });
  keys = await generateTeeKeyPair();
});

function receiptFor(evidence: TeeEvidence, completedAt = now + 60): Receipt {
  return {
    jobId: keccak256(toBytes('job')),
    gateway: other.address,
    payer: other.address,
    worker: signer.address,
    modelId: keccak256(toBytes('model')),
    requestHash: confidentialRequestHash(teeEvidenceDigest(evidence), sealedHash),
    outputHash: keccak256(toBytes('sealed chunks')),
    inputUnits: 10n,
    outputUnits: 5n,
    fee: 123n,
    completedAt: BigInt(completedAt),
    confidential: true,
    seq: 1n,
  };
}

async function judge(
  evidence: TeeEvidence,
  opts: { receipt?: Receipt; served?: unknown; signedBy?: Hex; anchors?: SimulatedTee['anchors'] } = {},
) {
  const receipt = opts.receipt ?? receiptFor(evidence);
  return judgeConfidential({
    receipt,
    signer: opts.signedBy ?? signer.address,
    attestation: teeEvidenceDigest(evidence),
    sealedRequestHash: sealedHash,
    evidence: opts.served === undefined ? evidence : opts.served,
    anchors: opts.anchors ?? tee.anchors,
  });
}

const attest = (extra: Partial<Parameters<SimulatedTee['attest']>[0]> = {}) =>
  tee.attest({ hpkePublicKey: keys.publicKey, signer: signer.address, nonce, now, ...extra });

describe('confidential receipts', () => {
  test('an attested worker signing under its own valid evidence passes', async () => {
    const v = await judge(await attest());
    expect(v.verdict).toBe('pass');
    expect(v.evidenceHash).toMatch(/^0x[0-9a-f]{64}$/);
  });

  test('evidence under a root the validator does not trust fails', async () => {
    const foreign = await SimulatedTee.create({ now });
    const e = await foreign.attest({ hpkePublicKey: keys.publicKey, signer: signer.address, nonce, now });
    const v = await judge(e);
    expect(v.verdict).toBe('fail');
    expect(v.reasons[0]!.code).toBe('ATTESTATION_QUOTE_INVALID');
  });

  test('a debug TD fails', async () => {
    const v = await judge(await attest({ debug: true }));
    expect(v.verdict).toBe('fail');
    expect(v.reasons[0]!.code).toBe('ATTESTATION_DEBUG');
  });

  test('evidence stale at the time the job completed fails', async () => {
    const e = await attest();
    const v = await judge(e, { receipt: receiptFor(e, now + 3 * 3_600) });
    expect(v.verdict).toBe('fail');
    expect(v.reasons[0]!.code).toBe('ATTESTATION_STALE');
  });

  test('a receipt signed by a key the evidence does not bind fails', async () => {
    const v = await judge(await attest(), { signedBy: other.address });
    expect(v.verdict).toBe('fail');
    expect(v.reasons[0]!.code).toBe('ATTESTATION_SIGNER');
  });

  test('evidence whose report data does not bind its key fails (a swapped HPKE key)', async () => {
    const e = await attest();
    const swapped = { ...e, hpkePublicKey: (await generateTeeKeyPair()).publicKey };
    const v = await judge(swapped);
    expect(v.verdict).toBe('fail');
    expect(v.reasons[0]!.code).toBe('ATTESTATION_REPORT_DATA');
  });

  test('a gateway that serves other evidence, none, or another sealed request is at fault: abstain', async () => {
    const e = await attest();
    const another = await attest({ nonce: toHex(toBytes('another nonce'), { size: 32 }) });
    expect((await judge(e, { served: another })).verdict).toBe('abstain');
    expect((await judge(e, { served: null })).verdict).toBe('abstain');
    const v = await judgeConfidential({
      receipt: receiptFor(e),
      signer: signer.address,
      attestation: teeEvidenceDigest(e),
      sealedRequestHash: keccak256(toBytes('not what was relayed')),
      evidence: e,
      anchors: tee.anchors,
    });
    expect(v.verdict).toBe('abstain');
    expect(v.reasons[0]!.code).toBe('CONFIDENTIAL_REQUEST_HASH');
  });
});
