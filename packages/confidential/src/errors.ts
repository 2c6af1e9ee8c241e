/** Why a confidential request was not sent, or its answer not accepted. */
export type ConfidentialErrorCode =
  /** The gateway lists no attested worker for the model. Nothing was sent. */
  | 'no_attested_worker'
  /** No listed worker's evidence verifies under the client's anchors and policy. Nothing was sent. */
  | 'verification_failed'
  /** A sealed response chunk does not open (tampered, reordered, or under another key). */
  | 'decrypt_failed'
  /** The answer is not what the protocol says (missing/out-of-order/truncated chunks, bad JSON). */
  | 'bad_response'
  /** Plaintext where ciphertext must be: an unsealed answer, or a request body that cannot be sealed. */
  | 'plaintext_refused';

/** One listed worker's failed verification. `code` is an `AttestationErrorCode`, or `signer_mismatch`/`malformed`. */
export type WorkerFailure = { worker: string; code: string; message: string };

/** A confidential request refused by the client. Never carries the prompt or the answer. */
export class ConfidentialError extends Error {
  override readonly name = 'ConfidentialError';
  readonly code: ConfidentialErrorCode;
  /** For 'verification_failed': why each worker was refused. */
  readonly failures: readonly WorkerFailure[];

  constructor(
    code: ConfidentialErrorCode,
    message: string,
    options: { failures?: WorkerFailure[]; cause?: unknown } = {},
  ) {
    super(`${code}: ${message}`, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.failures = options.failures ?? [];
  }
}
