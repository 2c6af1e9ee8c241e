/** Why evidence was refused; each check of `verifyEvidence` has its own code (docs/confidential.md "Evidence"). */
export type AttestationErrorCode =
  | 'malformed'
  | 'quote_invalid'
  | 'collateral_expired'
  | 'tcb_status'
  | 'debug'
  | 'measurement'
  | 'report_data'
  | 'nonce'
  | 'gpu_token'
  | 'gpu_result'
  | 'gpu_nonce'
  | 'stale';

/** Evidence failed a check. `code` says which; the message says why, without any secret. */
export class AttestationError extends Error {
  override readonly name = 'AttestationError';
  readonly code: AttestationErrorCode;

  constructor(code: AttestationErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.code = code;
  }
}

/** An HPKE envelope or a sealed response chunk failed to open (wrong key, digest, aad, order or bytes). */
export class EnvelopeError extends Error {
  override readonly name = 'EnvelopeError';
}
