import { type Hex, pad, stringToHex } from 'viem';
import { describe, expect, test } from 'vitest';
import { encodeGatewayFaultReason, gatewayFaultReason, isGatewayFaultReason } from './gatewayFaultReason.ts';

describe('gateway fault reasons', () => {
  test('a code is its ASCII bytes, left-aligned and zero-padded, and decodes back', () => {
    const hex = encodeGatewayFaultReason('RECEIPT_REQUEST_HASH');
    expect(hex).toBe(stringToHex('RECEIPT_REQUEST_HASH', { size: 32 }));
    expect(hex).toMatch(/^0x524543454950545f524551554553545f48415348(00)+$/);
    expect(hex).toHaveLength(66);
    for (const code of ['PROMPT_MISMATCH', 'FEE_MISMATCH', 'X', 'a'.repeat(31), 'with space ~!']) {
      expect(gatewayFaultReason(encodeGatewayFaultReason(code))).toBe(code);
    }
  });

  test('refuses empty, too long and non-ASCII codes', () => {
    for (const bad of ['', 'a'.repeat(32), 'PROMPT\u00e9', 'tab\there', 'nul\u0000']) {
      expect(isGatewayFaultReason(bad)).toBe(false);
      expect(() => encodeGatewayFaultReason(bad)).toThrow(RangeError);
    }
  });

  test('a word that is not a clean code decodes to its hex, never throws', () => {
    const zero = pad('0x', { size: 32 });
    expect(gatewayFaultReason(zero)).toBe(zero);
    const rightAligned = pad(stringToHex('FEE_MISMATCH'), { size: 32 }); // zeros first
    expect(gatewayFaultReason(rightAligned)).toBe(rightAligned);
    const binary = `0x${'ff'.repeat(32)}` as Hex;
    expect(gatewayFaultReason(binary)).toBe(binary);
    const gap = `${stringToHex('AB')}00${stringToHex('CD').slice(2)}${'00'.repeat(27)}` as Hex;
    expect(gatewayFaultReason(gap)).toBe(gap);
    expect(gatewayFaultReason('0xABCD' as Hex)).toBe('0xabcd');
    // 32 printable characters fill the word: still a code
    expect(gatewayFaultReason(stringToHex('b'.repeat(32)))).toBe('b'.repeat(32));
  });
});
