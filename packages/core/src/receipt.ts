import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import { type Address, concat, encodeAbiParameters, type Hex, keccak256, toBytes, toHex } from 'viem';

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

export type ReceiptTree = StandardMerkleTree<ReturnType<typeof receiptLeafValues>[number][]>;

export function buildReceiptTree(receipts: readonly Receipt[]): ReceiptTree {
  if (receipts.length === 0) throw new RangeError('a receipt tree needs at least one receipt');
  return StandardMerkleTree.of(
    receipts.map((r) => [...receiptLeafValues(r)]),
    [...RECEIPT_LEAF_ENCODING],
  );
}

/**
 * The leaf hash of one receipt, as the tree (and MerkleProof.verify on chain) computes it:
 * `keccak256(keccak256(abi.encode(fields)))`. Computed with viem directly: the gateway hashes every
 * receipt it stores, and building a one-leaf tree for it costs ~100× more.
 */
export function receiptLeafHash(r: Receipt): Hex {
  return keccak256(keccak256(encodeAbiParameters(RECEIPT_LEAF_PARAMETERS, [...receiptLeafValues(r)])));
}

const RECEIPT_LEAF_PARAMETERS = receiptTypes.Receipt.map((f) => ({ type: f.type }));

export function verifyReceiptProof(root: Hex, r: Receipt, proof: readonly Hex[]): boolean {
  return StandardMerkleTree.verify(root, [...RECEIPT_LEAF_ENCODING], [...receiptLeafValues(r)], [...proof]);
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
  return keccak256(tokenIdsToBytes(ids));
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
  return keccak256(toBytes(JSON.stringify([p.maxTokens, p.temperature, p.topP, p.seed, [...p.stop]])));
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
  return keccak256(
    concat([hashTokenIds(promptTokenIds), hashSamplingParams(params), keccak256(toHex(sampler))]),
  );
}

export type FinishReason = 'stop' | 'length';

/** `outputHash = keccak256(hashTokenIds(outputTokenIds) ‖ keccak256(finishReason))`. */
export function computeOutputHash(outputTokenIds: readonly number[], finishReason: FinishReason): Hex {
  return keccak256(concat([hashTokenIds(outputTokenIds), keccak256(toHex(finishReason))]));
}
