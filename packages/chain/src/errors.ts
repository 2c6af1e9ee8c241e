import { BaseError, formatAipg } from '@aipg/core';
import {
  type Abi,
  type AbiParameter,
  decodeErrorResult,
  type Hex,
  isHex,
  BaseError as ViemBaseError,
} from 'viem';
import { gridAbi, testAipgAbi } from './generated/abis.ts';

/**
 * Stable codes of the chain package (never reused for another meaning):
 * - `CONTRACT_REVERT`: a call or transaction reverted; `errorName`/`args` hold the decoded custom error.
 * - `TX_REVERTED`: a mined transaction has status `reverted` (no revert data available).
 * - `INSUFFICIENT_FUNDS`: the sender has too little ETH for gas.
 * - `RPC_UNREACHABLE`: the RPC endpoint did not answer (retryable).
 * - `RPC_ERROR`: the RPC endpoint answered with an error that is not a revert.
 * - `WRONG_CHAIN`: the RPC's chain id differs from the one expected (deployment file).
 * - `DEPLOY_FAILED`: deployGrid could not complete.
 * - `DEPLOYMENT_FILE`: a deployment file is missing or malformed.
 * - `KEYSTORE_INVALID` / `KEYSTORE_UNSUPPORTED` / `KEYSTORE_WRONG_PASSWORD`: keystore decryption.
 * - `ANVIL_START` / `ANVIL_NOT_FOUND`: the local anvil could not be started.
 * - `INVALID_ARGUMENT`: an action's argument is invalid; nothing was sent.
 */
export type ChainErrorCode =
  | 'CONTRACT_REVERT'
  | 'TX_REVERTED'
  | 'INSUFFICIENT_FUNDS'
  | 'RPC_UNREACHABLE'
  | 'RPC_ERROR'
  | 'WRONG_CHAIN'
  | 'DEPLOY_FAILED'
  | 'DEPLOYMENT_FILE'
  | 'KEYSTORE_INVALID'
  | 'KEYSTORE_UNSUPPORTED'
  | 'KEYSTORE_WRONG_PASSWORD'
  | 'ANVIL_START'
  | 'ANVIL_NOT_FOUND'
  | 'INVALID_ARGUMENT';

export type ChainErrorParameters = {
  code: ChainErrorCode;
  details?: string | undefined;
  cause?: unknown;
  retryable?: boolean | undefined;
  errorName?: string | undefined;
  args?: Record<string, unknown> | undefined;
};

/** Every failure of `@aipg/chain`: one class, told apart by `code` (and `errorName` for reverts). */
export class ChainError extends BaseError {
  override name = 'ChainError';
  declare readonly code: ChainErrorCode;
  /** The decoded custom error of a revert (`BondTooLow`), when there was one. */
  readonly errorName: string | undefined;
  /** Its arguments by name (`{ bond: 500n, minimum: 1000n }`). */
  readonly args: Record<string, unknown> | undefined;

  constructor(
    shortMessage: string,
    { code, details, cause, retryable, errorName, args }: ChainErrorParameters,
  ) {
    super(shortMessage, { code, details, cause, retryable });
    this.errorName = errorName;
    this.args = args;
  }
}

// Errors a Grid call can surface: the diamond's own plus those bubbling up from the AIPG token
// (OpenZeppelin's ERC-20 / ERC-2612 / Ownable errors are all in the test token's abi).
const errorAbi: Abi = [...gridAbi, ...testAipgAbi].filter((item) => item.type === 'error');

/** Why a revert happened, for people: appended as `details`. */
const hints: Record<string, string> = {
  BondTooLow:
    'a bond must be at least the minimum, and what stays bonded after a partial unbond must be 0 or at least the minimum',
  AlreadyBonded: 'this account already has a bond for this role: increase it instead',
  NotBonded: 'this account has no bond for this role',
  InsufficientBond: 'you asked to unbond more than the active bond',
  NothingUnbonding: 'nothing is unbonding: request an unbond first',
  UnbondNotReady: 'the unbond delay has not passed yet',
  OperatorTaken: 'that operator key already signs for another bond',
  EnforcedPause:
    'the Grid is paused: new bonds, deposits and settlements are stopped (withdrawals still work)',
  NotOwner: 'only the Grid owner can do this',
  ERC20InsufficientAllowance: 'approve the Grid to spend your AIPG first',
  ERC20InsufficientBalance: 'the wallet holds too little AIPG',
  InsufficientDeposit: "the payer's escrow deposit is too small",
  GatewayCapExceeded:
    "the payer's cap for this gateway is too low: the payer raises it with increaseGatewayCap",
  NothingToWithdraw: 'there is nothing to withdraw',
  WithdrawalNotReady: 'the withdrawal delay has not passed yet',
  BatchAlreadySettled: 'a batch with this Merkle root was already settled',
  SumMismatch: 'the sum of payer debits must equal the sum of worker credits',
  UnknownWorker: 'a credited address has no worker bond',
  ModelExists: 'a model with this name and weights hash is already registered',
  UnknownModel: 'no model with this id is registered',
  ERC2612ExpiredSignature: 'the permit deadline has passed',
  ERC2612InvalidSigner: 'the permit was not signed by the depositor',
  FunctionNotFound: 'the Grid has no facet for this function: wrong address or an outdated deployment',
  UnknownBatch: 'no batch with this id was settled',
  RandomnessAlreadyFixed: "this batch's audit randomness is already fixed",
  RandomnessNotReady: 'the randomness source is not ready yet: wait for more blocks after the settlement',
  RandomnessNotFixed: "fix the batch's randomness first (fixRandomness)",
  InvalidProof: "the Merkle proof does not lead from this receipt to the batch's root",
  NotAudited: 'this receipt is not audited (not drawn)',
  NotAssigned:
    "this validator holds no seat on this receipt's audit (seats are drawn from stakes as of the settlement)",
  AlreadyCommitted: 'this validator already committed a vote on this receipt',
  NotCommitted: 'this validator committed no vote on this receipt: there is nothing to reveal',
  AlreadyRevealed: 'this validator already revealed its vote on this receipt',
  CommitmentMismatch: 'the revealed vote, evidence hash and salt do not match the commitment',
  CommitWindowClosed: 'the commit window of this batch has closed',
  RevealWindowNotOpen: 'votes are revealed only after the commit deadline',
  RevealWindowClosed: 'the reveal window of this batch has closed',
  AuditWindowOpen: 'the audit is still open: finalize after the reveal deadline',
  AlreadyFinalized: 'this audit was already finalized',
  NothingToFinalize: 'nobody committed on this receipt: there is no audit to finalize',
  InvalidVote: 'a vote is PASS or FAIL',
  InvalidAuditConfig:
    "the audit parameters break a rule or the deployment's audit limits (quorum a majority of k, windows and slashes within the limits)",
  RateCanOnlyRise: "a worker's own audit rate can only be raised",
  InvalidReceiptSignature: "the receipt is not signed by the worker's operator key (as of its completion)",
  ReceiptNotInBatch: "the receipt names another gateway or its number is outside the batch's range",
  NotAnActiveValidator:
    'only an active validator bond (its owner or operator key) can report a gateway fault',
  AlreadyReported: 'this validator already reported a gateway fault on this receipt',
  InvalidFaultReason: 'a gateway fault report needs a non-zero reason code',
  SequenceMismatch:
    "a batch must start at the gateway's next receipt number (nextReceiptSeq): another batch landed first",
  EmptyBatch: 'a batch must cover at least one receipt number, debit someone and pay a positive total',
  ChangeNotAnnounced: 'this change was not announced (or was cancelled or already executed)',
  ChangeNotReady: 'the announced change is not executable yet: the cut delay has not passed',
  ChangeExpired: 'the announced change was not executed within its window: announce it again',
};

function isTimeName(name: string): boolean {
  return /(At|Ts|After|deadline|timestamp)$/i.test(name);
}

function isoSeconds(seconds: number): string {
  return new Date(seconds * 1000).toISOString().replace('.000Z', 'Z');
}

/** One argument of a decoded error, for people: amounts in AIPG, timestamps as UTC. */
export function formatErrorArg(param: AbiParameter | undefined, value: unknown): string {
  const name = param?.name ?? '';
  const type = param?.type ?? '';
  if (typeof value === 'bigint') {
    if (isTimeName(name)) return isoSeconds(Number(value));
    if (type === 'uint256' && !/(nonce|id|count|index)$/i.test(name)) return `${formatAipg(value)} AIPG`;
    return value.toString();
  }
  if (typeof value === 'number') return isTimeName(name) ? isoSeconds(value) : String(value);
  if (typeof value === 'string') return isHex(value) ? value : JSON.stringify(value);
  return String(value);
}

export type DecodedRevert = { errorName: string; args: Record<string, unknown>; message: string };

/** Decodes revert data with the Grid's and the token's errors: `BondTooLow(bond: 500 AIPG, minimum: 1,000 AIPG)`. */
export function decodeRevert(data: Hex): DecodedRevert | undefined {
  try {
    const { errorName, args, abiItem } = decodeErrorResult({ abi: errorAbi, data });
    const inputs = 'inputs' in abiItem ? abiItem.inputs : [];
    const values = (args ?? []) as readonly unknown[];
    const named: Record<string, unknown> = {};
    const parts = values.map((value, i) => {
      const param = inputs[i];
      const name = param?.name || `arg${i}`;
      named[name] = value;
      return `${name}: ${formatErrorArg(param, value)}`;
    });
    return { errorName, args: named, message: `${errorName}(${parts.join(', ')})` };
  } catch {
    return undefined;
  }
}

function revertDataIn(value: unknown): Hex | undefined {
  if (typeof value === 'string' && isHex(value) && value.length >= 10) return value;
  // Some RPC errors nest it: { data: { data: '0x…' } }.
  if (value && typeof value === 'object' && 'data' in value)
    return revertDataIn((value as { data: unknown }).data);
  return undefined;
}

function findRevertData(error: ViemBaseError): Hex | undefined {
  let found: Hex | undefined;
  error.walk((e) => {
    const fields = e as unknown as Record<string, unknown>;
    found = revertDataIn(fields.raw) ?? revertDataIn(fields.data);
    return found !== undefined;
  });
  return found;
}

function findByName(error: ViemBaseError, ...names: string[]): (Error & Record<string, unknown>) | undefined {
  return (error.walk((e) => names.includes((e as Error).name)) ?? undefined) as
    | (Error & Record<string, unknown>)
    | undefined;
}

/** The innermost cause's message (`connect ECONNREFUSED 127.0.0.1:8545`), when there is one. */
function rootCauseMessage(error: Error): string | undefined {
  let current: unknown = error;
  for (let depth = 0; depth < 10 && current instanceof Error && current.cause instanceof Error; depth++) {
    current = current.cause;
  }
  if (current === error || !(current instanceof Error)) return undefined;
  return current.message.split('\n')[0];
}

/**
 * Turns anything a viem call threw into a `ChainError`: a revert becomes its decoded custom error,
 * a dead RPC `RPC_UNREACHABLE`, and so on. `action` names what was attempted (`bond`, `deposit`).
 */
export function toChainError(error: unknown, action: string): ChainError {
  if (error instanceof ChainError) return error;
  if (error instanceof BaseError) {
    return new ChainError(error.shortMessage, { code: 'RPC_ERROR', details: error.details, cause: error });
  }
  if (!(error instanceof ViemBaseError)) {
    const message = error instanceof Error ? error.message.split('\n')[0] : String(error);
    return new ChainError(`${action} failed: ${message}`, { code: 'RPC_ERROR', cause: error });
  }
  const data = findRevertData(error);
  const decoded = data ? decodeRevert(data) : undefined;
  if (decoded) {
    const hint = hints[decoded.errorName];
    return new ChainError(decoded.message, {
      code: 'CONTRACT_REVERT',
      details: `${action} reverted${hint ? `: ${hint}` : ''}`,
      errorName: decoded.errorName,
      args: decoded.args,
      cause: error,
    });
  }
  if (findByName(error, 'InsufficientFundsError')) {
    return new ChainError(`${action} failed: the sender has too little ETH to pay for gas`, {
      code: 'INSUFFICIENT_FUNDS',
      cause: error,
    });
  }
  const transport = findByName(
    error,
    'HttpRequestError',
    'WebSocketRequestError',
    'TimeoutError',
    'SocketClosedError',
  );
  if (transport) {
    const url = typeof transport.url === 'string' ? ` ${transport.url.replace(/\/$/, '')}` : '';
    return new ChainError(`cannot reach the RPC endpoint${url}`, {
      code: 'RPC_UNREACHABLE',
      details: rootCauseMessage(error) ?? error.shortMessage,
      retryable: true,
      cause: error,
    });
  }
  if (data) {
    return new ChainError(`${action} reverted with unknown error ${data.slice(0, 10)}`, {
      code: 'CONTRACT_REVERT',
      details: `revert data: ${data}`,
      cause: error,
    });
  }
  const revert = findByName(error, 'ContractFunctionRevertedError');
  if (revert) {
    const reason = typeof revert.reason === 'string' ? `: ${revert.reason}` : '';
    return new ChainError(`${action} reverted${reason}`, { code: 'CONTRACT_REVERT', cause: error });
  }
  return new ChainError(`${action} failed: ${error.shortMessage}`, {
    code: 'RPC_ERROR',
    details: error.details,
    cause: error,
  });
}
