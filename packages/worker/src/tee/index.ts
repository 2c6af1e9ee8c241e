/**
 * The worker's side of the confidential tier (docs/confidential.md): an HPKE key pair generated in the
 * enclave at start, and evidence binding it, with the operator key that signs receipts, to each nonce a
 * verifier sends. Production evidence comes from the TEE (a TDX quote through the guest's quote interface,
 * NVIDIA evidence through NRAS); this process can only produce it through a `SimulatedTee` (the devnet's
 * and the tests'), whose evidence verifies under that simulation's own root and nowhere else.
 */
import { type TeeEvidence, teeEvidenceDigest } from '@aipg/core';
import { generateTeeKeyPair, SimulatedTee, type TeeKeyPair } from '@aipg/tee';
import type { Address, Hex } from 'viem';

export type WorkerTee = {
  readonly keyPair: TeeKeyPair;
  readonly simulated: boolean;
  /** Evidence made for `nonce`, binding this key pair and `signer`. */
  attest(nonce: Hex): Promise<TeeEvidence>;
  /** Whether `digest` names evidence this worker made (and so binds its key): receipts commit only to those. */
  knows(digest: Hex): boolean;
};

/** How many evidence digests are remembered (each challenge makes one; the oldest are forgotten). */
const REMEMBERED = 4_096;

/** A worker TEE backed by a simulated TDX + NVIDIA root (serialized `SimulatedTee`): devnet and tests only. */
export async function createSimulatedWorkerTee(serializedRoot: string, signer: Address): Promise<WorkerTee> {
  const sim = await SimulatedTee.deserialize(serializedRoot);
  const keyPair = await generateTeeKeyPair();
  const digests = new Set<string>();
  return {
    keyPair,
    simulated: true,
    async attest(nonce) {
      const evidence = await sim.attest({ hpkePublicKey: keyPair.publicKey, signer, nonce });
      digests.add(teeEvidenceDigest(evidence).toLowerCase());
      if (digests.size > REMEMBERED) digests.delete(digests.values().next().value as string);
      return evidence;
    },
    knows: (digest) => digests.has(digest.toLowerCase()),
  };
}
