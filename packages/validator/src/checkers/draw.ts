/**
 * Who scores a cross-check: drawn by the validator from on-chain randomness, never chosen by the
 * gateway (docs/DESIGN.md §5).
 *
 * The seed is `keccak256(abi.encode(SCORER_DRAW_TAG, R, leaf, validator))`: `R` is the audited batch's
 * randomness (`batchAudit(batchId).randomness`, fixed by `fixRandomness` from a source read only after
 * the batch settled: a future block's hash on devnet, a VRF word on Base), `leaf` the audited receipt
 * and `validator` this validator's bond owner. Nobody knows R when the job is served or the batch
 * settled, so neither the gateway nor the audited worker can line a scorer up for it in advance; the tag
 * keeps it apart from the contract's own uses of R (`H(R, leaf)` audits, `H(R, leaf, i)` seats); the
 * validator makes each seat's draw independent (a colluding scorer must be drawn by a majority of seats,
 * not once for all). Anyone can recompute a validator's draw from the chain and check that the scores it
 * kept are the ones it had to ask for.
 */
import { type Address, concat, encodeAbiParameters, type Hex, hexToBigInt, keccak256, toHex } from 'viem';

export const SCORER_DRAW_TAG: Hex = keccak256(toHex('aipg.crosscheck.scorer-draw.v1'));

export function scorerDrawSeed(p: { randomness: Hex; leaf: Hex; validator: Address }): Hex {
  return keccak256(
    encodeAbiParameters(
      [{ type: 'bytes32' }, { type: 'bytes32' }, { type: 'bytes32' }, { type: 'address' }],
      [SCORER_DRAW_TAG, p.randomness, p.leaf, p.validator],
    ),
  );
}

/** A worker a gateway lists as online for the model: its bond owner and operator key. */
export type ScorerCandidate = { worker: Address; operator: Address };

/**
 * The candidates in draw order: ascending `keccak256(seed ‖ owner)` (`abi.encodePacked(bytes32,
 * address)`), one entry per bond owner. Excluded: the audited worker's owner, and every owner listed
 * with one of `operators` (the audited worker's operator keys: the one that signed the receipt and its
 * bond's operator now), whatever owner the list gives for it.
 */
export function drawScorers(
  seed: Hex,
  candidates: readonly ScorerCandidate[],
  exclude: { workers: readonly Address[]; operators: readonly Address[] },
): ScorerCandidate[] {
  const workers = new Set(exclude.workers.map((w) => w.toLowerCase()));
  const operators = new Set(exclude.operators.map((o) => o.toLowerCase()));
  // An owner listed with an excluded key is excluded under any other key it is listed with too.
  for (const c of candidates)
    if (operators.has(c.operator.toLowerCase())) workers.add(c.worker.toLowerCase());
  const byOwner = new Map<string, ScorerCandidate & { key: bigint }>();
  for (const c of candidates) {
    const owner = c.worker.toLowerCase();
    if (workers.has(owner) || byOwner.has(owner)) continue;
    byOwner.set(owner, { ...c, key: hexToBigInt(keccak256(concat([seed, owner as Hex]))) });
  }
  return [...byOwner.values()]
    .sort((a, b) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0))
    .map(({ worker, operator }) => ({ worker, operator }));
}
