import { type Hex, hexToBytes, isHex, stringToHex } from 'viem';

/** Printable ASCII (space to tilde), 1 to 31 characters: what `encodeGatewayFaultReason` accepts. */
const CODE = /^[\x20-\x7e]{1,31}$/;

/** Whether `code` can be a gateway fault's reason (1 to 31 printable ASCII characters). */
export function isGatewayFaultReason(code: string): boolean {
  return CODE.test(code);
}

/**
 * The `bytes32` reason `reportGatewayFault` takes for a reason code (`"RECEIPT_REQUEST_HASH"`): its ASCII
 * bytes, left-aligned and zero-padded (viem's `stringToHex(code, { size: 32 })`). Throws a `RangeError` for
 * anything but 1 to 31 printable ASCII characters (so the padding always ends it and it never reads as 0).
 */
export function encodeGatewayFaultReason(code: string): Hex {
  if (!CODE.test(code)) {
    throw new RangeError(
      `a gateway fault reason is 1 to 31 printable ASCII characters, got ${JSON.stringify(code)}`,
    );
  }
  return stringToHex(code, { size: 32 });
}

/**
 * The reason code of a `GatewayFaultReported` event's `bytes32 reason`, for indexers and people: the ASCII
 * text when the word is 1 to 32 printable ASCII characters followed only by zero bytes (what
 * `encodeGatewayFaultReason` writes), else the word itself as lowercase hex (any validator may send any
 * non-zero word, so this never throws).
 */
export function gatewayFaultReason(reason: Hex): string {
  if (!isHex(reason) || reason.length !== 66) return String(reason).toLowerCase();
  const bytes = hexToBytes(reason);
  let end = bytes.length;
  while (end > 0 && bytes[end - 1] === 0) end--;
  if (end === 0) return reason.toLowerCase();
  let text = '';
  for (let i = 0; i < end; i++) {
    const b = bytes[i]!;
    if (b < 0x20 || b > 0x7e) return reason.toLowerCase();
    text += String.fromCharCode(b);
  }
  return text;
}
