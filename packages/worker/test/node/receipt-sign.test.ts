import { type Receipt, receiptTypedData, recoverTypedDataSigner, useNativeSecp256k1 } from '@aipg/core';
import { type Hex, keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, describe, expect, test } from 'vitest';
import { operatorAccount, signReceipt } from '../../src/jobs/receipt.ts';

// The worker signs every receipt with libsecp256k1 (through its operator account's remembered key):
// the signature must be byte for byte the one viem's `signTypedData` gives, or the gateway and the
// contract would see another signer (or none).

const GRID = '0x5FbDB2315678afecb367f032d93F642f64180aa3' as const;

function receipt(i: number): Receipt {
  const h = (tag: string) => keccak256(toHex(`${tag}${i}`));
  return {
    jobId: h('job'),
    gateway: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    payer: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
    worker: '0x90F79bf6EB2c4f870365E785982E1f101E93b906',
    modelId: h('model'),
    requestHash: h('request'),
    outputHash: h('output'),
    inputUnits: BigInt(i * 7),
    outputUnits: BigInt(i * 3),
    fee: 10n ** 15n * BigInt(i + 1),
    completedAt: 1_790_000_000n + BigInt(i),
    confidential: i % 3 === 0,
    seq: BigInt(i),
  };
}

afterAll(() => {
  useNativeSecp256k1(true);
});

describe('signReceipt', () => {
  test("an operator account signs byte for byte as viem's signTypedData, natively and on the JS path", async () => {
    for (const native of [true, false]) {
      expect(useNativeSecp256k1(native)).toBe(native);
      for (let i = 0; i < 100; i++) {
        const key = keccak256(toHex(`operator key ${i}`));
        const account = operatorAccount(key);
        const viem = privateKeyToAccount(key);
        expect(account.address).toBe(viem.address);
        const r = receipt(i);
        const chainId = i % 2 === 0 ? 8453 : 31337;
        const expected = await viem.signTypedData(receiptTypedData(r, chainId, GRID));
        const signature = await signReceipt(account, r, chainId, GRID);
        expect(signature).toBe(expected);
        expect(await recoverTypedDataSigner({ ...receiptTypedData(r, chainId, GRID), signature })).toBe(
          account.address,
        );
      }
    }
    useNativeSecp256k1(true);
  });

  test('any other account still signs through its own signTypedData', async () => {
    const key = keccak256(toHex('another key'));
    const plain = privateKeyToAccount(key);
    let called = 0;
    const spy = {
      ...plain,
      signTypedData: ((p) => {
        called++;
        return plain.signTypedData(p);
      }) as typeof plain.signTypedData,
    };
    const sig = await signReceipt(spy, receipt(1), 8453, GRID);
    expect(called).toBe(1);
    expect(sig).toBe(await operatorAccount(key).signTypedData(receiptTypedData(receipt(1), 8453, GRID)));
    expect(await signReceipt(operatorAccount(key), receipt(1), 8453, GRID)).toBe(sig);
  });

  test('the key is nowhere on the account (logs and serializations cannot carry it)', () => {
    const key = keccak256(toHex('secret key')) as Hex;
    const account = operatorAccount(key);
    const text = JSON.stringify(account);
    expect(text).not.toContain(key.slice(2));
    for (const k of Reflect.ownKeys(account)) {
      const v = (account as unknown as Record<PropertyKey, unknown>)[k];
      if (typeof v === 'string') expect(v).not.toContain(key.slice(2));
      if (v instanceof Uint8Array) expect(toHex(v)).not.toBe(key);
    }
  });

  test('a receipt that does not encode is refused, as viem refuses it', async () => {
    const account = operatorAccount(keccak256(toHex('k')));
    const bad = { ...receipt(2), seq: 2n ** 64n };
    await expect(signReceipt(account, bad, 8453, GRID)).rejects.toThrow();
    await expect(
      privateKeyToAccount(keccak256(toHex('k'))).signTypedData(receiptTypedData(bad, 8453, GRID)),
    ).rejects.toThrow();
  });
});
