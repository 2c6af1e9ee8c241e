import { type Hex, recoverTypedDataAddress, toHex } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, describe, expect, test } from 'vitest';
import { type Receipt, receiptTypedData, recoverTypedDataSigner, useNativeSecp256k1 } from '../src/index.ts';

// libsecp256k1 (the `secp256k1` package's prebuilt binding) must name exactly the signer viem's JS
// recovery names, for every form a signature can come in, or fail as viem fails.

const N = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n;
const GRID = '0x00000000000000000000000000000000000000aa' as const;

function receipt(i: number): Receipt {
  return {
    jobId: toHex(i, { size: 32 }),
    gateway: '0x0000000000000000000000000000000000000001',
    payer: '0x0000000000000000000000000000000000000002',
    worker: '0x0000000000000000000000000000000000000003',
    modelId: toHex(7, { size: 32 }),
    requestHash: toHex(8, { size: 32 }),
    outputHash: toHex(9, { size: 32 }),
    inputUnits: BigInt(i),
    outputUnits: 4n,
    fee: 1_000n + BigInt(i),
    completedAt: 1_790_000_000n,
    confidential: false,
    seq: BigInt(i),
  };
}

/** The same signature with v as 0/1 instead of 27/28, and with s replaced by n − s (recovery bit flipped). */
function reencodings(sig: Hex): Hex[] {
  const r = sig.slice(2, 66);
  const s = BigInt(`0x${sig.slice(66, 130)}`);
  const v = Number.parseInt(sig.slice(130, 132), 16);
  const highS = (N - s).toString(16).padStart(64, '0');
  const flipped = v === 27 ? 28 : 27;
  return [
    `0x${r}${sig.slice(66, 130)}${(v - 27).toString(16).padStart(2, '0')}`,
    `0x${r}${highS}${flipped.toString(16)}`,
  ];
}

afterAll(() => {
  useNativeSecp256k1(true);
});

describe('recoverTypedDataSigner', () => {
  test('the native binding loads here', () => {
    expect(useNativeSecp256k1(true)).toBe(true);
  });

  test('names the same signer as viem for 200 receipts and their re-encodings', async () => {
    for (let i = 0; i < 200; i++) {
      const account = privateKeyToAccount(generatePrivateKey());
      const typed = receiptTypedData(receipt(i), 8453, GRID);
      const signature = await account.signTypedData(typed);
      expect(await recoverTypedDataSigner({ ...typed, signature })).toBe(account.address);
      for (const other of reencodings(signature)) {
        const expected = await recoverTypedDataAddress({ ...typed, signature: other });
        expect(await recoverTypedDataSigner({ ...typed, signature: other })).toBe(expected);
      }
    }
  });

  test('malformed signatures fail as viem fails; the JS path answers the same', async () => {
    const account = privateKeyToAccount(generatePrivateKey());
    const typed = receiptTypedData(receipt(1), 8453, GRID);
    const signature = await account.signTypedData(typed);
    const bad: Hex[] = [
      '0x1234',
      `0x${'00'.repeat(64)}1b`,
      `${signature.slice(0, 130)}05` as Hex,
      `0x${'ff'.repeat(64)}1c`,
    ];
    for (const s of bad) {
      const viem = await recoverTypedDataAddress({ ...typed, signature: s }).then(
        (a) => a,
        () => 'throws',
      );
      const ours = await recoverTypedDataSigner({ ...typed, signature: s }).then(
        (a) => a,
        () => 'throws',
      );
      expect(ours).toBe(viem);
    }
    expect(useNativeSecp256k1(false)).toBe(false);
    expect(await recoverTypedDataSigner({ ...typed, signature })).toBe(account.address);
    expect(useNativeSecp256k1(true)).toBe(true);
  });
});
