import { BaseError, JobErrorCode } from '@aipg/core';

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
  // jobs: the codes of `job-error` frames, defined with the protocol (@aipg/core)
  ...JobErrorCode,
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
