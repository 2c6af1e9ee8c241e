import type { Address, Hex } from 'viem';
import { keccak256 } from 'viem';
import { hashTokenIds, receiptDomain } from './receipt.ts';

/**
 * What a worker signs when it scores another worker's job for a validator's cross-check
 * (docs/DESIGN.md §5): the score job, the audited job, who scored, what was scored and a hash of every
 * number it answered. Signed by the scorer's operator key as EIP-712 typed data under the receipts'
 * domain, so a scorer's answer is evidence: a lie (scores the model does not give) can be shown to
 * anyone holding the weights, against the key of a bond that can be slashed.
 *
 * `promptHash` and `outputHash` are `hashTokenIds` of the ids scored (not the receipt's `outputHash`,
 * which also commits to the finish reason).
 */
export type ScoreAttestation = {
  /** The `score` frame's `jobId` (fresh per score job). */
  scoreJobId: Hex;
  /** The job whose output was scored (the audited one). */
  auditedJobId: Hex;
  /** The scorer's bond owner. */
  worker: Address;
  modelId: Hex;
  promptHash: Hex;
  outputHash: Hex;
  topK: number;
  /** `hashScorePositions(positions)`. */
  positionsHash: Hex;
};

export const scoreTypes = {
  Score: [
    { name: 'scoreJobId', type: 'bytes32' },
    { name: 'auditedJobId', type: 'bytes32' },
    { name: 'worker', type: 'address' },
    { name: 'modelId', type: 'bytes32' },
    { name: 'promptHash', type: 'bytes32' },
    { name: 'outputHash', type: 'bytes32' },
    { name: 'topK', type: 'uint32' },
    { name: 'positionsHash', type: 'bytes32' },
  ],
} as const;

/** One scored position, as the `score-result` frame carries it. */
export type ScoredPositionLike = {
  tokenId: number;
  probability: number;
  rank: number;
  top: readonly { tokenId: number; probability: number }[];
};

/**
 * `keccak256` of the positions in a fixed binary layout: the count (uint32), then per position
 * `tokenId` (uint32), `rank` (uint32), `probability` (the IEEE-754 float64 bits), the count of `top`
 * (uint32) and per listed token its id (uint32) and probability (float64 bits); all big-endian.
 * float64 is what a JSON number is, and JSON carries it exactly (shortest round-trip decimal), so the
 * worker, the gateway and the validator hash the same bits; -0 is hashed as 0 (JSON writes it `0`).
 */
export function hashScorePositions(positions: readonly ScoredPositionLike[]): Hex {
  let size = 4;
  for (const p of positions) size += 20 + p.top.length * 12;
  const bytes = new Uint8Array(size);
  const view = new DataView(bytes.buffer);
  let o = 0;
  const u32 = (v: number, what: string) => {
    if (!Number.isInteger(v) || v < 0 || v > 0xffffffff) throw new RangeError(`invalid ${what} ${v}`);
    view.setUint32(o, v, false);
    o += 4;
  };
  const f64 = (v: number) => {
    if (!Number.isFinite(v)) throw new RangeError(`invalid probability ${v}`);
    view.setFloat64(o, v + 0, false); // -0 + 0 is +0
    o += 8;
  };
  u32(positions.length, 'position count');
  for (const p of positions) {
    u32(p.tokenId, 'token id');
    u32(p.rank, 'rank');
    f64(p.probability);
    u32(p.top.length, 'top count');
    for (const t of p.top) {
      u32(t.tokenId, 'token id');
      f64(t.probability);
    }
  }
  return keccak256(bytes);
}

/** The attestation of one score job: everything but the positions is the score frame's. */
export function scoreAttestation(s: {
  scoreJobId: Hex;
  auditedJobId: Hex;
  worker: Address;
  modelId: Hex;
  promptTokenIds: readonly number[];
  outputTokenIds: readonly number[];
  topK: number;
  positions: readonly ScoredPositionLike[];
}): ScoreAttestation {
  return {
    scoreJobId: s.scoreJobId,
    auditedJobId: s.auditedJobId,
    worker: s.worker,
    modelId: s.modelId,
    promptHash: hashTokenIds(s.promptTokenIds),
    outputHash: hashTokenIds(s.outputTokenIds),
    topK: s.topK,
    positionsHash: hashScorePositions(s.positions),
  };
}

/** Typed-data parameters for viem's `signTypedData` / `recoverTypedDataAddress`: the receipts' domain. */
export function scoreTypedData(attestation: ScoreAttestation, chainId: number, verifyingContract: Address) {
  return {
    domain: receiptDomain(chainId, verifyingContract),
    types: scoreTypes,
    primaryType: 'Score',
    message: attestation,
  } as const;
}
