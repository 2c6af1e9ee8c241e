/**
 * A minimal DER encoder: just enough to build the Intel SGX extension of a simulated PCK certificate
 * (SEQUENCE, OBJECT IDENTIFIER, OCTET STRING, INTEGER, ENUMERATED). Not a general ASN.1 library.
 */

function encodeLength(length: number): Uint8Array {
  if (length < 0x80) return Uint8Array.of(length);
  const bytes: number[] = [];
  for (let n = length; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  return Uint8Array.of(0x80 | bytes.length, ...bytes);
}

function tlv(tag: number, content: Uint8Array): Uint8Array {
  const length = encodeLength(content.length);
  const out = new Uint8Array(1 + length.length + content.length);
  out[0] = tag;
  out.set(length, 1);
  out.set(content, 1 + length.length);
  return out;
}

function concatBytes(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** SEQUENCE of already-encoded elements. */
export function derSequence(...elements: Uint8Array[]): Uint8Array {
  return tlv(0x30, concatBytes(elements));
}

/** OBJECT IDENTIFIER from dotted notation. */
export function derOid(oid: string): Uint8Array {
  const arcs = oid.split('.').map((a) => Number.parseInt(a, 10));
  if (arcs.length < 2 || arcs.some((a) => !Number.isSafeInteger(a) || a < 0)) {
    throw new Error(`invalid OID ${oid}`);
  }
  const [first, second, ...rest] = arcs as [number, number, ...number[]];
  const bytes: number[] = [];
  for (const arc of [first * 40 + second, ...rest]) {
    const chunk: number[] = [arc & 0x7f];
    for (let n = Math.floor(arc / 128); n > 0; n = Math.floor(n / 128)) chunk.unshift(0x80 | (n & 0x7f));
    bytes.push(...chunk);
  }
  return tlv(0x06, Uint8Array.from(bytes));
}

/** OCTET STRING. */
export function derOctetString(bytes: Uint8Array): Uint8Array {
  return tlv(0x04, bytes);
}

function unsignedBytes(value: number): Uint8Array {
  if (!Number.isSafeInteger(value) || value < 0) throw new Error(`invalid unsigned integer ${value}`);
  const bytes: number[] = [];
  for (let n = value; n > 0; n = Math.floor(n / 256)) bytes.unshift(n & 0xff);
  if (bytes.length === 0 || (bytes[0]! & 0x80) !== 0) bytes.unshift(0);
  return Uint8Array.from(bytes);
}

/** INTEGER (non-negative). */
export function derInteger(value: number): Uint8Array {
  return tlv(0x02, unsignedBytes(value));
}

/** ENUMERATED (non-negative). */
export function derEnumerated(value: number): Uint8Array {
  return tlv(0x0a, unsignedBytes(value));
}
