/**
 * Byte layout of an Intel TDX v4 DCAP quote (Intel's "TDX DCAP Quoting Library API", section A.3), used
 * by `SimulatedTee` to build quotes and by the verifier to read what `@phala/dcap-qvl` does not expose.
 *
 *   quote  = header (48) ‖ TD report body (584) ‖ u32le authDataSize ‖ authData
 *   auth   = signature (64, r‖s) ‖ attestation key (64, x‖y) ‖ certData(type 6 = QE report certification data)
 *   type 6 = QE report (384) ‖ QE report signature (64) ‖ u16le qeAuthSize ‖ qeAuth ‖ certData(type 5 = PEM chain)
 */

export const HEADER_LENGTH = 48;
export const TD_REPORT_LENGTH = 584;
export const ENCLAVE_REPORT_LENGTH = 384;
export const TEE_TYPE_TDX = 0x81;
export const ATTESTATION_KEY_TYPE_P256 = 2;
/** Intel's QE vendor id. */
export const INTEL_QE_VENDOR_ID = Uint8Array.from([
  0x93, 0x9a, 0x72, 0x33, 0xf7, 0x9c, 0x4c, 0xa9, 0x94, 0x0a, 0x0d, 0xb3, 0x95, 0x7f, 0x06, 0x07,
]);

/** Offsets in the TD report body (TDREPORT10). */
export const TD = {
  teeTcbSvn: 0,
  mrSeam: 16,
  mrSignerSeam: 64,
  seamAttributes: 112,
  tdAttributes: 120,
  xfam: 128,
  mrTd: 136,
  mrConfigId: 184,
  mrOwner: 232,
  mrOwnerConfig: 280,
  rtmr0: 328,
  rtmr1: 376,
  rtmr2: 424,
  rtmr3: 472,
  reportData: 520,
} as const;

/** Offsets in an SGX enclave report (the QE report). */
export const ENCLAVE = {
  cpuSvn: 0,
  miscSelect: 16,
  attributes: 48,
  mrEnclave: 64,
  mrSigner: 128,
  isvProdId: 256,
  isvSvn: 258,
  reportData: 320,
} as const;

/** Byte offset of REPORTDATA in a v4 TDX quote. */
export const QUOTE_REPORT_DATA_OFFSET = HEADER_LENGTH + TD.reportData;

/** TDATTRIBUTES byte 0 (TUD): bit 0 is DEBUG. Byte 3 bit 4 is SEPT_VE_DISABLE, which DCAP requires. */
export const TD_ATTRIBUTES_DEBUG = 0x01;
export const TD_ATTRIBUTES_SEPT_VE_DISABLE_BYTE3 = 0x10;

export function u16le(n: number): Uint8Array {
  const b = new Uint8Array(2);
  new DataView(b.buffer).setUint16(0, n, true);
  return b;
}

export function u32le(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

export function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return out;
}

/** Certification data: u16le type ‖ u32le size ‖ body. */
export function certificationData(type: number, body: Uint8Array): Uint8Array {
  return concat([u16le(type), u32le(body.length), body]);
}
