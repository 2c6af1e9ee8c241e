import { X509Certificate } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type TeeEvidence, teeEvidenceDigest, teeReportData } from '@aipg/core';
import dcap from '@phala/dcap-qvl';
import { decodeJwt, decodeProtectedHeader, generateKeyPair, SignJWT } from 'jose';
import { type Address, type Hex, toHex } from 'viem';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  AttestationError,
  type AttestationErrorCode,
  generateTeeKeyPair,
  PRODUCTION_ANCHORS,
  SIMULATED_MR_TD,
  SIMULATED_RTMRS,
  SimulatedTee,
  type TeeKeyPair,
  verifyEvidence,
} from '../src/index.ts';
import { QUOTE_REPORT_DATA_OFFSET } from '../src/quote.ts';

const NOW = 1_765_000_000;
const DAY = 86_400;
const SIGNER: Address = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const OTHER_SIGNER: Address = '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC';
const NONCE: Hex = `0x${'a1'.repeat(32)}`;
const OTHER_NONCE: Hex = `0x${'b2'.repeat(32)}`;

let tee: SimulatedTee;
let other: SimulatedTee;
let key: TeeKeyPair;
let otherKey: TeeKeyPair;
let valid: TeeEvidence;

async function refused(promise: Promise<unknown>, code: AttestationErrorCode): Promise<AttestationError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(AttestationError);
  expect((error as AttestationError).code).toBe(code);
  return error as AttestationError;
}

const attest = (p: Partial<Parameters<SimulatedTee['attest']>[0]> = {}) =>
  tee.attest({ hpkePublicKey: key.publicKey, signer: SIGNER, nonce: NONCE, now: NOW, ...p });

beforeAll(async () => {
  [tee, other, key, otherKey] = await Promise.all([
    SimulatedTee.create({ now: NOW }),
    SimulatedTee.create({ now: NOW }),
    generateTeeKeyPair(),
    generateTeeKeyPair(),
  ]);
  valid = await attest();
});

describe('verifyEvidence', () => {
  it('accepts a simulated worker under its anchors', async () => {
    const started = performance.now();
    const v = await verifyEvidence(valid, { anchors: tee.anchors, expectedNonce: NONCE, now: NOW });
    const elapsed = performance.now() - started;
    expect(v).toMatchObject({
      digest: teeEvidenceDigest(valid),
      signer: SIGNER,
      hpkePublicKey: key.publicKey,
      nonce: NONCE,
      tcbStatus: 'UpToDate',
      advisoryIds: [],
      debug: false,
      issuedAt: NOW,
      expiresAt: NOW + 3600,
      simulated: true,
    });
    expect(v.measurements).toEqual({
      mrTd: SIMULATED_MR_TD,
      rtmr0: SIMULATED_RTMRS[0],
      rtmr1: SIMULATED_RTMRS[1],
      rtmr2: SIMULATED_RTMRS[2],
      rtmr3: SIMULATED_RTMRS[3],
    });
    expect(elapsed).toBeLessThan(2000);
  });

  it('reports expiresAt as the earliest of EAT exp, maxAge and the collateral', async () => {
    const v = await verifyEvidence(valid, { anchors: tee.anchors, now: NOW, policy: { maxAgeSeconds: 600 } });
    expect(v.expiresAt).toBe(NOW + 600);
    const shortLived = await SimulatedTee.create({ now: NOW, validDays: 1 + 1 / 48 }); // collateral ends NOW + 30 min
    const e = await shortLived.attest({
      hpkePublicKey: key.publicKey,
      signer: SIGNER,
      nonce: NONCE,
      now: NOW,
    });
    expect((await verifyEvidence(e, { anchors: shortLived.anchors, now: NOW })).expiresAt).toBe(NOW + 1800);
  });

  it('refuses malformed input', async () => {
    await refused(verifyEvidence(null, { anchors: tee.anchors, now: NOW }), 'malformed');
    await refused(verifyEvidence({}, { anchors: tee.anchors, now: NOW }), 'malformed');
    await refused(
      verifyEvidence({ ...valid, platform: 'sev' }, { anchors: tee.anchors, now: NOW }),
      'malformed',
    );
    await refused(
      verifyEvidence({ ...valid, tdx: { ...valid.tdx, quote: '0xzz' } }, { anchors: tee.anchors, now: NOW }),
      'malformed',
    );
    const { tcb_info: _dropped, ...collateral } = valid.tdx.collateral;
    await refused(
      verifyEvidence({ ...valid, tdx: { ...valid.tdx, collateral } }, { anchors: tee.anchors, now: NOW }),
      'malformed',
    );
    // Well-formed JSON, garbage quote: DCAP refuses it.
    await refused(
      verifyEvidence(
        { ...valid, tdx: { ...valid.tdx, quote: '0x0400' } },
        { anchors: tee.anchors, now: NOW },
      ),
      'quote_invalid',
    );
  });

  it('refuses a quote whose REPORTDATA was tampered with (signature) or binds something else', async () => {
    const quote = Buffer.from(valid.tdx.quote.slice(2), 'hex');
    quote[QUOTE_REPORT_DATA_OFFSET + 5]! ^= 0x01;
    const tampered = { ...valid, tdx: { ...valid.tdx, quote: toHex(quote) } };
    const error = await refused(
      verifyEvidence(tampered, { anchors: tee.anchors, now: NOW }),
      'quote_invalid',
    );
    expect(error.message).toMatch(/signature/);

    const elsewhere = await attest({
      reportDataOverride: teeReportData({ hpkePublicKey: otherKey.publicKey, signer: SIGNER, nonce: NONCE }),
    });
    await refused(verifyEvidence(elsewhere, { anchors: tee.anchors, now: NOW }), 'report_data');
  });

  it('refuses a key or signer the quote does not bind', async () => {
    await refused(
      verifyEvidence({ ...valid, hpkePublicKey: otherKey.publicKey }, { anchors: tee.anchors, now: NOW }),
      'report_data',
    );
    await refused(
      verifyEvidence({ ...valid, signer: OTHER_SIGNER }, { anchors: tee.anchors, now: NOW }),
      'report_data',
    );
  });

  it('refuses a TD in debug mode unless the policy allows it', async () => {
    const debug = await attest({ debug: true });
    await refused(verifyEvidence(debug, { anchors: tee.anchors, now: NOW }), 'debug');
    const v = await verifyEvidence(debug, { anchors: tee.anchors, now: NOW, policy: { allowDebug: true } });
    expect(v.debug).toBe(true);
    expect(v.tcbStatus).toBe('UpToDate');
  });

  it('refuses expired collateral', async () => {
    const error = await refused(
      verifyEvidence(valid, { anchors: tee.anchors, now: NOW + 40 * DAY }),
      'collateral_expired',
    );
    expect(error.message).toMatch(/expired/);
    await refused(verifyEvidence(valid, { anchors: tee.anchors, now: NOW - 2 * DAY }), 'collateral_expired');
  });

  it('refuses evidence under another root', async () => {
    await refused(verifyEvidence(valid, { anchors: other.anchors, now: NOW }), 'quote_invalid');
    await refused(verifyEvidence(valid, { anchors: PRODUCTION_ANCHORS, now: NOW }), 'quote_invalid');
  });

  it('refuses evidence for another nonce, and stale GPU evidence', async () => {
    await refused(
      verifyEvidence(valid, { anchors: tee.anchors, expectedNonce: OTHER_NONCE, now: NOW }),
      'nonce',
    );
    const replayed = await attest({ nonce: OTHER_NONCE });
    await refused(
      verifyEvidence(replayed, { anchors: tee.anchors, expectedNonce: NONCE, now: NOW }),
      'nonce',
    );

    await refused(verifyEvidence(valid, { anchors: tee.anchors, now: NOW + 3601 }), 'stale'); // past the EAT's exp
    const error = await refused(
      verifyEvidence(valid, { anchors: tee.anchors, now: NOW + 120, policy: { maxAgeSeconds: 60 } }),
      'stale',
    );
    expect(error.message).toMatch(/120 s old/);
    await refused(
      verifyEvidence(await attest({ now: NOW + 600 }), { anchors: tee.anchors, now: NOW }),
      'stale',
    );
  });

  it('applies the TCB status policy', async () => {
    const outOfDate = await attest({ tcbStatus: 'OutOfDate' });
    await refused(verifyEvidence(outOfDate, { anchors: tee.anchors, now: NOW }), 'tcb_status');
    const v = await verifyEvidence(outOfDate, {
      anchors: tee.anchors,
      now: NOW,
      policy: { tcbStatuses: ['UpToDate', 'OutOfDate'] },
    });
    expect(v.tcbStatus).toBe('OutOfDate');
    expect(v.advisoryIds).toEqual(['AIPG-SIMULATED-SA-00001']);
    const revoked = await attest({ tcbStatus: 'Revoked' });
    await refused(
      verifyEvidence(revoked, { anchors: tee.anchors, now: NOW, policy: { tcbStatuses: ['Revoked'] } }),
      'tcb_status',
    );
  });

  it('applies the measurement pin', async () => {
    const pin = { mrTd: SIMULATED_MR_TD, rtmr3: SIMULATED_RTMRS[3] };
    await verifyEvidence(valid, { anchors: tee.anchors, now: NOW, policy: { measurements: [pin] } });
    await refused(
      verifyEvidence(valid, {
        anchors: tee.anchors,
        now: NOW,
        policy: { measurements: [{ ...pin, rtmr3: SIMULATED_RTMRS[0] }] },
      }),
      'measurement',
    );
    const otherTd = await attest({ mrTd: `0x${'cd'.repeat(48)}` });
    await refused(
      verifyEvidence(otherTd, { anchors: tee.anchors, now: NOW, policy: { measurements: [pin] } }),
      'measurement',
    );
  });

  it('refuses NVIDIA evidence signed by another key, under another issuer, or with swapped tokens', async () => {
    const foreign = await other.attest({
      hpkePublicKey: key.publicKey,
      signer: SIGNER,
      nonce: NONCE,
      now: NOW,
    });
    await refused(
      verifyEvidence({ ...valid, nvidia: foreign.nvidia }, { anchors: tee.anchors, now: NOW }),
      'gpu_token',
    );
    await refused(
      verifyEvidence(valid, {
        anchors: { ...tee.anchors, nvidiaIssuer: 'https://nras.attestation.nvidia.com' },
        now: NOW,
      }),
      'gpu_token',
    );
    // The GPU-0 token of another (valid) EAT: signed by the right key, but not the one the overall token commits to.
    const second = await attest();
    const [overall] = JSON.parse(valid.nvidia.eat) as [unknown, Record<string, string>];
    const [, devices] = JSON.parse(second.nvidia.eat) as [unknown, Record<string, string>];
    const spliced = JSON.stringify([overall, devices]);
    const error = await refused(
      verifyEvidence({ ...valid, nvidia: { eat: spliced } }, { anchors: tee.anchors, now: NOW }),
      'gpu_token',
    );
    expect(error.message).toMatch(/commits/);
    await refused(
      verifyEvidence({ ...valid, nvidia: { eat: 'not json' } }, { anchors: tee.anchors, now: NOW }),
      'gpu_token',
    );

    // Same kid as the anchors' key, another key.
    const [[, overallToken], gpuTokens] = JSON.parse(valid.nvidia.eat) as [
      [string, string],
      Record<string, string>,
    ];
    const forger = await generateKeyPair('ES384');
    const forged = await new SignJWT(decodeJwt(overallToken))
      .setProtectedHeader(decodeProtectedHeader(overallToken) as { alg: string })
      .sign(forger.privateKey);
    const forgedError = await refused(
      verifyEvidence(
        { ...valid, nvidia: { eat: JSON.stringify([['JWT', forged], gpuTokens]) } },
        { anchors: tee.anchors, now: NOW },
      ),
      'gpu_token',
    );
    expect(forgedError.message).toMatch(/signature/);
  });

  it('refuses a failed GPU attestation and an EAT for another REPORTDATA', async () => {
    await refused(
      verifyEvidence(await attest({ gpuResult: false }), { anchors: tee.anchors, now: NOW }),
      'gpu_result',
    );
    await refused(
      verifyEvidence(await attest({ gpuNonceOverride: 'ab'.repeat(32) }), { anchors: tee.anchors, now: NOW }),
      'gpu_nonce',
    );
  });

  it('fetches the NVIDIA key set from a JWKS URL (the production path)', async () => {
    const server = createServer((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(tee.anchors.nvidiaJwks));
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    try {
      const { port } = server.address() as AddressInfo;
      const anchors = {
        ...tee.anchors,
        nvidiaJwks: new URL(`http://127.0.0.1:${port}/.well-known/jwks.json`),
      };
      const v = await verifyEvidence(valid, { anchors, now: NOW });
      expect(v.tcbStatus).toBe('UpToDate');
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it("embeds Intel's SGX Root CA as the production root", () => {
    expect(Buffer.from(PRODUCTION_ANCHORS.intelRootCaDer).equals(dcap.constants.TRUSTED_ROOT_CA_DER)).toBe(
      true,
    );
    const cert = new X509Certificate(Buffer.from(PRODUCTION_ANCHORS.intelRootCaDer));
    expect(cert.subject).toContain('CN=Intel SGX Root CA');
    expect(cert.fingerprint256).toBe(
      '44:A0:19:6B:2B:99:F8:89:B8:E1:49:E9:5B:80:7A:35:0E:74:24:96:43:99:E8:85:A7:CB:B8:CC:FA:B6:74:D3',
    );
    expect(PRODUCTION_ANCHORS.nvidiaJwks).toBeInstanceOf(URL);
    expect(PRODUCTION_ANCHORS.nvidiaIssuer).toBe('https://nras.attestation.nvidia.com');
  });
});
