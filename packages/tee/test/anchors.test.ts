import type { Address, Hex } from 'viem';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  generateTeeKeyPair,
  PRODUCTION_ANCHORS,
  parseAnchors,
  SimulatedTee,
  serializeAnchors,
  verifyEvidence,
} from '../src/index.ts';

const NOW = 1_765_000_000;
const SIGNER: Address = '0x70997970C51812dc3A010C7d01b50e0d17dc79C8';
const NONCE: Hex = `0x${'a1'.repeat(32)}`;

let tee: SimulatedTee;

beforeAll(async () => {
  tee = await SimulatedTee.create({ now: NOW });
});

describe('trust anchors', () => {
  it('round trip through JSON (inline JWKS and URL)', () => {
    const simulated = parseAnchors(serializeAnchors(tee.anchors));
    expect(Buffer.from(simulated.intelRootCaDer).equals(Buffer.from(tee.anchors.intelRootCaDer))).toBe(true);
    expect(simulated.nvidiaJwks).toEqual(tee.anchors.nvidiaJwks);
    expect(simulated.nvidiaIssuer).toBe('https://nras.simulated.aipg.invalid');
    expect(serializeAnchors(tee.anchors)).not.toMatch(/"d":/); // public keys only

    const production = parseAnchors(serializeAnchors(PRODUCTION_ANCHORS));
    expect(production.nvidiaJwks).toBeInstanceOf(URL);
    expect(String(production.nvidiaJwks)).toBe('https://nras.attestation.nvidia.com/.well-known/jwks.json');
    expect(
      Buffer.from(production.intelRootCaDer).equals(Buffer.from(PRODUCTION_ANCHORS.intelRootCaDer)),
    ).toBe(true);
  });

  it('refuses bad input with a clear error', () => {
    expect(() => parseAnchors('{')).toThrow(/not JSON/);
    expect(() => parseAnchors('{}')).toThrow(/intelRootCa/);
    const good = JSON.parse(serializeAnchors(PRODUCTION_ANCHORS));
    expect(() =>
      parseAnchors(JSON.stringify({ ...good, nvidia: { jwksUrl: 'file:///etc/passwd' } })),
    ).toThrow(/nvidia/);
    expect(() => parseAnchors(JSON.stringify({ ...good, nvidia: { jwks: { keys: [] } } }))).toThrow(/nvidia/);
    expect(() => parseAnchors(JSON.stringify({ ...good, intelRootCa: 'AAAA' }))).toThrow(/certificate/);
  });
});

describe('SimulatedTee', () => {
  it('round trips through serialize/deserialize, keys included', async () => {
    const json = tee.serialize();
    expect(JSON.parse(json).keys.nvidia.d).toBeTypeOf('string');
    const copy = await SimulatedTee.deserialize(json);
    expect(serializeAnchors(copy.anchors)).toBe(serializeAnchors(tee.anchors));
    const key = await generateTeeKeyPair();
    const evidence = await copy.attest({
      hpkePublicKey: key.publicKey,
      signer: SIGNER,
      nonce: NONCE,
      now: NOW,
    });
    const v = await verifyEvidence(evidence, { anchors: tee.anchors, expectedNonce: NONCE, now: NOW });
    expect(v.tcbStatus).toBe('UpToDate');
    await expect(SimulatedTee.deserialize('{"kind":"other"}')).rejects.toThrow(/unknown format/);
  });
});
