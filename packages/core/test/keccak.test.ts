import { randomBytes } from 'node:crypto';
import { bytesToHex, keccak256, stringToBytes } from 'viem';
import { describe, expect, test } from 'vitest';
import { keccak256Bytes } from '../src/keccak.ts';

// Our unrolled keccak256 against viem's (@noble/hashes' keccak_256): every length across the first
// five 136-byte blocks (each padding case: a partial block, an exact block, one byte into the next),
// several random inputs each, and long inputs.

const noble = (data: Uint8Array) => keccak256(data, 'hex');

describe('keccak256Bytes', () => {
  test('known vectors', () => {
    expect(bytesToHex(keccak256Bytes(new Uint8Array(0)))).toBe(
      '0xc5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470',
    );
    expect(bytesToHex(keccak256Bytes(stringToBytes('abc')))).toBe(
      '0x4e03657aea45a94fc7d47ba826c8d667c0d1e6e33a64a036ec44f58fa12d6c45',
    );
  });

  test("every length from 0 to 700 bytes, random contents: noble's answer", () => {
    for (let n = 0; n <= 700; n++) {
      for (let k = 0; k < 4; k++) {
        const data = new Uint8Array(randomBytes(n));
        expect(bytesToHex(keccak256Bytes(data)), `length ${n}`).toBe(noble(data));
      }
    }
  });

  test('all-0xff and all-zero blocks, long inputs, subarrays, and calls that do not leak into each other', () => {
    for (const n of [135, 136, 137, 271, 272, 273, 416, 448, 10_000, 100_003]) {
      for (const fill of [0, 0xff]) {
        const data = new Uint8Array(n).fill(fill);
        expect(bytesToHex(keccak256Bytes(data))).toBe(noble(data));
      }
    }
    const big = new Uint8Array(randomBytes(5000));
    expect(bytesToHex(keccak256Bytes(big.subarray(17, 4000)))).toBe(noble(big.subarray(17, 4000)));
    const a = new Uint8Array(randomBytes(300));
    const first = bytesToHex(keccak256Bytes(a));
    keccak256Bytes(new Uint8Array(1000).fill(7));
    expect(bytesToHex(keccak256Bytes(a))).toBe(first);
    // the input is not modified
    const copy = a.slice();
    keccak256Bytes(a);
    expect(a).toEqual(copy);
  });
});
