import {
  type Address,
  bytesToHex,
  getTypesForEIP712Domain,
  type Hex,
  hashDomain,
  hexToBytes,
  isAddress,
  stringToBytes,
} from 'viem';
import { InvalidInputError } from './errors.ts';
import { keccakBytes, makeSortedMerkleTree, nodeHex, proofOfNode, verifySortedProof } from './merkle.ts';

/**
 * The receipt every job ends with (docs/DESIGN.md §4), signed by the worker's operator key as EIP-712
 * typed data. `worker` is the worker's bond owner (earnings are credited there); the signer is
 * the operator key registered for that owner. For text, `requestHash` and `outputHash` commit to
 * token ids, so a validator can re-score exactly what ran.
 */
export type Receipt = {
  jobId: Hex;
  gateway: Address;
  payer: Address;
  worker: Address;
  modelId: Hex;
  requestHash: Hex;
  outputHash: Hex;
  inputUnits: bigint;
  outputUnits: bigint;
  fee: bigint;
  completedAt: bigint;
  confidential: boolean;
  /**
   * The gateway's receipt number: assigned when the job is dispatched, one per dispatch, never reused.
   * A batch settles a contiguous range of them (`settle(root, firstSeq, receiptCount, …)`), so a receipt
   * can be settled once and an audit can check that it belongs to the batch it is proved against.
   */
  seq: bigint;
};

export const receiptTypes = {
  Receipt: [
    { name: 'jobId', type: 'bytes32' },
    { name: 'gateway', type: 'address' },
    { name: 'payer', type: 'address' },
    { name: 'worker', type: 'address' },
    { name: 'modelId', type: 'bytes32' },
    { name: 'requestHash', type: 'bytes32' },
    { name: 'outputHash', type: 'bytes32' },
    { name: 'inputUnits', type: 'uint64' },
    { name: 'outputUnits', type: 'uint64' },
    { name: 'fee', type: 'uint256' },
    { name: 'completedAt', type: 'uint64' },
    { name: 'confidential', type: 'bool' },
    { name: 'seq', type: 'uint64' },
  ],
} as const;

/** EIP-712 domain: bound to the chain and the Grid Diamond the receipt will be settled on. */
export function receiptDomain(chainId: number, verifyingContract: Address) {
  return { name: 'AIPG Grid', version: '1', chainId, verifyingContract } as const;
}

/** Typed-data parameters for viem's `signTypedData` / `verifyTypedData` / `hashTypedData`. */
export function receiptTypedData(receipt: Receipt, chainId: number, verifyingContract: Address) {
  return {
    domain: receiptDomain(chainId, verifyingContract),
    types: receiptTypes,
    primaryType: 'Receipt',
    message: receipt,
  } as const;
}

/** Leaf encoding of the batch Merkle tree (OpenZeppelin standard tree: double-hashed abi.encode). */
export const RECEIPT_LEAF_ENCODING = receiptTypes.Receipt.map((f) => f.type);

export function receiptLeafValues(r: Receipt) {
  return [
    r.jobId,
    r.gateway,
    r.payer,
    r.worker,
    r.modelId,
    r.requestHash,
    r.outputHash,
    r.inputUnits,
    r.outputUnits,
    r.fee,
    r.completedAt,
    r.confidential,
    r.seq,
  ] as const;
}

export type ReceiptLeafValues = ReturnType<typeof receiptLeafValues>;

const UINT64_MAX = 2n ** 64n - 1n;
const UINT256_MAX = 2n ** 256n - 1n;
const MASK64 = 2n ** 64n - 1n;

/** Hex digit values by char code (−1: not a hex digit). */
const NIBBLE = (() => {
  const t = new Int8Array(128).fill(-1);
  for (let i = 0; i < 10; i++) t[48 + i] = i;
  for (let i = 0; i < 6; i++) {
    t[65 + i] = 10 + i;
    t[97 + i] = 10 + i;
  }
  return t;
})();

function invalidField(name: string, value: unknown, expected: string): InvalidInputError {
  const shown =
    typeof value === 'string'
      ? JSON.stringify(value)
      : typeof value === 'bigint'
        ? `${value}n`
        : String(value);
  return new InvalidInputError(`invalid receipt field ${name}: expected ${expected}`, `got ${shown}`);
}

/** `0x` and exactly 2·`bytes` hex digits, written to `out` from `at`; anything else throws. */
function putHex(out: Uint8Array, at: number, value: unknown, bytes: number, name: string, type: string) {
  if (
    typeof value !== 'string' ||
    value.length !== 2 + 2 * bytes ||
    value.charCodeAt(0) !== 48 ||
    value.charCodeAt(1) !== 120
  )
    throw invalidField(name, value, `${type} (0x and ${2 * bytes} hex digits)`);
  for (let i = 0, j = 2; i < bytes; i++, j += 2) {
    const hi = NIBBLE[value.charCodeAt(j)] ?? -1;
    const lo = NIBBLE[value.charCodeAt(j + 1)] ?? -1;
    if ((hi | lo) < 0) throw invalidField(name, value, `${type} (0x and ${2 * bytes} hex digits)`);
    out[at + i] = (hi << 4) | lo;
  }
}

/** An unsigned integer (bigint, or an integral number) in [0, max], as a 32-byte big-endian word. */
function putUint(view: DataView, at: number, value: unknown, max: bigint, name: string, type: string) {
  let v: bigint;
  if (typeof value === 'bigint') v = value;
  else if (typeof value === 'number' && Number.isInteger(value)) v = BigInt(value);
  else throw invalidField(name, value, `a ${type} (bigint)`);
  if (v < 0n || v > max) throw invalidField(name, value, `a ${type} (0 to ${max})`);
  if (max === UINT64_MAX) {
    view.setBigUint64(at + 24, v);
    return;
  }
  for (let i = 24; i >= 0; i -= 8) {
    view.setBigUint64(at + i, v & MASK64);
    v >>= 64n;
  }
}

const FIELDS = receiptTypes.Receipt;
/** `abi.encode` of the 13 fields: every one is static, one 32-byte word each. */
const ENCODED_LENGTH = 32 * FIELDS.length;

/**
 * `abi.encode(fields)` (= the EIP-712 `encodeData` of the fields, every one being atomic) of a
 * receipt's leaf values, written to `out` from `at` (416 bytes). Validates like viem's ABI encoder:
 * bytes32 exactly 32 bytes of hex, addresses valid (a mixed-case one must carry its EIP-55 checksum),
 * integers in range, `confidential` a boolean; anything else throws `InvalidInputError`.
 */
function encodeLeafValues(values: readonly unknown[], out: Uint8Array, view: DataView, at: number): void {
  if (!Array.isArray(values) || values.length !== FIELDS.length)
    throw new InvalidInputError(`a receipt leaf has ${FIELDS.length} values`);
  out.fill(0, at, at + ENCODED_LENGTH);
  for (let i = 0; i < FIELDS.length; i++) {
    const { name, type } = FIELDS[i]!;
    const w = at + 32 * i;
    const v = values[i];
    switch (type) {
      case 'bytes32':
        putHex(out, w, v, 32, name, type);
        break;
      case 'address':
        if (typeof v !== 'string' || !isAddress(v)) throw invalidField(name, v, 'an address');
        putHex(out, w + 12, v, 20, name, type);
        break;
      case 'uint64':
        putUint(view, w, v, UINT64_MAX, name, type);
        break;
      case 'uint256':
        putUint(view, w, v, UINT256_MAX, name, type);
        break;
      case 'bool':
        if (typeof v !== 'boolean') throw invalidField(name, v, 'a boolean');
        out[w + 31] = v ? 1 : 0;
        break;
    }
  }
}

/** `Receipt(bytes32 jobId,…,uint64 seq)`: EIP-712 `encodeType` (no nested types). */
const RECEIPT_TYPE = `Receipt(${FIELDS.map((f) => `${f.type} ${f.name}`).join(',')})`;
const RECEIPT_TYPE_HASH = keccakBytes(stringToBytes(RECEIPT_TYPE));

/**
 * Scratch: the receipt's type hash, then its encoded fields. The leaf hashes bytes 32…448 (the
 * `abi.encode`), the EIP-712 struct hash all 448 (`typeHash ‖ encodeData`). Single-threaded and
 * filled in full by every encoding, so one buffer serves every call.
 */
const scratch = new Uint8Array(32 + ENCODED_LENGTH);
const scratchView = new DataView(scratch.buffer);
scratch.set(RECEIPT_TYPE_HASH, 0);

function leafHashOfValues(values: readonly unknown[]): Uint8Array {
  encodeLeafValues(values, scratch, scratchView, 32);
  return keccakBytes(keccakBytes(scratch.subarray(32)));
}

/** The receipt's leaf hash as bytes (see `receiptLeafHash`). */
export function receiptLeafHashBytes(r: Receipt): Uint8Array {
  return leafHashOfValues(receiptLeafValues(r));
}

/**
 * The leaf hash of one receipt, as the tree (and MerkleProof.verify on chain) computes it:
 * `keccak256(keccak256(abi.encode(fields)))`, OpenZeppelin's standard leaf. The 13 fields are all
 * static, so the encoding is 13 words written straight into one buffer and hashed as bytes.
 * Throws `InvalidInputError` on a field that does not encode (see `encodeLeafValues`).
 */
export function receiptLeafHash(r: Receipt): Hex {
  return bytesToHex(receiptLeafHashBytes(r));
}

const domainSeparators = new Map<string, Uint8Array>();

/** The EIP-712 domain separator of (`chainId`, `verifyingContract`), computed by viem once and cached. */
function receiptDomainSeparator(chainId: number, verifyingContract: Address): Uint8Array {
  const key = `${chainId}:${verifyingContract}`;
  let separator = domainSeparators.get(key);
  if (separator === undefined) {
    const domain = receiptDomain(chainId, verifyingContract);
    const types = { EIP712Domain: getTypesForEIP712Domain({ domain }) };
    // viem's ABI encoder refuses what `hashTypedData` refuses here: a bad address, a chain id out of range.
    separator = hexToBytes(hashDomain({ domain, types } as Parameters<typeof hashDomain>[0]));
    // A handful of (chain, Grid) pairs in practice; bounded all the same.
    if (domainSeparators.size >= 64) domainSeparators.clear();
    domainSeparators.set(key, separator);
  }
  return separator;
}

/** `0x19 0x01 ‖ domainSeparator ‖ hashStruct(receipt)`. */
const digestInput = new Uint8Array(66);
digestInput[0] = 0x19;
digestInput[1] = 0x01;

/** The receipt's EIP-712 digest as bytes (see `receiptDigest`). */
export function receiptDigestBytes(r: Receipt, chainId: number, verifyingContract: Address): Uint8Array {
  const separator = receiptDomainSeparator(chainId, verifyingContract);
  encodeLeafValues(receiptLeafValues(r), scratch, scratchView, 32);
  digestInput.set(separator, 2);
  digestInput.set(keccakBytes(scratch), 34);
  return keccakBytes(digestInput);
}

/**
 * The EIP-712 digest of a receipt, exactly what viem's `hashTypedData(receiptTypedData(r, chainId,
 * verifyingContract))` computes (what the operator key signs): the type hash is computed once, the
 * domain separator once per (chain, contract), and the struct encoded straight into one buffer.
 * Throws on a field that does not encode (`InvalidInputError`) or an invalid domain (viem's error).
 */
export function receiptDigest(r: Receipt, chainId: number, verifyingContract: Address): Hex {
  return bytesToHex(receiptDigestBytes(r, chainId, verifyingContract));
}

/**
 * The batch Merkle tree: OpenZeppelin's `StandardMerkleTree.of(receipts.map(receiptLeafValues),
 * RECEIPT_LEAF_ENCODING)` (same root, same proofs, same `dump()`, which `StandardMerkleTree.load`
 * reads), built over leaf hashes computed straight from bytes (see `merkle.ts`).
 */
export class ReceiptTree {
  /** The Merkle root (`0x` + 64 lowercase hex digits). */
  readonly root: Hex;
  readonly #receipts: readonly Receipt[];
  readonly #nodes: Uint8Array;
  readonly #treeIndex: Uint32Array;
  /** Leaf hash (hex) → index of the last receipt with it (OpenZeppelin's `hashLookup`), built on demand. */
  #lookup: Map<string, number> | undefined;

  constructor(receipts: readonly Receipt[]) {
    const n = receipts.length;
    if (n === 0) throw new RangeError('a receipt tree needs at least one receipt');
    const leaves = new Uint8Array(32 * n);
    for (let i = 0; i < n; i++) leaves.set(receiptLeafHashBytes(receipts[i]!), 32 * i);
    const { nodes, treeIndex } = makeSortedMerkleTree(leaves, n);
    this.#receipts = [...receipts];
    this.#nodes = nodes;
    this.#treeIndex = treeIndex;
    this.root = nodeHex(nodes, 0);
  }

  /** How many receipts the tree holds. */
  get length(): number {
    return this.#receipts.length;
  }

  /** The leaf values of the receipt at `index` (negative: from the end), as `StandardMerkleTree.at`. */
  at(index: number): ReceiptLeafValues | undefined {
    const r = this.#receipts.at(index);
    return r === undefined ? undefined : receiptLeafValues(r);
  }

  /** The leaf hash of a receipt (or of its leaf values), as the tree hashes it. */
  leafHash(leaf: Receipt | ReceiptLeafValues): Hex {
    return bytesToHex(leafHashOfValues(Array.isArray(leaf) ? leaf : receiptLeafValues(leaf as Receipt)));
  }

  /**
   * The Merkle proof of a receipt, as `StandardMerkleTree.getProof` gives it: by `index` into the
   * receipts the tree was built from (in their order), or by the receipt (or its leaf values), found by
   * its leaf hash (a receipt in the tree twice: its last position). Throws for an index out of bounds
   * or a receipt not in the tree.
   */
  getProof(leaf: number | Receipt | ReceiptLeafValues): Hex[] {
    let index: number;
    if (typeof leaf === 'number') {
      index = leaf;
      if (!Number.isInteger(index) || index < 0 || index >= this.#receipts.length)
        throw new RangeError(`Index out of bounds: ${index}`);
    } else {
      const found = this.#leafLookup().get(this.leafHash(leaf));
      if (found === undefined) throw new InvalidInputError('Leaf is not in tree');
      index = found;
    }
    return proofOfNode(this.#nodes, this.#treeIndex[index]!);
  }

  /**
   * OpenZeppelin's `standard-v1` dump (`StandardMerkleTree.load(dump)` reads it back): the leaf
   * encoding, every node as hex and each receipt's leaf values with its node index, in input order.
   */
  dump(): ReceiptTreeDump {
    const nodeCount = this.#nodes.length / 32;
    const tree: Hex[] = new Array(nodeCount);
    for (let i = 0; i < nodeCount; i++) tree[i] = nodeHex(this.#nodes, i);
    return {
      format: 'standard-v1',
      leafEncoding: [...RECEIPT_LEAF_ENCODING],
      tree,
      values: this.#receipts.map((r, i) => ({
        value: [...receiptLeafValues(r)],
        treeIndex: this.#treeIndex[i]!,
      })),
    };
  }

  #leafLookup(): Map<string, number> {
    if (this.#lookup === undefined) {
      this.#lookup = new Map();
      for (let i = 0; i < this.#receipts.length; i++)
        this.#lookup.set(nodeHex(this.#nodes, this.#treeIndex[i]!), i);
    }
    return this.#lookup;
  }
}

/** `StandardMerkleTree.dump()`'s `standard-v1` format, for a receipt tree. */
export type ReceiptTreeDump = {
  format: 'standard-v1';
  leafEncoding: string[];
  tree: Hex[];
  values: { value: ReceiptLeafValues[number][]; treeIndex: number }[];
};

/** The batch Merkle tree of `receipts` (at least one); see `ReceiptTree`. */
export function buildReceiptTree(receipts: readonly Receipt[]): ReceiptTree {
  return new ReceiptTree(receipts);
}

/**
 * `StandardMerkleTree.verify(root, RECEIPT_LEAF_ENCODING, receiptLeafValues(r), proof)`, same
 * answers: `root` compared as given (letter case included), a malformed root or proof node throws.
 */
export function verifyReceiptProof(root: Hex, r: Receipt, proof: readonly Hex[]): boolean {
  return verifySortedProof(root, receiptLeafHashBytes(r), proof);
}

/** Token ids as bytes: each id a 4-byte big-endian word, concatenated. */
export function tokenIdsToBytes(ids: readonly number[]): Uint8Array {
  const out = new Uint8Array(ids.length * 4);
  const view = new DataView(out.buffer);
  ids.forEach((id, i) => {
    if (!Number.isInteger(id) || id < 0 || id > 0xffffffff) throw new RangeError(`invalid token id ${id}`);
    view.setUint32(i * 4, id, false);
  });
  return out;
}

export function hashTokenIds(ids: readonly number[]): Hex {
  return bytesToHex(keccakBytes(tokenIdsToBytes(ids)));
}

/** Sampling parameters a text job ran with; part of `requestHash` so a validator knows what to expect. */
export type SamplingParams = {
  maxTokens: number;
  temperature: number;
  topP: number;
  seed: number | null;
  stop: readonly string[];
};

/** `keccak256(JSON of the params in a fixed order)`: JSON.stringify of numbers is canonical in JS. */
export function hashSamplingParams(p: SamplingParams): Hex {
  return bytesToHex(keccakBytes(samplingParamsBytes(p)));
}

function samplingParamsBytes(p: SamplingParams): Uint8Array {
  return stringToBytes(JSON.stringify([p.maxTokens, p.temperature, p.topP, p.seed, [...p.stop]]));
}

/** `keccak256(utf8(s))` of the few names hashed into every receipt (samplers, finish reasons), remembered. */
const nameHashes = new Map<string, Uint8Array>();
function nameHash(s: string): Uint8Array {
  let h = nameHashes.get(s);
  if (!h) {
    h = keccakBytes(stringToBytes(s));
    if (nameHashes.size < 1_000) nameHashes.set(s, h);
  }
  return h;
}

/** `keccak256(a ‖ b ‖ …)` of 32-byte hashes, as bytes. */
function hashOfHashes(parts: readonly Uint8Array[]): Uint8Array {
  const buf = new Uint8Array(32 * parts.length);
  for (const [i, part] of parts.entries()) buf.set(part, 32 * i);
  return keccakBytes(buf);
}

/**
 * The sampler of `@aipg/inference` (`sampleToken`, seeded by the job's seed): a validator replays a
 * seeded job under it token by token. Any other name is an engine's private sampler (Ollama's,
 * vLLM's), which no one can replay: such jobs are judged statistically only.
 */
export const CANONICAL_SAMPLER = 'aipg-sampler-v1';

/** A sampler name as a worker declares it per model: lowercase letters, digits, `.`, `_`, `-`. */
export const SAMPLER_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/**
 * `requestHash = keccak256(hashTokenIds(promptTokenIds) ‖ hashSamplingParams(params) ‖
 * keccak256(sampler))`: what ran (the prompt as token ids), how (the parameters) and with which
 * sampler, so each job is judged by what its own sampler allows and a gateway cannot serve
 * another sampler as evidence.
 */
export function computeRequestHash(
  promptTokenIds: readonly number[],
  params: SamplingParams,
  sampler: string,
): Hex {
  return bytesToHex(
    hashOfHashes([
      keccakBytes(tokenIdsToBytes(promptTokenIds)),
      keccakBytes(samplingParamsBytes(params)),
      nameHash(sampler),
    ]),
  );
}

export type FinishReason = 'stop' | 'length';

/** `outputHash = keccak256(hashTokenIds(outputTokenIds) ‖ keccak256(finishReason))`. */
export function computeOutputHash(outputTokenIds: readonly number[], finishReason: FinishReason): Hex {
  return bytesToHex(hashOfHashes([keccakBytes(tokenIdsToBytes(outputTokenIds)), nameHash(finishReason)]));
}
