export {
  type CrosscheckCheckerOptions,
  createCrosscheckChecker,
  inconsistency,
} from './checkers/crosscheck.ts';
export { createModelFiles, type ModelFiles, type ModelFilesOptions } from './checkers/models.ts';
export { createReexecuteChecker, type ReexecuteCheckerOptions } from './checkers/reexecute.ts';
export {
  type AuditModel,
  CHECKER_MODES,
  type Checker,
  type CheckerMode,
  type CheckRequest,
  type CheckResult,
  crosscheckTopK,
  FULL_DISTRIBUTION_MAX_VOCAB,
  PARTIAL_TOP_K,
  scoringTopK,
} from './checkers/types.ts';
export { type RunValidatorStartDependencies, runValidatorStart } from './cli.ts';
export { ValidatorConfigError, ValidatorError, ValidatorErrorCode } from './errors.ts';
export {
  AUDIT_HEADERS,
  type AuditBatch,
  type AuditBatchReceipt,
  type AuditClient,
  type AuditClientOptions,
  type AuditJobEvidence,
  auditRequestMessage,
  createAuditClient,
  type ScoreRequest,
  type ScoreResponse,
} from './gateway/client.ts';
export { canonicalJson, evidenceHash } from './judge/evidence.ts';
export {
  commitmentFaults,
  type Fault,
  HardReason,
  type HardReasonCode,
  type JudgeInput,
  type JudgeJob,
  type JudgeModelInfo,
  type JudgeScores,
  type JudgeStats,
  judge,
  MAX_POSITIONS_PER_CODE,
  REASON_FAULT,
  type Reason,
  type Sampling,
  type Soft,
  SoftSignal,
  type SoftSignalCode,
  type Verdict,
} from './judge/judge.ts';
export type { ScoredPosition, TopToken } from './judge/position.ts';
export { DEFAULT_THRESHOLDS, type JudgeThresholds } from './judge/thresholds.ts';
export {
  type CreateValidatorChainParameters,
  createValidatorChain,
  type ValidatorChain,
  type WriteOutcome,
} from './node/chain.ts';
export type { ValidatorMetrics } from './node/metrics.ts';
export {
  createValidatorOptions,
  type FinalizeMode,
  type GatewayEndpoint,
  NETWORKS,
  parseGateways,
  VALIDATOR_DEFAULTS,
  VALIDATOR_ENV,
  type ValidatorEnv,
  type ValidatorFlags,
  type ValidatorOptions,
} from './node/options.ts';
export { openStateStore, type StateStore, type ValidatorState as ValidatorStateFile } from './node/state.ts';
export {
  type CreateValidatorParameters,
  checkValidatorBond,
  createValidator,
  createValidatorCommon,
  NodeGatewayFault,
  type StartValidatorDependencies,
  startValidator,
  type Validator,
  type ValidatorCommon,
  type ValidatorStatus,
} from './node/validator.ts';
