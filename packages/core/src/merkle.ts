import { bytesToHex, type Hex, hexToBytes } from 'viem';
import { keccak256Bytes } from './keccak.ts';

/**
 * The array-layout Merkle tree of OpenZeppelin's `StandardMerkleTree` (@openzeppelin/merkle-tree 1.x,
 * `makeMerkleTree`, `getProof`, `processProof`, with `sortLeaves`), over leaf hashes computed by the
 * caller, working on bytes: no hex strings, no BigInt comparisons, one keccak256 per node.
 *
 * Layout: `2n − 1` nodes of 32 bytes; the leaves, sorted ascending (a stable sort: equal leaves keep
 * their input order), fill the array from its end (the smallest leaf last); node `i` is
 * `keccak256(sort(node 2i+1, node 2i+2))`, the pair concatenated in ascending byte order; node 0 is
 * the root. Roots and proofs are bit-identical to OpenZeppelin's (the tests hold them against it).
 */

/** keccak256 of bytes, as bytes (no hex round trip; see `keccak.ts`). */
export const keccakBytes: (data: Uint8Array) => Uint8Array = keccak256Bytes;

/** Byte order of two 32-byte words (the order of their values as big-endian integers). */
function compareWords(a: Uint8Array, ai: number, b: Uint8Array, bi: number): number {
  for (let k = 0; k < 32; k++) {
    const d = a[ai + k]! - b[bi + k]!;
    if (d !== 0) return d;
  }
  return 0;
}

const pair = new Uint8Array(64);

/** OpenZeppelin's `standardNodeHash`: keccak256 of the two words concatenated, smaller first. */
function hashPair(a: Uint8Array, ai: number, b: Uint8Array, bi: number): Uint8Array {
  if (compareWords(a, ai, b, bi) <= 0) {
    pair.set(a.subarray(ai, ai + 32), 0);
    pair.set(b.subarray(bi, bi + 32), 32);
  } else {
    pair.set(b.subarray(bi, bi + 32), 0);
    pair.set(a.subarray(ai, ai + 32), 32);
  }
  return keccakBytes(pair);
}

export type SortedMerkleTree = {
  /** `2n − 1` nodes of 32 bytes, node `i` at byte `32·i`; node 0 is the root. */
  nodes: Uint8Array;
  /** The node index of each input leaf (by input position). */
  treeIndex: Uint32Array;
};

/**
 * `StandardMerkleTree.of`'s tree over `n` leaf hashes (`leaves`: `32·n` bytes, in input order):
 * leaves sorted, then hashed up pair by pair.
 */
export function makeSortedMerkleTree(leaves: Uint8Array, n: number): SortedMerkleTree {
  if (n < 1 || leaves.length !== 32 * n) throw new RangeError('expected at least one 32-byte leaf');
  const order = Array.from({ length: n }, (_, i) => i);
  // Array.prototype.sort is stable: equal leaves keep their input order, as OpenZeppelin's do.
  order.sort((a, b) => compareWords(leaves, 32 * a, leaves, 32 * b));
  const length = 2 * n - 1;
  const nodes = new Uint8Array(32 * length);
  const treeIndex = new Uint32Array(n);
  for (let leafIndex = 0; leafIndex < n; leafIndex++) {
    const valueIndex = order[leafIndex]!;
    const t = length - 1 - leafIndex;
    nodes.set(leaves.subarray(32 * valueIndex, 32 * valueIndex + 32), 32 * t);
    treeIndex[valueIndex] = t;
  }
  for (let i = length - 1 - n; i >= 0; i--) {
    nodes.set(hashPair(nodes, 32 * (2 * i + 1), nodes, 32 * (2 * i + 2)), 32 * i);
  }
  return { nodes, treeIndex };
}

/** Node `i` of a tree as `0x`-prefixed lowercase hex (OpenZeppelin's form). */
export function nodeHex(nodes: Uint8Array, i: number): Hex {
  return bytesToHex(nodes.subarray(32 * i, 32 * i + 32));
}

/** OpenZeppelin's `getProof(tree, index)`: the siblings from the leaf at node `index` up to the root. */
export function proofOfNode(nodes: Uint8Array, index: number): Hex[] {
  const proof: Hex[] = [];
  for (let i = index; i > 0; i = (i - 1) >> 1) {
    // The sibling of an odd (left) node is the next one, of an even (right) node the previous one.
    proof.push(nodeHex(nodes, i % 2 === 1 ? i + 1 : i - 1));
  }
  return proof;
}

const HEX_NODE = /^(?:0x)?[0-9a-fA-F]{64}$/;
const HEX = /^(?:0x)?(?:[0-9a-fA-F]{2})*$/;

/** A proof node as OpenZeppelin reads one (hex, `0x` optional) into 32 bytes; anything else throws. */
function proofNodeBytes(node: string): Uint8Array {
  if (typeof node !== 'string' || !HEX_NODE.test(node))
    throw new RangeError(`Merkle tree nodes must be 32 bytes of hex: ${String(node)}`);
  return hexToBytes(node.length === 66 ? (node as Hex) : `0x${node}`);
}

/**
 * OpenZeppelin's `StandardMerkleTree.verify` over a computed leaf hash: `root` (hex, `0x` optional,
 * compared letter case and all, as OpenZeppelin compares) equals the leaf folded with the proof by
 * `standardNodeHash`. Throws where OpenZeppelin throws: a root that is not hex, a proof node that is
 * not 32 bytes.
 */
export function verifySortedProof(root: string, leaf: Uint8Array, proof: readonly string[]): boolean {
  if (typeof root !== 'string' || !HEX.test(root))
    throw new RangeError(`invalid Merkle root ${String(root)}`);
  const expected = root.startsWith('0x') ? root : `0x${root}`;
  let node = leaf;
  for (const p of proof) node = hashPair(node, 0, proofNodeBytes(p), 0);
  return bytesToHex(node) === expected;
}
