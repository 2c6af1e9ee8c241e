/**
 * Everything the validator node does on chain, behind one small interface (the node takes it as
 * a dependency, so its loop is testable against any implementation). `createValidatorChain` is
 * the real one: viem over the Grid Diamond, writes signed by the operator key.
 */
import {
  ChainError,
  commitVote,
  finalizeAudit,
  fixRandomness,
  getAssignedValidators,
  getAudit,
  getBatchAudit,
  getBond,
  getModel,
  gridAbi,
  isAudited,
  type ReadClient,
  reportGatewayFault,
  revealVote,
  type WriteClient,
  withdrawEarnings,
} from '@aipg/chain';
import type { Receipt } from '@aipg/core';
import {
  type CatchUpParameters,
  createGridFollower,
  type GridRange,
  type GridSink,
  type Logger,
} from '@aipg/indexer';
import { type Address, getAbiItem, type Hex, zeroAddress } from 'viem';
import { getBlock, getBlockNumber, getChainId, getLogs, readContract } from 'viem/actions';

export type VoteName = 'pass' | 'fail';
export type AuditVerdictName = 'none' | 'pass' | 'fail' | 'inconclusive';

export type SettledBatch = {
  batchId: bigint;
  gateway: Address;
  root: Hex;
  receiptCount: number;
  blockNumber: bigint;
};
/** `deadline`: last second of the commit window; `revealDeadline`: last second of the reveal window. */
export type BatchAuditInfo = {
  randomness: Hex | null;
  fixedAt: bigint;
  deadline: bigint;
  revealDeadline: bigint;
};
/** A validator's vote on chain: nothing, a commitment not revealed yet, or the revealed vote. */
export type OnchainVote = VoteName | 'committed' | 'none';
export type OnchainAudit = {
  batchId: bigint;
  worker: Address;
  deadline: bigint;
  revealDeadline: bigint;
  seats: number;
  commits: number;
  passVotes: number;
  failVotes: number;
  verdict: AuditVerdictName;
  slashed: bigint;
};

/** What a write that the contract may legitimately refuse came to. */
export type WriteOutcome =
  | { status: 'sent'; hash: Hex }
  | { status: 'refused'; errorName: string; message: string };

export type ValidatorChain = {
  readonly grid: Address;
  /** The operator key that signs transactions. */
  readonly operator: Address;
  chainId(): Promise<number>;
  head(): Promise<{ number: bigint; timestamp: bigint }>;
  validatorOwner(operator: Address): Promise<Address | null>;
  validatorBond(owner: Address): Promise<{ amount: bigint; unbonding: bigint; active: boolean }>;
  validatorMinimumBond(): Promise<bigint>;
  /** The worker bond owner behind an operator key, now or at a past block (which may be pruned). */
  workerOf(operator: Address, blockNumber?: bigint): Promise<Address | null>;
  /** A worker bond now: its operator key and whether it is at least the minimum (a cross-check scorer's). */
  workerBond(owner: Address): Promise<{ operator: Address; active: boolean }>;
  /** Whether `owner` named `operator` as its worker operator key in blocks [fromBlock, toBlock]. */
  workerOperatorSet(owner: Address, operator: Address, fromBlock: bigint, toBlock: bigint): Promise<boolean>;
  model(
    modelId: Hex,
  ): Promise<{ name: string; weightsHash: Hex; kind: 'text' | 'image'; active: boolean } | null>;
  /**
   * Delivers the Grid's `BatchSettled` events to `sink` from its cursor up to the head (less the
   * confirmations): the network indexer's follower, with its bounded, halving ranges.
   */
  followBatches(sink: GridSink, p?: CatchUpParameters): Promise<number>;
  batchAudit(batchId: bigint): Promise<BatchAuditInfo>;
  fixRandomness(batchId: bigint): Promise<WriteOutcome>;
  isAudited(batchId: bigint, leaf: Hex, worker: Address): Promise<boolean>;
  /** Seats are fixed (stake checkpoints before settlement): the answer never changes. */
  assignedValidators(batchId: bigint, leaf: Hex): Promise<Address[]>;
  commitVote(p: {
    batchId: bigint;
    receipt: Receipt;
    signature: Hex;
    proof: readonly Hex[];
    commitment: Hex;
  }): Promise<WriteOutcome>;
  revealVote(p: { leaf: Hex; vote: VoteName; evidenceHash: Hex; salt: Hex }): Promise<WriteOutcome>;
  /** Puts on chain that the gateway that settled `leaf` served evidence the worker did not sign (no funds move). */
  reportGatewayFault(p: {
    batchId: bigint;
    leaf: Hex;
    proof: readonly Hex[];
    reason: string;
    evidenceHash: Hex;
  }): Promise<WriteOutcome>;
  voteOf(leaf: Hex, validator: Address): Promise<OnchainVote>;
  getAudit(leaf: Hex): Promise<OnchainAudit>;
  finalize(leaf: Hex): Promise<WriteOutcome>;
  earningsOf(account: Address): Promise<bigint>;
  withdrawEarnings(): Promise<{ hash: Hex; amount: bigint }>;
};

export type CreateValidatorChainParameters = {
  publicClient: ReadClient;
  walletClient: WriteClient;
  grid: Address;
  logger: Logger;
  /** Largest `eth_getLogs` range for settled batches (halved while the RPC refuses it). */
  logRange: number;
  /** Blocks behind the head a settled batch must be. */
  confirmations: number;
};

/** A `BatchSettled` event as the follower delivers it (arguments as decimal strings). */
export function settledBatchOf(e: GridRange['events'][number]): SettledBatch | undefined {
  if (e.name !== 'BatchSettled') return undefined;
  const a = e.args as { batchId: string; gateway: Address; root: Hex; receiptCount: string };
  return {
    batchId: BigInt(a.batchId),
    gateway: a.gateway,
    root: a.root,
    receiptCount: Number(a.receiptCount),
    blockNumber: e.blockNumber,
  };
}

/** A write the contract refused with a custom error (a race with another validator, a closed window). */
function refused(error: unknown): WriteOutcome {
  if (error instanceof ChainError && error.code === 'CONTRACT_REVERT' && error.errorName)
    return { status: 'refused', errorName: error.errorName, message: error.shortMessage };
  throw error;
}

export function createValidatorChain({
  publicClient,
  walletClient,
  grid,
  logger,
  logRange,
  confirmations,
}: CreateValidatorChainParameters): ValidatorChain {
  const follower = createGridFollower({
    client: publicClient,
    grid,
    logger,
    name: 'validator',
    events: [getAbiItem({ abi: gridAbi, name: 'BatchSettled' })],
    options: { maxBlockRange: logRange, confirmations, keepBlocks: 1, rpcConcurrency: 4 },
  });
  // Typed reads of the Grid (viem checks each function name and its arguments against the ABI).
  const c = { address: grid, abi: gridAbi } as const;

  return {
    grid,
    operator: walletClient.account.address,
    chainId: () => getChainId(publicClient),
    async head() {
      const number = await getBlockNumber(publicClient, { cacheTime: 0 });
      const block = await getBlock(publicClient, { blockNumber: number });
      return { number, timestamp: block.timestamp };
    },
    async validatorOwner(operator) {
      const owner = await readContract(publicClient, { ...c, functionName: 'validatorOf', args: [operator] });
      return owner === zeroAddress ? null : owner;
    },
    async validatorBond(owner) {
      const b = await readContract(publicClient, { ...c, functionName: 'validatorBond', args: [owner] });
      return { amount: b.amount, unbonding: b.unbonding, active: b.active };
    },
    validatorMinimumBond: () => readContract(publicClient, { ...c, functionName: 'validatorMinimumBond' }),
    async workerOf(operator, blockNumber) {
      const owner = (await readContract(publicClient, {
        address: grid,
        abi: gridAbi,
        functionName: 'workerOf',
        args: [operator],
        ...(blockNumber === undefined ? {} : { blockNumber }),
      })) as Address;
      return owner === zeroAddress ? null : owner;
    },
    async workerBond(owner) {
      const b = await getBond(publicClient, { grid, role: 'worker', owner });
      return { operator: b.operator, active: b.active };
    },
    async workerOperatorSet(owner, operator, fromBlock, toBlock) {
      const logs = await getLogs(publicClient, {
        address: grid,
        event: gridAbi.find((x) => x.type === 'event' && x.name === 'OperatorSet') as never,
        args: { role: 0, owner, operator } as never,
        fromBlock,
        toBlock,
      });
      return logs.length > 0;
    },
    async model(modelId) {
      try {
        const m = await getModel(publicClient, { grid, modelId });
        return { name: m.name, weightsHash: m.weightsHash, kind: m.kind, active: m.active };
      } catch (error) {
        if ((error as { errorName?: string }).errorName === 'UnknownModel') return null;
        throw error;
      }
    },
    followBatches: (sink, p) => follower.catchUp(sink, p),
    async batchAudit(batchId) {
      const b = await getBatchAudit(publicClient, { grid, batchId });
      return {
        randomness: b.fixed ? b.randomness : null,
        fixedAt: BigInt(b.fixedAt),
        deadline: BigInt(b.deadline),
        revealDeadline: BigInt(b.revealDeadline),
      };
    },
    fixRandomness: (batchId) =>
      fixRandomness(walletClient, { grid, batchId }).then(
        (r): WriteOutcome => ({ status: 'sent', hash: r.hash }),
        refused,
      ),
    isAudited: (batchId, leaf, worker) => isAudited(publicClient, { grid, batchId, leaf, worker }),
    async assignedValidators(batchId, leaf) {
      return [...(await getAssignedValidators(publicClient, { grid, batchId, leaf }))];
    },
    commitVote: ({ batchId, receipt, signature, proof, commitment }) =>
      commitVote(walletClient, { grid, batchId, receipt, signature, proof, commitment }).then(
        (r): WriteOutcome => ({ status: 'sent', hash: r.hash }),
        refused,
      ),
    revealVote: ({ leaf, vote, evidenceHash, salt }) =>
      revealVote(walletClient, { grid, leaf, vote, evidenceHash, salt }).then(
        (r): WriteOutcome => ({ status: 'sent', hash: r.hash }),
        refused,
      ),
    reportGatewayFault: ({ batchId, leaf, proof, reason, evidenceHash }) =>
      reportGatewayFault(walletClient, { grid, batchId, leaf, proof, reason, evidenceHash }).then(
        (r): WriteOutcome => ({ status: 'sent', hash: r.hash }),
        refused,
      ),
    async voteOf(leaf, validator) {
      const a = await getAudit(publicClient, { grid, leaf, validators: [validator] });
      return a.votes[validator] ?? 'none';
    },
    async getAudit(leaf) {
      const a = await getAudit(publicClient, { grid, leaf });
      return {
        batchId: a.batchId,
        worker: a.worker,
        deadline: BigInt(a.deadline),
        revealDeadline: BigInt(a.revealDeadline),
        seats: a.seats,
        commits: a.commits,
        passVotes: a.passVotes,
        failVotes: a.failVotes,
        verdict: a.verdict,
        slashed: a.slashed,
      };
    },
    finalize: (leaf) =>
      finalizeAudit(walletClient, { grid, leaf }).then(
        (r): WriteOutcome => ({ status: 'sent', hash: r.hash }),
        refused,
      ),
    earningsOf: (account) =>
      readContract(publicClient, { ...c, functionName: 'earningsOf', args: [account] }),
    async withdrawEarnings() {
      const r = await withdrawEarnings(walletClient, { grid });
      return { hash: r.hash, amount: r.amount };
    },
  };
}
