import { BaseError } from '@aipg/core';

/**
 * Validator error codes. Stable: documented in packages/validator/README.md, never reused for
 * another meaning. Start-up errors stop the process with their one-line `shortMessage`.
 */
export const ValidatorErrorCode = {
  // start-up
  configInvalid: 'VALIDATOR_CONFIG_INVALID',
  chainMismatch: 'VALIDATOR_CHAIN_MISMATCH',
  bondMissing: 'VALIDATOR_BOND_MISSING',
  bondInactive: 'VALIDATOR_BOND_INACTIVE',
  stateFile: 'VALIDATOR_STATE_FILE',
  // one audit (the validator abstains: no attestation is sent)
  modelUnavailable: 'VALIDATOR_MODEL_UNAVAILABLE',
  weightsMismatch: 'VALIDATOR_WEIGHTS_MISMATCH',
  evidenceInvalid: 'VALIDATOR_EVIDENCE_INVALID',
  gatewayError: 'VALIDATOR_GATEWAY_ERROR',
  scorerError: 'VALIDATOR_SCORER_ERROR',
  judgeInput: 'VALIDATOR_JUDGE_INPUT',
} as const;
export type ValidatorErrorCode = (typeof ValidatorErrorCode)[keyof typeof ValidatorErrorCode];

export class ValidatorError extends BaseError {
  override name = 'ValidatorError';
  declare readonly code: ValidatorErrorCode;
  constructor(
    message: string,
    options: { code: ValidatorErrorCode; details?: string; cause?: unknown; retryable?: boolean },
  ) {
    super(message, options);
  }
}

/** A configuration the validator cannot start with (bad flag, unreadable key or state file). */
export class ValidatorConfigError extends ValidatorError {
  override name = 'ValidatorConfigError';
  constructor(message: string, options: { details?: string; cause?: unknown } = {}) {
    super(message, { code: ValidatorErrorCode.configInvalid, ...options });
  }
}
