export {
  type AnnounceAuditConfigErrorType,
  type AnnounceAuditConfigParameters,
  type AnnounceAuditConfigReturnType,
  announceAuditConfig,
} from './actions/announceAuditConfig.ts';
export {
  type ApproveTokenErrorType,
  type ApproveTokenParameters,
  type ApproveTokenReturnType,
  approveToken,
} from './actions/approveToken.ts';
export { type BondErrorType, type BondParameters, type BondReturnType, bond } from './actions/bond.ts';
export {
  type CancelUnbondErrorType,
  type CancelUnbondParameters,
  type CancelUnbondReturnType,
  cancelUnbond,
} from './actions/cancelUnbond.ts';
export {
  type CommitVoteErrorType,
  type CommitVoteParameters,
  type CommitVoteReturnType,
  commitVote,
} from './actions/commitVote.ts';
export {
  type DecreaseGatewayCapErrorType,
  type DecreaseGatewayCapParameters,
  type DecreaseGatewayCapReturnType,
  decreaseGatewayCap,
} from './actions/decreaseGatewayCap.ts';
export {
  type DepositErrorType,
  type DepositParameters,
  type DepositReturnType,
  deposit,
} from './actions/deposit.ts';
export {
  type DepositWithPermitErrorType,
  type DepositWithPermitParameters,
  type DepositWithPermitReturnType,
  depositWithPermit,
} from './actions/depositWithPermit.ts';
export {
  type FinalizeAuditErrorType,
  type FinalizeAuditParameters,
  type FinalizeAuditReturnType,
  finalizeAudit,
} from './actions/finalizeAudit.ts';
export {
  type FixRandomnessErrorType,
  type FixRandomnessParameters,
  type FixRandomnessReturnType,
  fixRandomness,
} from './actions/fixRandomness.ts';
export {
  type BondStatus,
  type DepositStatus,
  type GetAccountStatusErrorType,
  type GetAccountStatusParameters,
  type GetAccountStatusReturnType,
  getAccountStatus,
} from './actions/getAccountStatus.ts';
export {
  type GetAssignedValidatorsErrorType,
  type GetAssignedValidatorsParameters,
  type GetAssignedValidatorsReturnType,
  getAssignedValidators,
} from './actions/getAssignedValidators.ts';
export {
  type GetAuditErrorType,
  type GetAuditParameters,
  type GetAuditReturnType,
  getAudit,
} from './actions/getAudit.ts';
export {
  type GetBatchAuditErrorType,
  type GetBatchAuditParameters,
  type GetBatchAuditReturnType,
  getBatchAudit,
} from './actions/getBatchAudit.ts';
export {
  type GetBondErrorType,
  type GetBondParameters,
  type GetBondReturnType,
  getBond,
} from './actions/getBond.ts';
export {
  type GetGovernanceErrorType,
  type GetGovernanceParameters,
  type GetGovernanceReturnType,
  getGovernance,
} from './actions/getGovernance.ts';
export {
  type GetGridParamsErrorType,
  type GetGridParamsParameters,
  type GetGridParamsReturnType,
  getGridParams,
} from './actions/getGridParams.ts';
export {
  type GetModelErrorType,
  type GetModelParameters,
  type GetModelReturnType,
  getModel,
} from './actions/getModel.ts';
export {
  type GetNextReceiptSeqErrorType,
  type GetNextReceiptSeqParameters,
  type GetNextReceiptSeqReturnType,
  getNextReceiptSeq,
} from './actions/getNextReceiptSeq.ts';
export {
  type FacetCutChange,
  type GetPendingChangesErrorType,
  type GetPendingChangesParameters,
  type GetPendingChangesReturnType,
  getPendingChanges,
  type PendingChange,
  type PendingChangeContent,
} from './actions/getPendingChanges.ts';
export {
  type IncreaseBondErrorType,
  type IncreaseBondParameters,
  type IncreaseBondReturnType,
  increaseBond,
} from './actions/increaseBond.ts';
export {
  type IncreaseGatewayCapErrorType,
  type IncreaseGatewayCapParameters,
  type IncreaseGatewayCapReturnType,
  increaseGatewayCap,
} from './actions/increaseGatewayCap.ts';
export {
  type IsAuditedErrorType,
  type IsAuditedParameters,
  type IsAuditedReturnType,
  isAudited,
} from './actions/isAudited.ts';
export {
  type ListModelsErrorType,
  type ListModelsParameters,
  type ListModelsReturnType,
  listModels,
} from './actions/listModels.ts';
export {
  type RegisterModelErrorType,
  type RegisterModelParameters,
  type RegisterModelReturnType,
  registerModel,
} from './actions/registerModel.ts';
export {
  type ReportGatewayFaultErrorType,
  type ReportGatewayFaultParameters,
  type ReportGatewayFaultReturnType,
  reportGatewayFault,
} from './actions/reportGatewayFault.ts';
export {
  type RequestDepositWithdrawalErrorType,
  type RequestDepositWithdrawalParameters,
  type RequestDepositWithdrawalReturnType,
  requestDepositWithdrawal,
} from './actions/requestDepositWithdrawal.ts';
export {
  type RequestUnbondErrorType,
  type RequestUnbondParameters,
  type RequestUnbondReturnType,
  requestUnbond,
} from './actions/requestUnbond.ts';
export {
  type RevealVoteErrorType,
  type RevealVoteParameters,
  type RevealVoteReturnType,
  revealVote,
} from './actions/revealVote.ts';
export {
  type SetAuditConfigErrorType,
  type SetAuditConfigParameters,
  type SetAuditConfigReturnType,
  setAuditConfig,
} from './actions/setAuditConfig.ts';
export {
  type SetOperatorErrorType,
  type SetOperatorParameters,
  type SetOperatorReturnType,
  setOperator,
} from './actions/setOperator.ts';
export {
  type SettleBatchErrorType,
  type SettleBatchParameters,
  type SettleBatchReturnType,
  settleBatch,
} from './actions/settleBatch.ts';
export {
  type SetWorkerAuditRateErrorType,
  type SetWorkerAuditRateParameters,
  type SetWorkerAuditRateReturnType,
  setWorkerAuditRate,
} from './actions/setWorkerAuditRate.ts';
export {
  type WithdrawBondErrorType,
  type WithdrawBondParameters,
  type WithdrawBondReturnType,
  withdrawBond,
} from './actions/withdrawBond.ts';
export {
  type WithdrawDepositErrorType,
  type WithdrawDepositParameters,
  type WithdrawDepositReturnType,
  withdrawDeposit,
} from './actions/withdrawDeposit.ts';
export {
  type WithdrawEarningsErrorType,
  type WithdrawEarningsParameters,
  type WithdrawEarningsReturnType,
  withdrawEarnings,
} from './actions/withdrawEarnings.ts';
export {
  ANVIL_TEST_MNEMONIC,
  anvilBinaryPath,
  anvilTestAccounts,
  type StartAnvilParameters,
  type StartAnvilReturnType,
  startAnvil,
} from './anvil.ts';
export {
  type CreateGridClientsParameters,
  type CreateGridClientsReturnType,
  chainFor,
  createGridClients,
  type GridWalletClient,
  type ReadClient,
  type WriteClient,
} from './client.ts';
export {
  type DeployGridClients,
  type DeployGridParameters,
  type DeployGridReturnType,
  defaultGridParams,
  deployGrid,
  type InitArgs,
  reactionMargin,
  type VrfRandomnessParameters,
} from './deploy.ts';
export {
  type AuditParams,
  type Deployment,
  type GridParams,
  type GridParamsOverrides,
  type Network,
  parseDeployment,
  readDeployment,
  serializeDeployment,
  writeDeployment,
} from './deployment.ts';
export { type StartDevChainParameters, type StartDevChainReturnType, startDevChain } from './devchain.ts';
export {
  ChainError,
  type ChainErrorCode,
  type ChainErrorParameters,
  type DecodedRevert,
  decodeRevert,
  formatErrorArg,
  toChainError,
} from './errors.ts';
export { artifacts, facetNames, gridAbi, testAipgAbi } from './generated/abis.ts';
export { type AuditVerdict, type AuditVote, auditVoteToUint } from './internal/audit.ts';
export { type BondRole, bondRoles, isBondRole, roleToUint } from './internal/role.ts';
export type { TransactionResult } from './internal/write.ts';
export {
  decryptKeystore,
  type EncryptKeystoreParameters,
  encryptKeystore,
  type KeystoreV3,
} from './keystore.ts';
export {
  encodeGatewayFaultReason,
  gatewayFaultReason,
  isGatewayFaultReason,
} from './utils/gatewayFaultReason.ts';
export { type VoteCommitmentParameters, voteCommitment } from './utils/voteCommitment.ts';
