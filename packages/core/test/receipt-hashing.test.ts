import { StandardMerkleTree } from '@openzeppelin/merkle-tree';
import {
  type Address,
  bytesToHex,
  concat,
  encodeAbiParameters,
  getAddress,
  type Hex,
  hashTypedData,
  keccak256,
  recoverTypedDataAddress,
  toBytes,
  toHex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, describe, expect, test } from 'vitest';
import {
  buildReceiptTree,
  CANONICAL_SAMPLER,
  computeOutputHash,
  computeRequestHash,
  hashTokenIds,
  RECEIPT_LEAF_ENCODING,
  type Receipt,
  receiptDigest,
  receiptLeafHash,
  receiptLeafValues,
  receiptTypedData,
  receiptTypes,
  recoverReceiptSigner,
  recoverTypedDataSigner,
  type SamplingParams,
  signReceiptDigest,
  tokenIdsToBytes,
  useNativeSecp256k1,
  verifyReceiptProof,
} from '../src/index.ts';

// The receipt hashing, tree and signing are computed on bytes, without viem's ABI encoder or
// OpenZeppelin's tree: they must give exactly what those give (the contract, stored batches and
// every signature depend on it), over many random receipts and every tree shape.

/** A deterministic generator (xorshift128+), so a failure replays. */
function rng(seed: number) {
  let a = BigInt(seed) | 1n;
  let b = 0x9e3779b97f4a7c15n ^ BigInt(seed);
  const M = 2n ** 64n - 1n;
  const next = (): bigint => {
    let x = a;
    const y = b;
    a = y;
    x ^= (x << 23n) & M;
    b = x ^ y ^ (x >> 17n) ^ (y >> 26n);
    return (b + y) & M;
  };
  const bytes = (n: number): Hex => {
    let s = '';
    while (s.length < 2 * n) s += next().toString(16).padStart(16, '0');
    return `0x${s.slice(0, 2 * n)}`;
  };
  const below = (n: number) => Number(next() % BigInt(n));
  const uint = (bits: number): bigint => {
    // Edge values often: 0, 1, the maximum, a power of two; else a random width.
    const max = 2n ** BigInt(bits) - 1n;
    switch (below(6)) {
      case 0:
        return 0n;
      case 1:
        return max;
      case 2:
        return 2n ** BigInt(below(bits));
      default:
        return BigInt(bytes(bits / 8)) >> BigInt(below(bits));
    }
  };
  const address = (): Address => {
    const raw = bytes(20);
    // Checksummed (as the gateway stores them) or all lowercase: both valid.
    return below(2) === 0 ? getAddress(raw) : raw;
  };
  return { bytes, below, uint, address };
}

function randomReceipts(n: number, seed: number): Receipt[] {
  const g = rng(seed);
  // A few shared parties, as in a real batch, plus fresh ones.
  const parties = Array.from({ length: 4 }, () => g.address());
  const party = () => (g.below(3) === 0 ? g.address() : parties[g.below(parties.length)]!);
  return Array.from({ length: n }, () => ({
    jobId: g.bytes(32),
    gateway: party(),
    payer: party(),
    worker: party(),
    modelId: g.bytes(32),
    requestHash: g.bytes(32),
    outputHash: g.bytes(32),
    inputUnits: g.uint(64),
    outputUnits: g.uint(64),
    fee: g.uint(256),
    completedAt: g.uint(64),
    confidential: g.below(2) === 0,
    seq: g.uint(64),
  }));
}

/** The leaf hash as it was computed before: viem's ABI encoder, then keccak256 twice. */
function viemLeafHash(r: Receipt): Hex {
  return keccak256(
    keccak256(
      encodeAbiParameters(
        receiptTypes.Receipt.map((f) => ({ type: f.type })),
        [...receiptLeafValues(r)],
      ),
    ),
  );
}

function ozTree(receipts: readonly Receipt[]) {
  return StandardMerkleTree.of(
    receipts.map((r) => [...receiptLeafValues(r)]),
    [...RECEIPT_LEAF_ENCODING],
  );
}

const stored = (dump: unknown) => JSON.stringify(dump, (_k, v) => (typeof v === 'bigint' ? v.toString() : v));

const GRIDS: Address[] = [
  '0x5FbDB2315678afecb367f032d93F642f64180aa3',
  '0x00000000000000000000000000000000000000aa',
  '0xe7f1725e7734ce288f8367e1bb143e90bb3f0512',
];
const CHAINS = [1, 8453, 31337, 84532];

afterAll(() => {
  useNativeSecp256k1(true);
});

describe('receiptLeafHash', () => {
  test("equals viem's abi.encode path and OpenZeppelin's leaf over 2,000 random receipts", () => {
    const receipts = randomReceipts(2000, 1);
    const oz = ozTree(receipts.slice(0, 200));
    for (const [i, r] of receipts.entries()) {
      const ours = receiptLeafHash(r);
      expect(ours).toBe(viemLeafHash(r));
      if (i < 200) expect(ours).toBe(oz.leafHash([...receiptLeafValues(r)]));
    }
  });

  test('distinguishes every field', () => {
    const [r] = randomReceipts(1, 2) as [Receipt];
    const base = receiptLeafHash(r);
    const variants: Partial<Receipt>[] = [
      { jobId: keccak256(r.jobId) },
      { gateway: '0x0000000000000000000000000000000000000009' },
      { payer: '0x0000000000000000000000000000000000000009' },
      { worker: '0x0000000000000000000000000000000000000009' },
      { modelId: keccak256(r.modelId) },
      { requestHash: keccak256(r.requestHash) },
      { outputHash: keccak256(r.outputHash) },
      { inputUnits: r.inputUnits ^ 1n },
      { outputUnits: r.outputUnits ^ 1n },
      { fee: r.fee ^ 1n },
      { completedAt: r.completedAt ^ 1n },
      { confidential: !r.confidential },
      { seq: r.seq ^ 1n },
    ];
    for (const v of variants) {
      const other = { ...r, ...v };
      expect(receiptLeafHash(other)).not.toBe(base);
      expect(receiptLeafHash(other)).toBe(viemLeafHash(other));
    }
  });
});

describe('receiptDigest', () => {
  test("equals viem's hashTypedData over 2,000 random receipts and several domains", () => {
    const receipts = randomReceipts(2000, 3);
    for (const [i, r] of receipts.entries()) {
      const chainId = CHAINS[i % CHAINS.length]!;
      const grid = GRIDS[i % GRIDS.length]!;
      expect(receiptDigest(r, chainId, grid)).toBe(hashTypedData(receiptTypedData(r, chainId, grid)));
    }
  });

  test('binds the domain: chain and contract', () => {
    const [r] = randomReceipts(1, 4) as [Receipt];
    const digests = new Set<Hex>();
    for (const chainId of CHAINS) for (const grid of GRIDS) digests.add(receiptDigest(r, chainId, grid));
    expect(digests.size).toBe(CHAINS.length * GRIDS.length);
    // The letter case of the contract address is not part of it.
    expect(receiptDigest(r, 1, GRIDS[0]!)).toBe(receiptDigest(r, 1, GRIDS[0]!.toLowerCase() as Address));
  });

  test('refuses a domain viem refuses', () => {
    const [r] = randomReceipts(1, 5) as [Receipt];
    const badGrid = '0x5fbDB2315678afecb367f032d93F642f64180aa3' as Address; // checksum broken
    expect(() => hashTypedData(receiptTypedData(r, 1, badGrid))).toThrow();
    expect(() => receiptDigest(r, 1, badGrid)).toThrow();
    expect(() => receiptDigest(r, 1, '0x1234' as Address)).toThrow();
    expect(() => receiptDigest(r, -1, GRIDS[0]!)).toThrow();
  });
});

describe('invalid receipts throw, never encode silently', () => {
  const [r] = randomReceipts(1, 6) as [Receipt];
  // [what, the change, whether viem's path refused it too (where it did not, it encoded something)]
  const bad: [string, Record<string, unknown>, boolean][] = [
    ['bytes32 one digit short', { jobId: r.jobId.slice(0, 65) }, false],
    ['bytes32 one byte short', { requestHash: r.requestHash.slice(0, 64) }, true],
    ['bytes32 one byte long', { modelId: `${r.modelId}00` }, true],
    ['bytes32 without 0x', { outputHash: `00${r.outputHash.slice(2)}` }, true],
    ['bytes32 not hex', { jobId: `0x${'g'.repeat(64)}` }, false],
    ['bytes32 not a string', { jobId: 5n }, true],
    ['address one byte short', { gateway: '0x00000000000000000000000000000000000001' }, true],
    ['address one byte long', { payer: '0x000000000000000000000000000000000000000001' }, true],
    ['address with a broken checksum', { worker: '0x5fbDB2315678afecb367f032d93F642f64180aa3' }, true],
    ['address not hex', { worker: '0x000000000000000000000000000000000000000z' }, true],
    ['uint64 2^64', { inputUnits: 2n ** 64n }, true],
    ['uint64 negative', { outputUnits: -1n }, true],
    ['uint64 seq 2^64', { seq: 2n ** 64n }, true],
    ['uint64 completedAt 2^70', { completedAt: 2n ** 70n }, true],
    ['uint64 a fraction', { seq: 1.5 }, true],
    ['uint64 a string', { seq: '1' }, false],
    ['uint256 2^256', { fee: 2n ** 256n }, true],
    ['uint256 negative', { fee: -1n }, true],
    ['bool a number', { confidential: 1 }, true],
    ['bool missing', { confidential: undefined }, true],
  ];
  test.each(bad)('%s', (_name, change, viemRefused) => {
    const x = { ...r, ...change } as Receipt;
    if (viemRefused) {
      expect(() => viemLeafHash(x)).toThrow();
      expect(() => hashTypedData(receiptTypedData(x, 1, GRIDS[0]!))).toThrow();
    }
    expect(() => receiptLeafHash(x)).toThrow();
    expect(() => receiptDigest(x, 1, GRIDS[0]!)).toThrow();
    expect(() => buildReceiptTree([r, x])).toThrow();
    // and a failed encoding leaves nothing behind for the next one
    expect(receiptLeafHash(r)).toBe(viemLeafHash(r));
    expect(receiptDigest(r, 1, GRIDS[0]!)).toBe(hashTypedData(receiptTypedData(r, 1, GRIDS[0]!)));
  });
});

/** Our tree against OpenZeppelin's: root, every proof (by index and by value), dump, load, verify. */
function expectSameTree(receipts: readonly Receipt[]) {
  // OpenZeppelin's lookups cost a millisecond or more each: every one on small trees, on a large one
  // (unique receipts) the lookups by value are held against our proofs by index instead.
  const thorough = receipts.length <= 40;
  const ours = buildReceiptTree(receipts);
  const oz = ozTree(receipts);
  expect(ours.root).toBe(oz.root);
  expect(ours.length).toBe(receipts.length);
  for (const [i, r] of receipts.entries()) {
    const proof = ours.getProof(i);
    expect(proof).toEqual(oz.getProof(i));
    const byValue = thorough ? oz.getProof([...receiptLeafValues(r)]) : proof;
    expect(ours.getProof([...receiptLeafValues(r)])).toEqual(byValue);
    expect(ours.getProof(r)).toEqual(byValue);
    expect(verifyReceiptProof(ours.root, r, proof)).toBe(true);
    expect(ours.at(i)).toEqual(oz.at(i));
  }
  const dump = ours.dump();
  expect(dump).toEqual(oz.dump());
  // Stored as the batches table stores it: the very same text.
  expect(stored(dump)).toBe(stored(oz.dump()));
  const loaded = StandardMerkleTree.load(JSON.parse(stored(dump)));
  expect(loaded.root).toBe(ours.root);
  for (const [i, r] of receipts.entries()) {
    expect(loaded.verify(i, ours.getProof(i))).toBe(true);
    if (thorough)
      expect(
        StandardMerkleTree.verify(
          ours.root,
          [...RECEIPT_LEAF_ENCODING],
          [...receiptLeafValues(r)],
          ours.getProof(i),
        ),
      ).toBe(true);
  }
}

describe('buildReceiptTree', () => {
  test('every size from 1 to 40: identical to StandardMerkleTree.of', () => {
    for (let n = 1; n <= 40; n++) expectSameTree(randomReceipts(n, 100 + n));
  });

  test('1,000 random receipts: identical to StandardMerkleTree.of', () => {
    expectSameTree(randomReceipts(1000, 7));
  });

  test('duplicate receipts: the same layout, and a lookup by value finds the last one', () => {
    const rs = randomReceipts(6, 8);
    const withDuplicates = [rs[0]!, rs[1]!, rs[0]!, rs[2]!, rs[1]!, rs[0]!, rs[3]!, rs[4]!, rs[5]!];
    expectSameTree(withDuplicates);
    expectSameTree([rs[0]!, rs[0]!]);
    expectSameTree([rs[0]!, rs[0]!, rs[0]!]);
  });

  test('the input order does not change the root, only the indices', () => {
    const rs = randomReceipts(13, 9);
    const a = buildReceiptTree(rs);
    const b = buildReceiptTree([...rs].reverse());
    expect(b.root).toBe(a.root);
    expect(b.getProof(0)).toEqual(a.getProof(12));
  });

  test('refuses an empty batch, an index out of bounds and a receipt not in the tree', () => {
    const rs = randomReceipts(3, 10);
    expect(() => buildReceiptTree([])).toThrow(RangeError);
    const tree = buildReceiptTree(rs);
    for (const i of [-1, 3, 1.5, Number.NaN]) expect(() => tree.getProof(i)).toThrow();
    const [other] = randomReceipts(1, 11) as [Receipt];
    expect(() => tree.getProof(other)).toThrow(/not in tree/);
    expect(() => ozTree(rs).getProof([...receiptLeafValues(other)])).toThrow(/not in tree/);
  });
});

describe('verifyReceiptProof', () => {
  const rs = randomReceipts(9, 12);
  const tree = buildReceiptTree(rs);
  const oz = (root: string, r: Receipt, proof: string[]) =>
    StandardMerkleTree.verify(root, [...RECEIPT_LEAF_ENCODING], [...receiptLeafValues(r)], proof);
  const outcome = (f: () => boolean) => {
    try {
      return f();
    } catch {
      return 'throws';
    }
  };

  test('answers as StandardMerkleTree.verify, tampered and malformed inputs included', () => {
    const proof = tree.getProof(4);
    const r = rs[4]!;
    const cases: [string, Receipt, string[]][] = [
      [tree.root, r, proof],
      [tree.root, { ...r, fee: r.fee ^ 1n }, proof],
      [tree.root, rs[3]!, proof],
      [tree.root, r, proof.slice(1)],
      [tree.root, r, [...proof].reverse()],
      [tree.root, r, [...proof, proof[0]!]],
      [tree.root.toUpperCase().replace('0X', '0x'), r, proof],
      [tree.root.slice(2), r, proof],
      [tree.root, r, proof.map((p) => p.slice(2))],
      [tree.root, r, proof.map((p) => p.toUpperCase().replace('0X', '0x'))],
      [`${tree.root}00`, r, proof],
      [tree.root.slice(0, 64), r, proof],
      ['0xzz', r, proof],
      [tree.root, r, [proof[0]!.slice(0, 64), ...proof.slice(1)]],
      [tree.root, r, ['0x1234']],
      [tree.root, r, []],
    ];
    for (const [root, receipt, p] of cases) {
      expect(outcome(() => verifyReceiptProof(root as Hex, receipt, p as Hex[]))).toBe(
        outcome(() => oz(root, receipt, p)),
      );
    }
    // a one-receipt tree: the root is the leaf, the proof empty
    const one = buildReceiptTree([r]);
    expect(one.getProof(0)).toEqual([]);
    expect(one.root).toBe(receiptLeafHash(r));
    expect(verifyReceiptProof(one.root, r, [])).toBe(true);
  });
});

describe('signReceiptDigest and recoverReceiptSigner', () => {
  const keys = randomReceipts(200, 13).map((r) => r.jobId);

  const check = async () => {
    const receipts = randomReceipts(keys.length, 14);
    for (const [i, key] of keys.entries()) {
      const account = privateKeyToAccount(key);
      const r = receipts[i]!;
      const chainId = CHAINS[i % CHAINS.length]!;
      const grid = GRIDS[i % GRIDS.length]!;
      const typed = receiptTypedData(r, chainId, grid);
      const viem = await account.signTypedData(typed);
      const digest = receiptDigest(r, chainId, grid);
      // byte-identical to viem's, whether the key and digest come as hex or bytes
      expect(await signReceiptDigest(key, digest)).toBe(viem);
      expect(await signReceiptDigest(key, Uint8Array.from(Buffer.from(digest.slice(2), 'hex')))).toBe(viem);
      expect(await recoverReceiptSigner(r, chainId, grid, viem)).toBe(account.address);
      expect(await recoverTypedDataSigner({ ...typed, signature: viem })).toBe(account.address);
    }
  };

  test('the native binding loads here', () => {
    expect(useNativeSecp256k1(true)).toBe(true);
  });

  test("native: byte-identical to viem's signTypedData for 200 random keys and receipts", check);

  test('JS fallback: byte-identical as well', async () => {
    expect(useNativeSecp256k1(false)).toBe(false);
    try {
      await check();
    } finally {
      expect(useNativeSecp256k1(true)).toBe(true);
    }
  });

  test('refuses a malformed key or digest', async () => {
    await expect(signReceiptDigest('0x1234', keccak256('0x'))).rejects.toThrow();
    await expect(signReceiptDigest(keys[0]!, '0x1234')).rejects.toThrow();
    await expect(signReceiptDigest(`0x${'00'.repeat(32)}`, keccak256('0x'))).rejects.toThrow();
  });

  test("malformed and re-encoded signatures: the answer (or the failure) is viem's, on both paths", async () => {
    const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
    const account = privateKeyToAccount(keys[1]!);
    const [r] = randomReceipts(1, 15) as [Receipt];
    const typed = receiptTypedData(r, 8453, GRIDS[0]!);
    const sig = await account.signTypedData(typed);
    const s = BigInt(`0x${sig.slice(66, 130)}`);
    const v = Number.parseInt(sig.slice(130), 16);
    const signatures: Hex[] = [
      sig,
      `${sig.slice(0, 130)}${(v - 27).toString(16).padStart(2, '0')}` as Hex,
      `0x${sig.slice(2, 66)}${(N - s).toString(16).padStart(64, '0')}${v === 27 ? '1c' : '1b'}`,
      '0x1234',
      `0x${'00'.repeat(64)}1b`,
      `${sig.slice(0, 130)}05` as Hex,
      `${sig.slice(0, 130)}02` as Hex,
      `0x${'ff'.repeat(64)}1c`,
      `${sig}00` as Hex,
      sig.slice(0, 130) as Hex,
    ];
    const settle = (p: Promise<Address>) =>
      p.then(
        (a) => a,
        () => 'throws',
      );
    for (const native of [true, false]) {
      useNativeSecp256k1(native);
      for (const signature of signatures) {
        const expected = await settle(recoverTypedDataAddress({ ...typed, signature }));
        expect(await settle(recoverReceiptSigner(r, 8453, GRIDS[0]!, signature))).toBe(expected);
        expect(await settle(recoverTypedDataSigner({ ...typed, signature }))).toBe(expected);
      }
    }
    useNativeSecp256k1(true);
    // a receipt that does not encode fails, as viem's hashTypedData does
    await expect(recoverReceiptSigner({ ...r, seq: -1n }, 8453, GRIDS[0]!, sig)).rejects.toThrow();
  });

  test('a digest signed is the receipt digest recovered (bytes in, hex out)', async () => {
    const [r] = randomReceipts(1, 16) as [Receipt];
    const sig = await signReceiptDigest(keys[2]!, receiptDigest(r, 1, GRIDS[1]!));
    expect(sig).toMatch(/^0x[0-9a-f]{128}(1b|1c)$/);
    expect(bytesToHex(Buffer.from(sig.slice(2), 'hex'))).toBe(sig);
    expect(await recoverReceiptSigner(r, 1, GRIDS[1]!, sig)).toBe(privateKeyToAccount(keys[2]!).address);
    expect(await recoverReceiptSigner(r, 2, GRIDS[1]!, sig)).not.toBe(privateKeyToAccount(keys[2]!).address);
  });
});

describe('requestHash and outputHash', () => {
  // The formulas as first written with viem's keccak256 (docs/DESIGN.md §4): the fast path must agree.
  const viemRequestHash = (ids: number[], p: SamplingParams, sampler: string) =>
    keccak256(
      concat([
        keccak256(tokenIdsToBytes(ids)),
        keccak256(toBytes(JSON.stringify([p.maxTokens, p.temperature, p.topP, p.seed, [...p.stop]]))),
        keccak256(toHex(sampler)),
      ]),
    );
  const viemOutputHash = (ids: number[], finish: 'stop' | 'length') =>
    keccak256(concat([keccak256(tokenIdsToBytes(ids)), keccak256(toHex(finish))]));

  test('equal the viem formulas over 1,000 random jobs (ids, parameters, samplers, finish reasons)', () => {
    for (let i = 0; i < 1_000; i++) {
      const ids = Array.from({ length: i % 300 }, () => Math.floor(Math.random() * 2 ** 32));
      const p: SamplingParams = {
        maxTokens: 1 + (i % 4096),
        temperature: Math.random() * 2,
        topP: Math.random(),
        seed: i % 3 === 0 ? null : Math.floor(Math.random() * 2 ** 48),
        stop: i % 5 === 0 ? [] : ['\n', `stop ${i}`, '✓ ünïcode'].slice(0, i % 4),
      };
      const sampler = i % 2 === 0 ? CANONICAL_SAMPLER : `engine-${i % 7}`;
      const finish = i % 2 === 0 ? 'stop' : 'length';
      expect(computeRequestHash(ids, p, sampler)).toBe(viemRequestHash(ids, p, sampler));
      expect(hashTokenIds(ids)).toBe(keccak256(tokenIdsToBytes(ids)));
      expect(computeOutputHash(ids, finish)).toBe(viemOutputHash(ids, finish));
    }
  });
});
