import { BaseError } from '@aipg/core';

/**
 * Worker error codes. Stable: documented in packages/worker/README.md, never reused for another
 * meaning. Start-up errors stop the process with their one-line `shortMessage`; job codes travel
 * to the gateway in `job-error` frames.
 */
export const WorkerErrorCode = {
  // start-up
  configInvalid: 'WORKER_CONFIG_INVALID',
  keystoreInvalid: 'WORKER_KEYSTORE_INVALID',
  chainMismatch: 'WORKER_CHAIN_MISMATCH',
  noGpu: 'WORKER_NO_GPU',
  vramTooLow: 'WORKER_VRAM_TOO_LOW',
  bondMissing: 'WORKER_BOND_MISSING',
  bondTooLow: 'WORKER_BOND_TOO_LOW',
  bondUnbonding: 'WORKER_BOND_UNBONDING',
  modelNotRegistered: 'WORKER_MODEL_NOT_REGISTERED',
  modelInactive: 'WORKER_MODEL_INACTIVE',
  modelHashMismatch: 'WORKER_MODEL_HASH_MISMATCH',
  modelNotText: 'WORKER_MODEL_NOT_TEXT',
  // jobs (sent in `job-error` frames)
  busy: 'WORKER_BUSY',
  draining: 'WORKER_DRAINING',
  modelNotServed: 'WORKER_MODEL_NOT_SERVED',
  backendFailed: 'WORKER_BACKEND_FAILED',
  jobCancelled: 'WORKER_JOB_CANCELLED',
  disconnected: 'WORKER_DISCONNECTED',
  /**
   * The job's receipt number (`seq`) was already accepted or signed for this gateway: signing it again
   * would let one number be settled for two jobs. A protocol error of the gateway; never retried here.
   */
  seqReused: 'WORKER_SEQ_REUSED',
  /**
   * The job's `promptTokenIds` fall outside the model's vocabulary: no worker of the model can run
   * them (a gateway bug). Never retried; no receipt.
   */
  promptInvalid: 'PROMPT_TOKENS_INVALID',
  /**
   * This worker's backend cannot run the job's `promptTokenIds` exactly (Ollama tokenizes the
   * rendered prompt itself, and its ids differ): retryable, another worker may. No receipt.
   */
  promptMismatch: 'PROMPT_TOKENS_MISMATCH',
  /** A confidential job for a worker (or a backend) that runs in no TEE / has no tokenizer in the enclave. */
  teeUnavailable: 'WORKER_TEE_UNAVAILABLE',
  /**
   * A confidential job's sealed request does not open here or is not a valid chat request: the client's
   * doing (the gateway cannot read it), answered as a 400 and never counted against the worker.
   */
  sealedRequestInvalid: 'SEALED_REQUEST_INVALID',
  // score jobs (validators' cross-checks)
  /** The model's backend cannot score (not the embedded llama.cpp one): another worker may. */
  scoreUnsupported: 'SCORE_UNSUPPORTED',
  /** The ids cannot be scored with this model (outside its vocabulary): no worker of it can. */
  scoreInvalid: 'WORKER_SCORE_INVALID',
} as const;
export type WorkerErrorCode = (typeof WorkerErrorCode)[keyof typeof WorkerErrorCode];

/** A configuration the worker cannot start with (bad flag, unreadable config file, missing key). */
export class WorkerConfigError extends BaseError {
  override name = 'WorkerConfigError';
  constructor(message: string, options: { details?: string; cause?: unknown; code?: WorkerErrorCode } = {}) {
    super(message, {
      code: options.code ?? WorkerErrorCode.configInvalid,
      details: options.details,
      cause: options.cause,
    });
  }
}

/** The machine does not meet the hardware rule of the network it joins. */
export class HardwareRequirementError extends BaseError {
  override name = 'HardwareRequirementError';
  constructor(message: string, code: typeof WorkerErrorCode.noGpu | typeof WorkerErrorCode.vramTooLow) {
    super(message, { code });
  }
}

/** The operator's bond is missing, below the minimum or fully unbonding. */
export class BondRequirementError extends BaseError {
  override name = 'BondRequirementError';
  constructor(
    message: string,
    code:
      | typeof WorkerErrorCode.bondMissing
      | typeof WorkerErrorCode.bondTooLow
      | typeof WorkerErrorCode.bondUnbonding,
  ) {
    super(message, { code });
  }
}

/** A served model is not registered, not active, or registered with other weights. */
export class ModelRegistryError extends BaseError {
  override name = 'ModelRegistryError';
  constructor(
    message: string,
    code:
      | typeof WorkerErrorCode.modelNotRegistered
      | typeof WorkerErrorCode.modelInactive
      | typeof WorkerErrorCode.modelHashMismatch
      | typeof WorkerErrorCode.modelNotText,
  ) {
    super(message, { code });
  }
}

/** The RPC's chain, or the gateway's, is not the one this worker was configured for. */
export class ChainMismatchError extends BaseError {
  override name = 'ChainMismatchError';
  constructor(message: string) {
    super(message, { code: WorkerErrorCode.chainMismatch });
  }
}
