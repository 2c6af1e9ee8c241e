import { encodeAbiParameters, type Hex, hashTypedData, keccak256, recoverTypedDataAddress } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { describe, expect, it } from 'vitest';
import {
  buildReceiptTree,
  CANONICAL_SAMPLER,
  computeOutputHash,
  computeRequestHash,
  hashTokenIds,
  type Receipt,
  receiptLeafHash,
  receiptLeafValues,
  receiptTypedData,
  receiptTypes,
  SAMPLER_NAME,
  tokenIdsToBytes,
  verifyReceiptProof,
} from '../src/receipt.ts';

// anvil's first public test key (never for real funds)
const worker = privateKeyToAccount('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
const grid = '0x5FbDB2315678afecb367f032d93F642f64180aa3';

function receipt(i: number): Receipt {
  return {
    jobId: keccak256(encodeAbiParameters([{ type: 'uint256' }], [BigInt(i)])),
    gateway: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    payer: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
    worker: worker.address,
    modelId: keccak256('0x01'),
    requestHash: computeRequestHash(
      [1, 2, 3 + i],
      {
        maxTokens: 16,
        temperature: 0,
        topP: 1,
        seed: null,
        stop: [],
      },
      CANONICAL_SAMPLER,
    ),
    outputHash: computeOutputHash([5, 6, i], 'stop'),
    inputUnits: 3n,
    outputUnits: 3n,
    fee: 1234n + BigInt(i),
    completedAt: 1_700_000_000n + BigInt(i),
    confidential: i % 2 === 0,
    seq: 1_000n + BigInt(i),
  };
}

describe('token id hashing', () => {
  it('encodes each id as 4 big-endian bytes', () => {
    expect([...tokenIdsToBytes([1, 0x01020304])]).toEqual([0, 0, 0, 1, 1, 2, 3, 4]);
  });
  it('rejects ids that are not uint32', () => {
    expect(() => tokenIdsToBytes([-1])).toThrow(RangeError);
    expect(() => tokenIdsToBytes([2 ** 32])).toThrow(RangeError);
    expect(() => tokenIdsToBytes([1.5])).toThrow(RangeError);
  });
  it('distinguishes order and length', () => {
    expect(hashTokenIds([1, 2])).not.toBe(hashTokenIds([2, 1]));
    expect(hashTokenIds([1])).not.toBe(hashTokenIds([1, 0]));
  });
  it('request hash commits to sampling params and the sampler; output hash to the finish reason', () => {
    const p = { maxTokens: 16, temperature: 0, topP: 1, seed: null as number | null, stop: [] };
    const h = (ps: typeof p, sampler = CANONICAL_SAMPLER) => computeRequestHash([1], ps, sampler);
    expect(h(p)).not.toBe(h({ ...p, maxTokens: 17 }));
    expect(h(p)).not.toBe(h({ ...p, seed: 0 }));
    expect(h(p)).not.toBe(h(p, 'ollama'));
    expect(h(p, 'ollama')).not.toBe(h(p, 'vllm'));
    expect(SAMPLER_NAME.test(CANONICAL_SAMPLER)).toBe(true);
    expect(SAMPLER_NAME.test('Ollama')).toBe(false);
    expect(computeOutputHash([1], 'stop')).not.toBe(computeOutputHash([1], 'length'));
  });
});

describe('EIP-712 receipt', () => {
  it('is signed by the operator key and recovers to it', async () => {
    const r = receipt(1);
    const typed = receiptTypedData(r, 31337, grid);
    const signature = await worker.signTypedData(typed);
    expect(await recoverTypedDataAddress({ ...typed, signature })).toBe(worker.address);
  });
  it('uses the type string the contract hashes, seq last', () => {
    expect(receiptTypes.Receipt.map((f) => `${f.type} ${f.name}`).join(',')).toBe(
      'bytes32 jobId,address gateway,address payer,address worker,bytes32 modelId,bytes32 requestHash,' +
        'bytes32 outputHash,uint64 inputUnits,uint64 outputUnits,uint256 fee,uint64 completedAt,bool confidential,uint64 seq',
    );
  });
  it('binds the receipt number: another seq gives another digest', () => {
    const r = receipt(1);
    expect(hashTypedData(receiptTypedData({ ...r, seq: r.seq + 1n }, 31337, grid))).not.toBe(
      hashTypedData(receiptTypedData(r, 31337, grid)),
    );
  });
  it('binds chain and contract: another domain gives another digest', () => {
    const r = receipt(1);
    const a = hashTypedData(receiptTypedData(r, 31337, grid));
    expect(hashTypedData(receiptTypedData(r, 8453, grid))).not.toBe(a);
    expect(hashTypedData(receiptTypedData(r, 31337, '0x0000000000000000000000000000000000000001'))).not.toBe(
      a,
    );
  });
});

describe('receipt Merkle tree', () => {
  it('proves every receipt against the root and rejects a tampered one', () => {
    const receipts = Array.from({ length: 7 }, (_, i) => receipt(i));
    const tree = buildReceiptTree(receipts);
    const root = tree.root as Hex;
    for (const [i, r] of receipts.entries()) {
      const proof = tree.getProof(i) as Hex[];
      expect(verifyReceiptProof(root, r, proof)).toBe(true);
      expect(verifyReceiptProof(root, { ...r, fee: r.fee + 1n }, proof)).toBe(false);
      expect(verifyReceiptProof(root, { ...r, seq: r.seq + 1n }, proof)).toBe(false);
    }
  });
  it('uses the OpenZeppelin double-hashed abi.encode leaf that MerkleProof.verify checks on chain', () => {
    const r = receipt(3);
    const encoded = encodeAbiParameters(
      [
        { type: 'bytes32' },
        { type: 'address' },
        { type: 'address' },
        { type: 'address' },
        { type: 'bytes32' },
        { type: 'bytes32' },
        { type: 'bytes32' },
        { type: 'uint64' },
        { type: 'uint64' },
        { type: 'uint256' },
        { type: 'uint64' },
        { type: 'bool' },
        { type: 'uint64' },
      ],
      [
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
      ],
    );
    expect(receiptLeafHash(r)).toBe(keccak256(keccak256(encoded)));
    // and it is the very leaf OpenZeppelin's StandardMerkleTree puts in the batch tree
    const tree = buildReceiptTree([receipt(2), r, receipt(4)]);
    expect(receiptLeafHash(r)).toBe(tree.leafHash([...receiptLeafValues(r)]));
    expect(receiptLeafHash(receipt(4))).not.toBe(receiptLeafHash(r));
  });
  it('refuses an empty batch', () => {
    expect(() => buildReceiptTree([])).toThrow(RangeError);
  });
});
