export {
  type ApproveGatewayErrorType,
  type ApproveGatewayParameters,
  type ApproveGatewayReturnType,
  approveGateway,
} from './actions/approveGateway.ts';
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
  type BondStatus,
  type DepositStatus,
  type GetAccountStatusErrorType,
  type GetAccountStatusParameters,
  type GetAccountStatusReturnType,
  getAccountStatus,
} from './actions/getAccountStatus.ts';
export {
  type GetBondErrorType,
  type GetBondParameters,
  type GetBondReturnType,
  getBond,
} from './actions/getBond.ts';
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
  type IncreaseBondErrorType,
  type IncreaseBondParameters,
  type IncreaseBondReturnType,
  increaseBond,
} from './actions/increaseBond.ts';
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
} from './deploy.ts';
export {
  type Deployment,
  type GridParams,
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
export { type BondRole, bondRoles, isBondRole, roleToUint } from './internal/role.ts';
export type { TransactionResult } from './internal/write.ts';
export {
  decryptKeystore,
  type EncryptKeystoreParameters,
  encryptKeystore,
  type KeystoreV3,
} from './keystore.ts';
