/**
 * The validator node (`aipg validator start`): proves its bond, follows settled batches, fixes
 * their randomness when it is ready, finds the receipts it is assigned to audit, fetches each
 * job from the gateway's audit API, checks the proof and the worker's signature, re-scores and
 * judges it (docs/DESIGN.md §5), commits a hidden vote once, reveals it after the commit deadline,
 * finalizes audits past their reveal deadline and withdraws its earnings. Progress lives in a JSON
 * state file: the vote and its salt are saved before the commitment is sent, so a restart resumes
 * where it stopped, never commits twice for one job and still reveals what it committed.
 *
 * One pass (every `pollIntervalMs`):
 *   1. read `BatchSettled` logs from the cursor, in bounded ranges;
 *   2. per waiting batch: `fixRandomness` once ready, then list its receipts from the gateway and
 *      keep those audited (`isAudited`) and assigned to this validator (`assignedValidators`);
 *   3. per assigned job: fetch, verify, check, judge → record vote, evidence hash and a random salt
 *      → commitVote; after the commit deadline (never before) → revealVote;
 *   4. finalize audits whose reveal deadline has passed; withdraw earnings above the threshold.
 */
import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { createGridClients, voteCommitment } from '@aipg/chain';
import {
  formatAipg,
  hashLatent,
  IMAGE_CHECK_OPS,
  type ImageCheckOp,
  imageCheckTypedData,
  latentsFromBytes,
  type Receipt,
  receiptFromJson,
  receiptLeafHash,
  receiptToJson,
  receiptTypedData,
  recoverTypedDataSigner,
  verifyReceiptProof,
} from '@aipg/core';
import {
  createDaemonLogger,
  createShutdown,
  type DaemonCommon,
  type Logger,
  type MetricsServer,
  startMetricsServer,
} from '@aipg/daemon';
import { createDiffusionPipeline, type DiffusionPipeline, IMAGE_MODEL_PRESETS } from '@aipg/diffusion';
import type { GridSink } from '@aipg/indexer';
import { PRODUCTION_ANCHORS } from '@aipg/tee';
import { type Address, bytesToHex, formatUnits, type Hex, zeroHash } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { checkAndJudge } from '../checkers/confirm.ts';
import { createCrosscheckChecker } from '../checkers/crosscheck.ts';
import { drawScorers, scorerDrawSeed } from '../checkers/draw.ts';
import { createModelFiles } from '../checkers/models.ts';
import { createReexecuteChecker } from '../checkers/reexecute.ts';
import type { Checker, CheckRequest, CheckResult, SignedScore } from '../checkers/types.ts';
import { ValidatorError, ValidatorErrorCode } from '../errors.ts';
import { type AuditClient, type AuditImageJobEvidence, createAuditClient } from '../gateway/client.ts';
import { judgeConfidential } from '../judge/confidential.ts';
import { evidenceHash } from '../judge/evidence.ts';
import {
  drawImageSteps,
  type ImageAuditJob,
  type ImageReexecutor,
  type ImageVerdict,
  judgeImage,
  localReexecutor,
} from '../judge/image.ts';
import { commitmentFaults, type JudgeJob, judge, type Verdict } from '../judge/judge.ts';
import { createValidatorChain, settledBatchOf, type ValidatorChain } from './chain.ts';
import { createValidatorMetrics, type ValidatorMetrics } from './metrics.ts';
import type { ValidatorOptions } from './options.ts';
import {
  type AuditRecord,
  type AuditStatus,
  auditStatuses,
  type BatchRecord,
  openStateStore,
  type ScoreEvidence,
} from './state.ts';

export type StartValidatorDependencies = {
  /** The chain (default: viem over `options.rpcUrl`, signed by the operator key). */
  chain?: ValidatorChain | undefined;
  /** The checker (default: by `options.mode`). Closed by `stop()` either way. */
  checker?: Checker | undefined;
  /** 32 random bytes per vote (default: the platform CSPRNG). */
  randomSalt?: (() => Hex) | undefined;
  logger?: Logger | undefined;
};

export type ValidatorState = 'running' | 'stopping' | 'stopped';

export type ValidatorStatus = {
  state: ValidatorState;
  mode: ValidatorOptions['mode'];
  chainId: number;
  grid: Address;
  operator: Address;
  owner: Address;
  stateFile: string;
  /** Next block the log cursor reads. */
  cursor: bigint;
  head: bigint | null;
  passes: number;
  batches: Record<BatchRecord['status'], number>;
  audits: Record<AuditStatus, number>;
  /** Revealed votes, pruned batches included. */
  votes: { pass: number; fail: number };
  /** Finished batches pruned from the state file, and what their audits came to. */
  archived: { batches: number; pass: number; fail: number; abstained: number };
  /** Gateway evidence faults (README "Whose fault is it"): per gateway per reason code (a job counts once per code), and their sum. */
  gatewayFaults: { total: number; byGateway: Record<string, Record<string, number>> };
  metricsUrl: string | null;
  lastError: string | null;
};

export type Validator = {
  status(): ValidatorStatus;
  /** Runs a pass now (or waits for the running one, then runs another); resolves when it ends. */
  poll(): Promise<void>;
  /** Stops after the current step, saves the state, closes the checker and the metrics server. */
  stop(): Promise<void>;
  /** Resolves once stopped (by `stop()`). */
  readonly stopped: Promise<void>;
};

/** How many log ranges one pass reads before it turns to audits (catching up never starves them). */
const MAX_RANGES_PER_PASS = 25;
/** How far before a batch's settlement a worker's operator key still counts as its key (~2 days on Base). */
const OPERATOR_LOOKBACK_BLOCKS = 100_000n;
/** Finished batches kept in the state file (older ones are summed into `archived`). */
const MAX_DONE_BATCHES = 1_000;
/** Audits with nothing left to do here (`revealed` ones wait for finalization, in `finalizeDue`). */
const finished = new Set<AuditStatus>(['revealed', 'abstained', 'unrevealed', 'finalized']);
/** Assigned audits whose vote is not committed yet. */
const unvoted = new Set<AuditStatus>(['pending', 'judged', 'committing']);
/** Retry delays of a failed audit step: doubling from the poll interval up to this. */
const MAX_RETRY_MS = 5 * 60_000;
/**
 * Gateway faults the node finds before the judge (README "Whose fault is it"); the judge's own are
 * its `gateway` reasons (RECEIPT_REQUEST_HASH, …). Stable codes, never reused.
 */
export const NodeGatewayFault = {
  /** The gateway serves, for a job of its settled batch, another receipt than the batch holds. */
  notSettled: 'RECEIPT_NOT_SETTLED',
  /** The signature the gateway serves is not the worker's operator key's over the settled receipt. */
  signature: 'RECEIPT_SIGNATURE',
} as const;

/** What every part of the validator receives: options, logger, metrics, shutdown (the daemons' one shape). */
export type ValidatorCommon = DaemonCommon<ValidatorOptions, ValidatorMetrics>;

/** The validator's `common`: its root logger (`service: validator`, secrets redacted) unless one is given. */
export function createValidatorCommon(options: ValidatorOptions, logger?: Logger): ValidatorCommon {
  const log = logger ?? createDaemonLogger({ service: 'validator', level: options.logLevel });
  return { options, logger: log, metrics: createValidatorMetrics(), shutdown: createShutdown(log) };
}

export async function startValidator(
  options: ValidatorOptions,
  deps: StartValidatorDependencies = {},
): Promise<Validator> {
  return createValidator({ ...deps, common: createValidatorCommon(options, deps.logger) });
}

export type CreateValidatorParameters = { common: ValidatorCommon } & Omit<
  StartValidatorDependencies,
  'logger'
>;

/** `startValidator` on a `common` the caller built (the daemons' one shape: `createX({ common, … })`). */
export async function createValidator({ common, ...deps }: CreateValidatorParameters): Promise<Validator> {
  const { options, logger, metrics } = common;
  for (const line of options.deprecations ?? []) logger.warn(line);
  const account = privateKeyToAccount(options.operatorKey);
  const chain =
    deps.chain ??
    (() => {
      const { publicClient, walletClient } = createGridClients({
        rpcUrl: options.rpcUrls?.length ? options.rpcUrls : options.rpcUrl,
        chainId: options.chainId,
        account,
      });
      return createValidatorChain({
        publicClient,
        walletClient: walletClient!,
        grid: options.grid,
        logger,
        logRange: options.logRange,
        confirmations: options.confirmations,
      });
    })();

  // ── preflight: the right chain, an active validator bond ───────────────────────────────────
  const chainId = await chain.chainId();
  if (chainId !== options.chainId)
    throw new ValidatorError(
      `the RPC ${options.rpcUrl} serves chain ${chainId}, but this validator is configured for chain ${options.chainId}`,
      { code: ValidatorErrorCode.chainMismatch },
    );
  const owner = await checkValidatorBond(chain, account.address);
  const head0 = await chain.head();
  const stateFile = join(options.dataDir, `state-${options.chainId}-${options.grid.toLowerCase()}.json`);
  const store = await openStateStore(stateFile, {
    chainId: options.chainId,
    grid: options.grid,
    owner,
    startBlock: options.startBlock ?? (head0.number > 10_000n ? head0.number - 10_000n : 0n),
  });
  const { state } = store;
  const randomSalt = deps.randomSalt ?? (() => bytesToHex(crypto.getRandomValues(new Uint8Array(32))));
  // A restart retries at once: above all, a commitment or reveal that may have been sent is settled first.
  for (const a of Object.values(state.audits)) a.retryAt = undefined;

  const clients = new Map<string, AuditClient>();
  const clientFor = (gateway: Address): AuditClient | undefined => {
    const key = gateway.toLowerCase();
    let c = clients.get(key);
    if (!c) {
      const endpoint =
        options.gateways.find((g) => g.address?.toLowerCase() === key) ??
        options.gateways.find((g) => g.address === null);
      if (!endpoint) return undefined;
      c = createAuditClient({ url: endpoint.url, gateway, account });
      clients.set(key, c);
    }
    return c;
  };

  const models = createModelFiles({ dir: options.modelDir, files: options.gguf, presets: options.presets });
  // Cross-check scores judged with, kept whole (signature, attestation, positions) as evidence.
  const scoresDir = join(options.dataDir, `scores-${options.chainId}-${options.grid.toLowerCase()}`);
  const checker =
    deps.checker ??
    (options.mode === 'reexecute'
      ? createReexecuteChecker({
          models,
          threads: options.threads,
          gpuLayers: options.gpuLayers,
          contextSize: options.contextSize,
          logger,
        })
      : createCrosscheckChecker({
          models,
          logger,
          bonds: chain,
          chainId: options.chainId,
          grid: options.grid,
          onRejected: ({ reason }) => metrics.scoresRejected.inc({ reason }),
          client: (request) => {
            const c = request.gateway ? clientFor(request.gateway) : undefined;
            if (!c)
              throw new ValidatorError('No gateway URL for a cross-check', {
                code: ValidatorErrorCode.gatewayError,
                details: `gateway ${request.gateway ?? 'unknown'}: pass --gateway ${request.gateway ?? '0x…'}=<url>`,
              });
            return c;
          },
        }));

  let runState: ValidatorState = 'running';
  let lastError: string | null = null;
  let passes = 0;
  let head: { number: bigint; timestamp: bigint } | null = head0;
  let lastEarnings: bigint | null = null;
  let metricsServer: MetricsServer | null = null;
  if (options.metrics) {
    metricsServer = await startMetricsServer(metrics, {
      ...options.metrics,
      health: () => ({
        ok: runState === 'running' && (lastError === null || passes > 0),
        state: runState,
        gatewayFaults: gatewayFaultTotal(),
      }),
    }).catch(async (error) => {
      await checker.close();
      throw error;
    });
    const server = metricsServer;
    common.shutdown.add('metrics', () => server.close());
  }
  logger.info(
    {
      operator: account.address,
      owner,
      mode: checker.mode,
      chainId,
      grid: options.grid,
      cursor: state.cursor,
      stateFile,
      metrics: metricsServer?.url ?? null,
    },
    'validator started',
  );

  const fail = (where: string, error: unknown, extra: Record<string, unknown> = {}) => {
    const code = (error as { code?: string }).code ?? 'UNKNOWN';
    metrics.errors.inc({ code });
    lastError = `${where}: ${(error as Error).message?.split('\n')[0] ?? String(error)}`;
    logger.warn({ ...extra, code, err: error }, where);
  };

  // ── one pass ───────────────────────────────────────────────────────────────────────────────
  async function pass(): Promise<void> {
    head = await chain.head();
    await scanLogs();
    for (const b of Object.values(state.batches)) {
      if (runState !== 'running') return;
      if (b.status === 'done') continue;
      try {
        await processBatch(b);
      } catch (error) {
        b.lastError = (error as Error).message;
        fail('batch failed', error, { batchId: b.batchId });
      }
    }
    for (const a of Object.values(state.audits)) {
      if (runState !== 'running') return;
      if (finished.has(a.status)) continue;
      if (a.retryAt !== undefined && a.retryAt > Date.now()) continue;
      try {
        await processAudit(a);
        a.retryAt = undefined;
      } catch (error) {
        a.attempts++;
        a.lastError = (error as Error).message;
        a.retryAt =
          Date.now() + Math.min(MAX_RETRY_MS, options.pollIntervalMs * 2 ** Math.min(a.attempts, 12));
        fail('audit failed', error, { jobId: a.jobId, leaf: a.leaf, attempts: a.attempts });
      }
      await store.save();
    }
    if (options.finalize !== 'off') await finalizeDue();
    if (options.withdrawMin !== null) await maybeWithdraw(options.withdrawMin);
    prune();
    metrics.pending.set({}, Object.values(state.audits).filter((a) => unvoted.has(a.status)).length);
    await store.save();
    passes++;
  }

  /**
   * New settled batches, from the state's cursor on (the follower's bounded, halving ranges; the cursor
   * moves with each range, saved). The state keeps no block hashes: the `confirmations` setting is this
   * node's guard against reorgs, as before, and a batch found twice is the same record (by id).
   */
  const batchSink: GridSink = {
    next: async () => Number(state.cursor),
    recent: async () => [],
    async apply(range) {
      for (const e of range.events) {
        const s = settledBatchOf(e);
        if (!s) continue;
        const id = s.batchId.toString();
        if (state.batches[id]) continue;
        state.batches[id] = {
          batchId: id,
          root: s.root,
          gateway: s.gateway,
          settledBlock: s.blockNumber.toString(),
          status: 'waiting',
          deadline: null,
          revealDeadline: null,
          audited: [],
          finalized: [],
        };
        logger.info(
          { batchId: id, root: s.root, gateway: s.gateway, receipts: s.receiptCount },
          'batch settled',
        );
      }
      state.cursor = String(range.toBlock + 1);
      metrics.cursor.set({}, range.toBlock + 1);
      await store.save();
      return true;
    },
    async rewind() {},
  };

  async function scanLogs(): Promise<void> {
    await chain.followBatches(batchSink, {
      maxRanges: MAX_RANGES_PER_PASS,
      stopped: () => runState !== 'running',
    });
  }

  async function processBatch(b: BatchRecord): Promise<void> {
    const id = BigInt(b.batchId);
    const now = head!.timestamp;
    if (b.status === 'waiting') {
      let info = await chain.batchAudit(id);
      if (!info.randomness) {
        const r = await chain.fixRandomness(id);
        if (r.status === 'refused' && r.errorName === 'RandomnessNotReady') return;
        if (r.status === 'refused' && r.errorName !== 'RandomnessAlreadyFixed') {
          logger.warn({ batchId: b.batchId, error: r.message }, 'fixRandomness refused');
          return;
        }
        if (r.status === 'sent') logger.info({ batchId: b.batchId, tx: r.hash }, 'audit randomness fixed');
        info = await chain.batchAudit(id);
        if (!info.randomness) return;
      }
      b.deadline = info.deadline.toString();
      b.revealDeadline = info.revealDeadline.toString();
      if (now > info.deadline) {
        b.status = 'done';
        logger.warn({ batchId: b.batchId, deadline: b.deadline }, 'batch found after its commit deadline');
        return;
      }
      const client = clientFor(b.gateway);
      if (!client)
        throw new ValidatorError('No gateway URL for a settled batch', {
          code: ValidatorErrorCode.gatewayError,
          details: `gateway ${b.gateway}: pass --gateway ${b.gateway}=<url>`,
        });
      const listing = await client.getBatch(b.root);
      if (
        listing.root.toLowerCase() !== b.root.toLowerCase() ||
        (listing.batchId !== null && listing.batchId !== id)
      )
        throw new ValidatorError('The gateway listed another batch', {
          code: ValidatorErrorCode.evidenceInvalid,
          details: `asked ${b.batchId} ${b.root}, got ${listing.batchId} ${listing.root}`,
        });
      let mine = 0;
      for (const r of listing.receipts) {
        const leaf = receiptLeafHash(r.receipt);
        if (leaf.toLowerCase() !== r.leaf.toLowerCase() || !verifyReceiptProof(b.root, r.receipt, r.proof)) {
          logger.warn({ batchId: b.batchId, jobId: r.jobId }, 'receipt not in the batch root: skipped');
          continue;
        }
        if (!(await chain.isAudited(id, leaf, r.receipt.worker))) continue;
        if (!b.audited.includes(leaf)) b.audited.push(leaf);
        const assigned = await chain.assignedValidators(id, leaf);
        if (!assigned.some((v) => v.toLowerCase() === owner.toLowerCase())) continue;
        if (state.audits[leaf]) continue;
        mine++;
        state.audits[leaf] = {
          leaf,
          batchId: b.batchId,
          jobId: r.jobId,
          worker: r.receipt.worker,
          modelId: r.receipt.modelId,
          receipt: receiptToJson(r.receipt),
          proof: r.proof,
          signature: r.signature,
          deadline: b.deadline,
          revealDeadline: b.revealDeadline,
          status: 'pending',
          attempts: 0,
        };
      }
      b.status = 'listed';
      b.lastError = undefined;
      logger.info({ batchId: b.batchId, audited: b.audited.length, assigned: mine }, 'batch audits listed');
      return;
    }
    // listed: done once the reveal window has closed and nothing of it is left to do here.
    const closesAt = b.revealDeadline ?? b.deadline;
    if (closesAt !== null && now > BigInt(closesAt)) {
      const open = Object.values(state.audits).some(
        (a) =>
          a.batchId === b.batchId &&
          (!finished.has(a.status) || (a.status === 'revealed' && options.finalize !== 'off')),
      );
      const unfinalized = options.finalize === 'all' && b.audited.some((l) => !b.finalized.includes(l));
      if (!open && !unfinalized) b.status = 'done';
    }
  }

  async function processAudit(a: AuditRecord): Promise<void> {
    const log = logger.child({ jobId: a.jobId, leaf: a.leaf, batchId: a.batchId });
    const now = head!.timestamp;
    const deadline = BigInt(a.deadline);
    const revealDeadline = BigInt(a.revealDeadline);
    if (a.status === 'committing' || a.status === 'revealing') {
      // A previous attempt may have landed (crash or RPC error after sending): never commit twice.
      const onChain = await chain.voteOf(a.leaf, owner);
      if (onChain === 'pass' || onChain === 'fail') {
        a.status = 'revealed';
        log.info({ vote: onChain }, 'vote found revealed on chain');
        return;
      }
      if (onChain === 'committed') {
        if (a.status === 'committing') log.info('commitment found on chain');
        a.status = 'committed';
      } else if (a.status === 'committing') a.status = 'judged';
      else
        throw new ValidatorError('the chain has no commitment for a vote being revealed', {
          code: ValidatorErrorCode.evidenceInvalid,
        });
    }
    if (a.status === 'pending' || a.status === 'judged') {
      if (now > deadline) {
        abstain(a, 'the commit window closed', log);
        return;
      }
      if (a.status === 'pending') await judgeAudit(a, log);
      if (a.status !== 'judged') return;
      await commit(a, log);
    }
    if (a.status === 'committed') await reveal(a, now, deadline, revealDeadline, log);
  }

  /** Sends the commitment of a judged vote (its salt already saved). */
  async function commit(a: AuditRecord, log: Logger): Promise<void> {
    const commitment = voteCommitment({
      leaf: a.leaf,
      validator: owner,
      vote: a.vote!,
      evidenceHash: a.evidenceHash!,
      salt: a.salt!,
    });
    a.commitment = commitment;
    a.status = 'committing';
    await store.save(); // before the transaction: a crash now is resolved with voteOf
    const r = await chain.commitVote({
      batchId: BigInt(a.batchId),
      receipt: receiptFromJson(a.receipt),
      signature: a.signature!,
      proof: a.proof,
      commitment,
    });
    if (r.status === 'sent') {
      a.status = 'committed';
      a.commitTx = r.hash;
      metrics.attestations.inc({ vote: a.vote!, outcome: 'committed' });
      log.info({ vote: a.vote, evidenceHash: a.evidenceHash, tx: r.hash }, 'vote committed');
      return;
    }
    metrics.attestations.inc({ vote: a.vote!, outcome: 'refused' });
    if (r.errorName === 'AlreadyCommitted') {
      a.status = 'committed';
      log.info('already committed');
    } else if (r.errorName === 'CommitWindowClosed') abstain(a, 'the commit window closed', log);
    else if (
      r.errorName === 'NotAssigned' ||
      r.errorName === 'NotAudited' ||
      r.errorName === 'ReceiptNotInBatch' ||
      r.errorName === 'InvalidReceiptSignature'
    )
      abstain(a, `commitVote refused: ${r.message}`, log);
    else {
      a.status = 'judged'; // refused before sending (gas estimation): nothing landed
      throw new ValidatorError(`commitVote refused: ${r.message}`, {
        code: ValidatorErrorCode.evidenceInvalid,
        retryable: true,
      });
    }
  }

  /** Reveals a committed vote once the commit deadline has passed; never before (the chain would refuse). */
  async function reveal(
    a: AuditRecord,
    now: bigint,
    deadline: bigint,
    revealDeadline: bigint,
    log: Logger,
  ): Promise<void> {
    if (now <= deadline) return;
    if (now > revealDeadline) {
      unrevealed(a, log);
      return;
    }
    a.status = 'revealing';
    await store.save();
    const r = await chain.revealVote({
      leaf: a.leaf,
      vote: a.vote!,
      evidenceHash: a.evidenceHash!,
      salt: a.salt!,
    });
    if (r.status === 'sent') {
      a.status = 'revealed';
      a.revealTx = r.hash;
      metrics.attestations.inc({ vote: a.vote!, outcome: 'revealed' });
      log.info({ vote: a.vote, tx: r.hash }, 'vote revealed');
      return;
    }
    if (r.errorName === 'AlreadyRevealed') {
      a.status = 'revealed';
      log.info('already revealed');
      return;
    }
    a.status = 'committed'; // refused before sending: nothing landed
    if (r.errorName === 'RevealWindowNotOpen') return; // the next block opens it
    if (r.errorName === 'RevealWindowClosed') {
      unrevealed(a, log);
      return;
    }
    throw new ValidatorError(`revealVote refused: ${r.message}`, {
      code: ValidatorErrorCode.evidenceInvalid,
      retryable: true,
    });
  }

  function unrevealed(a: AuditRecord, log: Logger): void {
    a.status = 'unrevealed';
    metrics.audits.inc({ verdict: 'unrevealed' });
    log.error(
      { vote: a.vote, revealDeadline: a.revealDeadline },
      'the reveal window closed before our reveal landed: the commitment will be slashed',
    );
  }

  async function judgeAudit(a: AuditRecord, log: Logger): Promise<void> {
    const stored = receiptFromJson(a.receipt);
    const client = clientFor(stored.gateway);
    if (!client)
      throw new ValidatorError('No gateway URL for the job', {
        code: ValidatorErrorCode.gatewayError,
        details: `gateway ${stored.gateway}`,
      });
    // Confidential jobs are never re-run: their worker answers for the attestation it signed under.
    if (stored.confidential) {
      await judgeConfidentialAudit(a, stored, client, log);
      return;
    }
    // The model first: an image job's evidence is not a text job's (no token ids, no sampling), and
    // judging it as one would blame an honest worker or gateway: image jobs have their own judge.
    const model = await chain.model(stored.modelId);
    if (!model) {
      abstain(a, `model ${stored.modelId} is not registered`, log);
      return;
    }
    if (model.kind === 'image') {
      await judgeImageAudit(a, stored, model, client, log);
      return;
    }
    const job = await client.getJob(a.jobId);
    const signer = await servedReceipt(a, stored, job, log);
    if (!signer) return;
    const evidence: JudgeJob = {
      params: job.params,
      // As the worker signed it into requestHash (commitmentFaults checks): the job is judged by
      // what its own sampler allows, never by a setting of this node.
      sampler: job.sampler,
      promptTokenIds: job.promptTokenIds,
      outputTokenIds: job.outputTokenIds,
      finishReason: job.finishReason,
      receipt: stored,
      pricing: job.pricing ?? undefined,
    };
    // Evidence that does not hash to the signed receipt is the gateway's doing: no need to score it.
    const unbound = commitmentFaults(evidence);
    if (unbound.length > 0) {
      await gatewayFault(a, stored.gateway, unbound, log);
      abstain(a, "the gateway's evidence does not hash to the worker-signed receipt", log);
      return;
    }
    const request: CheckRequest = {
      jobId: a.jobId,
      model: { modelId: stored.modelId, name: model.name, weightsHash: model.weightsHash },
      kind: job.kind,
      input: job.input,
      promptTokenIds: job.promptTokenIds,
      outputTokenIds: job.outputTokenIds,
      worker: stored.worker,
      gateway: stored.gateway,
    };
    if (checker.mode === 'crosscheck') {
      // The scorer is drawn from the batch's on-chain randomness, fixed after settlement: nobody
      // serving or settling the job could know it. Never the audited worker, nor one of its keys.
      const randomness = (await chain.batchAudit(BigInt(a.batchId))).randomness;
      if (!randomness)
        throw new ValidatorError('The audited batch has no randomness to draw a scorer from', {
          code: ValidatorErrorCode.scorerError,
          retryable: true,
        });
      request.scorerSeed = scorerDrawSeed({ randomness, leaf: a.leaf, validator: owner });
      request.workerOperators = [signer, (await chain.workerBond(stored.worker)).operator];
      a.scorerSeed = request.scorerSeed;
    }
    const judged = await checkAndJudge(checker, request, (c: CheckResult) =>
      judge({
        job: evidence,
        scores: c.scores,
        expectedPromptTokenIds: c.expectedPromptTokenIds,
        modelInfo: c.modelInfo,
      }),
    );
    const kept: ScoreEvidence[] = [];
    for (const { result, verdict } of judged.checks)
      if (result.score) kept.push(await keepScore(a, result.score, verdict));
    if (judged.disagreement) scorerDisagreement(a, kept, log);
    if (!judged.verdict) {
      a.scores = kept;
      abstain(a, judged.reason ?? 'no confirmed verdict', log);
      return;
    }
    const v = judged.verdict;
    const checked = judged.checks[0]!.result;
    if (kept.length > 0) a.scores = kept;
    if (v.gatewayFaults.length > 0) await gatewayFault(a, stored.gateway, v.gatewayFaults, log);
    if (v.verdict === 'abstain') {
      abstain(a, "the gateway's evidence does not reproduce the worker-signed receipt", log);
      return;
    }
    a.vote = v.verdict;
    a.evidenceHash = v.evidenceHash;
    a.salt = randomSalt();
    a.reasons = v.reasons;
    a.soft = [...new Set(v.soft.map((s) => s.code))];
    a.scorer = checked.scorer;
    a.status = 'judged';
    metrics.audits.inc({ verdict: v.verdict });
    await store.save();
    const fields = {
      verdict: v.verdict,
      sampler: job.sampler,
      sampling: v.evidence.sampling,
      scorer: checked.scorer,
      ...(kept.length > 1 ? { scorers: kept.map((k) => k.worker) } : {}),
      soft: a.soft,
    };
    if (v.verdict === 'fail') log.warn({ ...fields, reasons: v.reasons.slice(0, 5) }, 'job FAILED its audit');
    else log.info(fields, 'job passed its audit');
  }

  /**
   * Keeps a drawn scorer's signed scores as evidence: the whole set in a file under the data
   * directory (anyone can check the signature and, with the weights, the scores), a summary in the
   * audit record.
   */
  async function keepScore(a: AuditRecord, score: SignedScore, v: Verdict): Promise<ScoreEvidence> {
    const dir = join(scoresDir, a.leaf.toLowerCase());
    const file = join(dir, `${score.attestation.scoreJobId.toLowerCase()}.json`);
    await mkdir(dir, { recursive: true });
    const summary = {
      verdict: v.verdict,
      reasons: [...new Set(v.reasons.map((r) => r.code))],
    };
    await writeFile(
      file,
      `${JSON.stringify({
        chainId: options.chainId,
        grid: options.grid,
        batchId: a.batchId,
        leaf: a.leaf,
        scorerSeed: a.scorerSeed,
        worker: score.worker,
        operator: score.operator,
        drawIndex: score.drawIndex,
        attestation: score.attestation,
        signature: score.signature,
        positions: score.positions,
        ...summary,
      })}\n`,
      { mode: 0o600 },
    );
    return {
      worker: score.worker,
      operator: score.operator,
      signature: score.signature,
      scoreJobId: score.attestation.scoreJobId,
      positionsHash: score.attestation.positionsHash,
      topK: score.attestation.topK,
      drawIndex: score.drawIndex,
      ...summary,
      file,
    };
  }

  /** Two drawn scorers disagree on a FAIL: counted, logged with both, both signed sets kept. */
  function scorerDisagreement(a: AuditRecord, kept: readonly ScoreEvidence[], log: Logger): void {
    a.scorerDisagreement = true;
    metrics.scorerDisagreements.inc({});
    log.warn(
      {
        worker: a.worker,
        scorers: kept.map((k) => ({
          worker: k.worker,
          operator: k.operator,
          drawIndex: k.drawIndex,
          verdict: k.verdict,
          reasons: k.reasons,
          file: k.file,
        })),
      },
      'scorer disagreement: the second drawn scorer does not confirm the first one’s FAIL',
    );
  }

  /**
   * Whether `signer` was the worker's operator key when it signed. A worker cannot escape an audit
   * by naming a new operator key after the fact: the key counts if it is the operator now, was at
   * the settlement block, or was named in the OPERATOR_LOOKBACK_BLOCKS before it.
   */
  /**
   * Whether the gateway serves, for the audited job, the receipt its batch settled, signed by the
   * worker's operator: the signer, or undefined after abstaining and reporting the gateway. A receipt
   * not provably the worker's (a forged one) gets no verdict: the gateway settled it, so it must hold
   * the worker's signature.
   */
  async function servedReceipt(
    a: AuditRecord,
    stored: Receipt,
    job: { receipt: Receipt; signature: Hex },
    log: Logger,
  ): Promise<Address | undefined> {
    if (receiptLeafHash(job.receipt).toLowerCase() !== a.leaf.toLowerCase()) {
      const detail = 'the gateway serves another receipt for this job than the batch holds';
      await gatewayFault(a, stored.gateway, [{ code: NodeGatewayFault.notSettled, detail }], log);
      abstain(a, detail, log);
      return undefined;
    }
    const signer = await recoverSigner(job.receipt, job.signature);
    a.signature = job.signature;
    if (!signer || !(await signedByWorker(stored.worker, signer, a))) {
      const detail = `the receipt is not signed by the worker's operator (signer ${signer ?? 'invalid'})`;
      await gatewayFault(a, stored.gateway, [{ code: NodeGatewayFault.signature, detail }], log);
      abstain(a, detail, log);
      return undefined;
    }
    return signer;
  }

  /**
   * A confidential job (judge/confidential.ts): the TEE evidence its receipt commits to must verify under
   * this validator's own trust anchors, as it stood when the job completed, and bind the key that signed it.
   */
  async function judgeConfidentialAudit(
    a: AuditRecord,
    stored: Receipt,
    client: AuditClient,
    log: Logger,
  ): Promise<void> {
    const job = await client.getConfidentialJob(a.jobId);
    const signer = await servedReceipt(a, stored, job, log);
    if (!signer) return;
    if (!job.confidential) {
      const detail = 'the gateway serves no attestation for a confidential receipt it settled';
      await gatewayFault(a, stored.gateway, [{ code: 'ATTESTATION_MISSING', detail }], log);
      abstain(a, detail, log);
      return;
    }
    const v = await judgeConfidential({
      receipt: stored,
      signer,
      attestation: job.confidential.attestation,
      sealedRequestHash: job.confidential.sealedRequestHash,
      evidence: job.confidential.evidence,
      anchors: (options.tee ?? { anchors: PRODUCTION_ANCHORS }).anchors,
    });
    if (v.verdict === 'abstain') {
      await gatewayFault(
        a,
        stored.gateway,
        v.reasons.map((r) => ({ code: r.code, detail: r.message })),
        log,
      );
      abstain(
        a,
        v.reasons[0]?.message ?? "the gateway's confidential evidence does not match the receipt",
        log,
      );
      return;
    }
    a.vote = v.verdict;
    a.evidenceHash = v.evidenceHash;
    a.salt = randomSalt();
    a.reasons = v.reasons.map((r) => ({ code: r.code, detail: r.message }));
    a.soft = [];
    a.status = 'judged';
    metrics.audits.inc({ verdict: v.verdict });
    await store.save();
    if (v.verdict === 'fail')
      log.warn(
        { verdict: 'fail', confidential: true, reasons: v.reasons },
        'confidential job FAILED its audit',
      );
    else log.info({ verdict: 'pass', confidential: true }, 'confidential job passed its audit');
  }

  /**
   * An image job: re-run randomly drawn denoising steps from the latents the worker committed to (and
   * its seed's noise, and the decode of its final latent) on the validator's own copy of the model.
   * Steps are drawn from the batch's on-chain randomness, fixed after the job was settled.
   */
  async function judgeImageAudit(
    a: AuditRecord,
    stored: Receipt,
    model: { name: string; weightsHash: Hex },
    client: AuditClient,
    log: Logger,
  ): Promise<void> {
    // Re-execute: without the model there is nothing to re-run (no verdict, no need to read the
    // evidence). Cross-check: drawn workers serving the model re-run the drawn computations.
    const pipeline = options.mode === 'reexecute' ? await imagePipelineFor(model) : undefined;
    if (options.mode === 'reexecute' && !pipeline) {
      abstain(a, `no copy of image model ${model.name} (${model.weightsHash}) to re-run`, log);
      return;
    }
    const job = await client.getImageJob(a.jobId);
    const signer = await servedReceipt(a, stored, job, log);
    if (!signer) return;
    const images: ImageAuditJob['images'] = [];
    for (const [i, out] of job.outputs.entries()) {
      // The bytes may have expired (they are kept for users an hour); the latents are kept for audits.
      const got = await client.getImage(a.jobId, i);
      images.push({
        bytes: got.bytes,
        hash: out.hash,
        trajectoryRoot: out.trajectoryRoot,
        latents: got.latents && latentsFromBytes(got.latents, job.params.steps + 1),
      });
    }
    const randomness = (await chain.batchAudit(BigInt(a.batchId))).randomness;
    if (!randomness)
      throw new ValidatorError('The audited batch has no randomness to draw steps from', {
        code: ValidatorErrorCode.scorerError,
        retryable: true,
      });
    const evidence: ImageAuditJob = {
      receipt: stored,
      promptTokenIds: job.promptTokenIds,
      negativeTokenIds: job.negativeTokenIds,
      params: job.params,
      pipeline: job.pipeline,
      images,
    };
    const draw = (image: number) =>
      drawImageSteps({ randomness, leaf: a.leaf, validator: owner, image, steps: job.params.steps });
    let v: ImageVerdict;
    if (pipeline) v = await judgeImage(evidence, localReexecutor(pipeline), draw);
    else {
      // Checkers drawn from the batch's randomness among the workers the gateway lists for the model,
      // never the audited worker nor a key of it; one checker's word never fails a worker: a FAIL needs
      // the next drawn checker to find it too.
      const listed = await client.listScorers(stored.modelId);
      const order = drawScorers(scorerDrawSeed({ randomness, leaf: a.leaf, validator: owner }), listed, {
        workers: [stored.worker],
        operators: [signer, (await chain.workerBond(stored.worker)).operator],
      });
      const judged: ImageVerdict[] = [];
      for (const checker of order) {
        const attempt = await judgeImage(evidence, remoteChecker(client, a, job, checker), draw).catch(
          (error: unknown) => {
            log.warn({ err: error, checker: checker.worker }, 'an image checker failed: drawing the next');
            return undefined;
          },
        );
        if (!attempt) continue;
        judged.push(attempt);
        if (attempt.verdict !== 'fail' || judged.length === 2) break;
      }
      const first = judged[0];
      if (!first) {
        abstain(a, 'no worker could check the image job', log);
        return;
      }
      if (first.verdict === 'fail' && judged[1]?.verdict !== 'fail') {
        abstain(
          a,
          judged[1]
            ? 'image checker disagreement: the second drawn checker does not confirm the FAIL'
            : 'no second checker to confirm a FAIL',
          log,
        );
        return;
      }
      v = first;
    }
    if (v.gatewayFaults.length > 0) await gatewayFault(a, stored.gateway, v.gatewayFaults, log);
    if (v.verdict === 'abstain') {
      abstain(a, v.unsupported ?? "the gateway's evidence does not reproduce the worker-signed receipt", log);
      return;
    }
    a.vote = v.verdict;
    a.evidenceHash = v.evidenceHash;
    a.salt = randomSalt();
    a.reasons = v.reasons;
    a.status = 'judged';
    metrics.audits.inc({ verdict: v.verdict });
    await store.save();
    const fields = { verdict: v.verdict, pipeline: job.pipeline, checked: v.checked, mode: options.mode };
    if (v.verdict === 'fail')
      log.warn({ ...fields, reasons: v.reasons.slice(0, 5) }, 'image job FAILED its audit');
    else log.info(fields, 'image job passed its audit');
  }

  /**
   * An image job's computations run by a drawn worker through the gateway (`POST /v1/audit/image-check`),
   * each answer's `ImageCheck` signature checked against that worker's operator key on chain, over
   * exactly the latent it started from (the one the audited worker committed to) and what it answered.
   */
  function remoteChecker(
    client: AuditClient,
    a: AuditRecord,
    job: AuditImageJobEvidence,
    checker: { worker: Address; operator: Address },
  ): ImageReexecutor {
    const ask = async (op: ImageCheckOp, image: number, step: number, input: Float32Array | undefined) => {
      const answer = await client.imageCheck({ jobId: a.jobId, worker: checker.worker, image, op, step });
      const latent = answer.latent && latentsFromBytes(answer.latent, 1)?.[0];
      const output = latent ? hashLatent(latent) : answer.imageHash;
      if (!output)
        throw new ValidatorError('The image checker answered nothing', {
          code: ValidatorErrorCode.scorerError,
        });
      const signer = await recoverTypedDataSigner({
        ...imageCheckTypedData(
          {
            checkJobId: answer.checkJobId,
            auditedJobId: a.jobId,
            worker: checker.worker,
            modelId: a.modelId,
            requestHash: job.receipt.requestHash,
            op: IMAGE_CHECK_OPS.indexOf(op),
            image,
            step,
            input: input ? hashLatent(input) : zeroHash,
            output,
          },
          options.chainId,
          options.grid,
        ),
        signature: answer.signature,
      }).catch(() => null);
      if (!signer || !(await signedByWorker(checker.worker, signer, a)))
        throw new ValidatorError(
          'The image checker’s answer is not signed by its operator over this computation',
          {
            code: ValidatorErrorCode.scorerError,
          },
        );
      return { latent, imageHash: answer.imageHash };
    };
    return {
      name: job.pipeline,
      initialLatent: async (_p, image) => (await ask('noise', image, 0, undefined)).latent!,
      step: async (r) => (await ask('step', r.image, r.from, r.latent)).latent!,
      decodeHash: async (image, latent) => {
        const { imageHash } = await ask('decode', image, job.params.steps, latent);
        if (!imageHash)
          throw new ValidatorError('The image checker decoded nothing', {
            code: ValidatorErrorCode.scorerError,
          });
        return imageHash;
      },
    };
  }

  /** The pipeline to re-run an image model with: the project's generated models, by their weights hash. */
  const imagePipelines = new Map<string, Promise<DiffusionPipeline>>();
  async function imagePipelineFor(model: {
    name: string;
    weightsHash: Hex;
  }): Promise<DiffusionPipeline | undefined> {
    const preset = Object.entries(IMAGE_MODEL_PRESETS).find(
      ([, p]) =>
        p.weightsHash.toLowerCase() === model.weightsHash.toLowerCase() && p.config.name === model.name,
    );
    if (!preset) return undefined;
    let p = imagePipelines.get(preset[0]);
    if (!p) {
      p = createDiffusionPipeline({
        preset: preset[0] as keyof typeof IMAGE_MODEL_PRESETS,
        dir: options.modelDir,
        threads: options.threads,
      });
      imagePipelines.set(preset[0], p);
      p.catch(() => imagePipelines.delete(preset[0]));
    }
    return p;
  }

  async function signedByWorker(worker: Address, signer: Address, a: AuditRecord): Promise<boolean> {
    const same = (x: Address | null) => x !== null && x.toLowerCase() === worker.toLowerCase();
    if (same(await chain.workerOf(signer))) return true;
    const settled = state.batches[a.batchId]?.settledBlock;
    if (settled === undefined) return false;
    const at = BigInt(settled);
    // A pruned node cannot serve old state: then only the logs decide.
    if (same(await chain.workerOf(signer, at).catch(() => null))) return true;
    const from = at > OPERATOR_LOOKBACK_BLOCKS ? at - OPERATOR_LOOKBACK_BLOCKS : 0n;
    for (let to = at; to >= from; to -= BigInt(options.logRange)) {
      const lo = to - BigInt(options.logRange) + 1n > from ? to - BigInt(options.logRange) + 1n : from;
      if (await chain.workerOperatorSet(worker, signer, lo, to)) return true;
      if (lo === from) break;
    }
    return false;
  }

  async function recoverSigner(receipt: Receipt, signature: Hex): Promise<Address | null> {
    try {
      return await recoverTypedDataSigner({
        ...receiptTypedData(receipt, options.chainId, options.grid),
        signature,
      });
    } catch {
      return null;
    }
  }

  /**
   * Keeps the state file bounded: beyond MAX_DONE_BATCHES finished batches, the oldest go, with
   * their audits (all past their deadline: the contract takes no vote for them any more), into
   * the `archived` counters.
   */
  function prune(): void {
    const done = Object.values(state.batches)
      .filter((b) => b.status === 'done')
      .sort((x, y) => (BigInt(x.batchId) < BigInt(y.batchId) ? -1 : 1));
    for (const b of done.slice(0, Math.max(0, done.length - MAX_DONE_BATCHES))) {
      for (const a of Object.values(state.audits)) {
        if (a.batchId !== b.batchId) continue;
        if (a.status === 'revealed' || a.status === 'finalized') state.archived[a.vote ?? 'pass']++;
        else state.archived.abstained++;
        if (a.scores?.length)
          void rm(join(scoresDir, a.leaf.toLowerCase()), { recursive: true, force: true }).catch(() => {});
        delete state.audits[a.leaf];
      }
      state.archived.batches++;
      delete state.batches[b.batchId];
    }
  }

  /**
   * Reports a gateway whose evidence does not reproduce what the worker signed: a warning naming
   * the gateway, the job and the reason codes (never prompt text), the counter, the state file.
   */
  async function gatewayFault(
    a: AuditRecord,
    gateway: Address,
    faults: readonly { code: string; detail: string }[],
    log: Logger,
  ): Promise<void> {
    const codes = [...new Set(faults.map((f) => f.code))];
    const key = gateway.toLowerCase();
    state.gatewayFaults[key] ??= {};
    const counts = state.gatewayFaults[key];
    for (const code of codes) {
      counts[code] = (counts[code] ?? 0) + 1;
      metrics.gatewayFaults.inc({ gateway: key, reason: code });
    }
    a.gatewayFaults = codes;
    log.warn(
      {
        gateway,
        jobId: a.jobId,
        worker: a.worker,
        reasons: codes,
        details: faults.map((f) => ({ code: f.code, detail: f.detail })),
      },
      'gateway fault: its audit evidence does not reproduce the worker-signed receipt',
    );
    await reportOnChain(a, codes, faults, log);
  }

  /**
   * Puts the fault on chain (`GatewayFaultReported`, shown on every dashboard): the first reason code,
   * and the hash of every code and detail this node keeps in its state file. A report is a public
   * record, not a penalty, and best effort: a failed send is logged; the counts above stand.
   */
  async function reportOnChain(
    a: AuditRecord,
    codes: readonly string[],
    faults: readonly { code: string; detail: string }[],
    log: Logger,
  ): Promise<void> {
    if (a.faultReportTx || codes.length === 0) return;
    try {
      const r = await chain.reportGatewayFault({
        batchId: BigInt(a.batchId),
        leaf: a.leaf,
        proof: a.proof,
        reason: codes[0]!,
        evidenceHash: evidenceHash(faults.map((f) => ({ code: f.code, detail: f.detail }))),
      });
      if (r.status === 'sent') {
        a.faultReportTx = r.hash;
        log.info({ tx: r.hash, reason: codes[0] }, 'gateway fault reported on chain');
      } else if (r.errorName === 'AlreadyReported') {
        a.faultReportTx = 'already-reported';
      } else {
        log.warn({ error: r.errorName, reason: codes[0] }, 'the chain refused the gateway fault report');
      }
    } catch (error) {
      log.warn({ err: error }, 'reporting the gateway fault on chain failed');
    }
  }

  function gatewayFaultTotal(): number {
    let n = 0;
    for (const counts of Object.values(state.gatewayFaults)) for (const c of Object.values(counts)) n += c;
    return n;
  }

  function abstain(a: AuditRecord, reason: string, log: Logger) {
    a.status = 'abstained';
    a.abstainReason = reason;
    metrics.audits.inc({ verdict: 'abstained' });
    log.warn({ reason }, 'abstained from the audit');
  }

  async function finalizeDue(): Promise<void> {
    const now = head!.timestamp;
    const leaves: { leaf: Hex; audit?: AuditRecord; batch?: BatchRecord }[] = [];
    for (const a of Object.values(state.audits))
      if (a.status === 'revealed' && now > BigInt(a.revealDeadline)) leaves.push({ leaf: a.leaf, audit: a });
    if (options.finalize === 'all')
      for (const b of Object.values(state.batches))
        if (b.status === 'listed' && b.revealDeadline !== null && now > BigInt(b.revealDeadline))
          for (const leaf of b.audited)
            if (!b.finalized.includes(leaf) && !state.audits[leaf]) leaves.push({ leaf, batch: b });
    for (const { leaf, audit, batch } of leaves) {
      if (runState !== 'running') return;
      try {
        const r = await chain.finalize(leaf);
        if (r.status === 'refused' && r.errorName === 'AuditWindowOpen') continue;
        if (
          r.status === 'refused' &&
          r.errorName !== 'AlreadyFinalized' &&
          r.errorName !== 'NothingToFinalize'
        )
          throw new ValidatorError(`finalize refused: ${r.message}`, {
            code: ValidatorErrorCode.evidenceInvalid,
          });
        const info = await chain.getAudit(leaf);
        metrics.finalized.inc({ verdict: info.verdict });
        if (batch) batch.finalized.push(leaf);
        if (audit) {
          audit.status = 'finalized';
          audit.verdict = info.verdict;
          const agreed = audit.vote === info.verdict;
          logger.info(
            {
              jobId: audit.jobId,
              leaf,
              vote: audit.vote,
              verdict: info.verdict,
              slashed: info.slashed.toString(),
              agreed,
            },
            agreed ? 'audit finalized: our vote is the verdict' : 'audit finalized against our vote',
          );
        }
        await store.save();
      } catch (error) {
        fail('finalize failed', error, { leaf });
      }
    }
  }

  async function maybeWithdraw(minimum: bigint): Promise<void> {
    try {
      const earnings = await chain.earningsOf(owner);
      metrics.earnings.set({}, Number(formatUnits(earnings, 18)));
      if (earnings === 0n || earnings < minimum) return;
      if (account.address.toLowerCase() !== owner.toLowerCase()) {
        // Only an account's owner can withdraw its earnings: tell the owner (once per change).
        if (lastEarnings !== earnings)
          logger.info(
            { owner, earnings: formatAipg(earnings) },
            'earnings are waiting for the bond owner: run `aipg withdraw earnings` from the owner wallet',
          );
        lastEarnings = earnings;
        return;
      }
      const r = await chain.withdrawEarnings();
      state.withdrawn = (BigInt(state.withdrawn) + r.amount).toString();
      metrics.withdrawn.inc({}, Number(formatUnits(r.amount, 18)));
      logger.info({ amount: formatAipg(r.amount), tx: r.hash }, 'earnings withdrawn');
    } catch (error) {
      fail('withdraw failed', error);
    }
  }

  // ── the loop ───────────────────────────────────────────────────────────────────────────────
  let wake: (() => void) | undefined;
  let current: Promise<void> = Promise.resolve();
  const runPass = () => {
    current = current.then(async () => {
      if (runState !== 'running') return;
      try {
        await pass();
      } catch (error) {
        fail('pass failed', error);
      }
    });
    return current;
  };
  const loop = (async () => {
    while (runState === 'running') {
      await runPass();
      if (runState !== 'running') break;
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, options.pollIntervalMs);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      wake = undefined;
    }
  })();

  let markStopped: () => void = () => {};
  const stopped = new Promise<void>((resolve) => {
    markStopped = resolve;
  });

  const count = <K extends string>(keys: readonly K[], values: K[]) =>
    Object.fromEntries(keys.map((k) => [k, values.filter((v) => v === k).length])) as Record<K, number>;

  return {
    status() {
      const audits = Object.values(state.audits);
      return {
        state: runState,
        mode: checker.mode,
        chainId: options.chainId,
        grid: options.grid,
        operator: account.address,
        owner,
        stateFile,
        cursor: BigInt(state.cursor),
        head: head?.number ?? null,
        passes,
        batches: count(
          ['waiting', 'listed', 'done'],
          Object.values(state.batches).map((b) => b.status),
        ),
        audits: count(
          auditStatuses,
          audits.map((a) => a.status),
        ),
        archived: { ...state.archived },
        gatewayFaults: {
          total: gatewayFaultTotal(),
          byGateway: Object.fromEntries(
            Object.entries(state.gatewayFaults).map(([g, counts]) => [g, { ...counts }]),
          ),
        },
        votes: {
          pass:
            state.archived.pass +
            audits.filter((a) => a.vote === 'pass' && (a.status === 'revealed' || a.status === 'finalized'))
              .length,
          fail:
            state.archived.fail +
            audits.filter((a) => a.vote === 'fail' && (a.status === 'revealed' || a.status === 'finalized'))
              .length,
        },
        metricsUrl: metricsServer?.url ?? null,
        lastError,
      };
    },
    poll: () => runPass(),
    stopped,
    async stop() {
      if (runState !== 'running') return stopped;
      runState = 'stopping';
      wake?.();
      await loop;
      await current;
      await store.save();
      await checker.close();
      for (const p of imagePipelines.values()) await p.then((x) => x.close()).catch(() => {});
      await common.shutdown.run();
      runState = 'stopped';
      logger.info({ cursor: state.cursor }, 'validator stopped');
      markStopped();
    },
  };
}

/**
 * The operator key's validator bond owner; throws a one-line refusal naming the command that fixes
 * it when there is no active bond.
 */
export async function checkValidatorBond(chain: ValidatorChain, operator: Address): Promise<Address> {
  const [owner, minimum] = await Promise.all([chain.validatorOwner(operator), chain.validatorMinimumBond()]);
  const plain = (wei: bigint) => formatUnits(wei, 18);
  if (!owner)
    throw new ValidatorError(
      `no validator bond for operator ${operator}: bond at least ${formatAipg(minimum)} AIPG with \`aipg stake validator ${plain(minimum)}\` (or, from the owner's wallet, \`aipg stake validator ${plain(minimum)} --operator ${operator}\`)`,
      { code: ValidatorErrorCode.bondMissing },
    );
  const bond = await chain.validatorBond(owner);
  if (!bond.active) {
    const missing = minimum > bond.amount ? minimum - bond.amount : minimum;
    throw new ValidatorError(
      bond.amount === 0n && bond.unbonding > 0n
        ? `the validator bond of ${owner} is fully unbonding (${formatAipg(bond.unbonding)} AIPG): cancel with \`aipg unbond validator --cancel\` or bond again with \`aipg stake validator ${plain(minimum)}\``
        : `the validator bond of ${owner} is ${formatAipg(bond.amount)} AIPG, below the ${formatAipg(minimum)} AIPG minimum: add ${formatAipg(missing)} AIPG with \`aipg stake validator ${plain(missing)}\``,
      { code: ValidatorErrorCode.bondInactive },
    );
  }
  return owner;
}
