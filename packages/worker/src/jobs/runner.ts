import {
  computeImageRequestHash,
  hashImage,
  hashLatent,
  IMAGE_CHECK_OPS,
  type ImageCheckMessage,
  type ImageJobMessage,
  imageCheckTypedData,
  type JobMessage,
  type JobSeqMessage,
  latentBytes,
  latentsFromBytes,
  receiptToJson,
  resultMessage,
  type ScoreMessage,
  type ScoreResultMessage,
  type SealedJobMessage,
  scoreAttestation,
  scorePositionSchema,
  scoreTypedData,
  type WorkerToGateway,
} from '@aipg/core';
import type { Logger } from 'pino';
import type { Address, Hex, LocalAccount } from 'viem';
import { BackendErrorCode } from '../backends/errors.ts';
import type { ImageBackend, InferenceBackend, JobFrame } from '../backends/types.ts';
import { WorkerErrorCode } from '../errors.ts';
import type { WorkerMetrics } from '../metrics/registry.ts';
import type { WorkerTee } from '../tee/index.ts';
import { generateImages } from './image-runner.ts';
import { buildTextReceipt, signReceipt } from './receipt.ts';
import { runSealedJob, SealedRequestError } from './sealed-runner.ts';
import type { ReceiptSeqGuard } from './seq-guard.ts';

/** Sealed requests remembered as answered (replay guard of `runSealed`). */
const ANSWERED_SEALED = 65_536;

/** A backend's scores, as a `score-result` frame carries them. */
const scorePositionsSchema = scorePositionSchema.array();

/** One text model this worker serves. */
export type ServedTextModel = {
  backend: InferenceBackend;
  maxConcurrency: number;
  /** The on-chain rate card read at start, to flag jobs priced below it. */
  rates?: { inputPerMTokens: bigint; outputPerMTokens: bigint } | undefined;
};

/** One image model this worker serves. */
export type ServedImageModel = { image: ImageBackend; maxConcurrency: number };

/** One model this worker serves (text or image; one process may serve both). */
export type ServedModel = ServedTextModel | ServedImageModel;

const nameOf = (s: ServedModel) => ('image' in s ? s.image.model.name : s.backend.model.name);

/**
 * Where a job's frames go: the gateway connection it arrived on. Jobs live and die with their
 * connection: after a drop their frames have nowhere to go, so they are aborted.
 */
export type JobSession = {
  /** The gateway's address from its login challenge: the receipt's `gateway`. */
  gateway: Address;
  send(frame: WorkerToGateway): void;
};

export type JobRunnerParameters = {
  logger: Logger;
  metrics: WorkerMetrics;
  models: ReadonlyMap<Hex, ServedModel>;
  account: LocalAccount;
  /** Bond owner: the receipt's `worker`. */
  owner: Address;
  chainId: number;
  grid: Address;
  /** Accepts each gateway's receipt number once (and remembers the highest signed across restarts). */
  seqGuard: ReceiptSeqGuard;
  /** A worker in a TEE: it takes confidential (`sealed-job`) jobs. */
  tee?: WorkerTee | undefined;
  now?: () => number;
};

/** Why a running job was aborted (`refused`: the receipt number sent after the job was refused). */
export type AbortKind = 'cancel' | 'disconnect' | 'shutdown' | 'refused';

/** Why a number sent after its job (`job-seq`) was refused: what the `job-error` says. */
type Refusal = { code: string; message: string };

type RunningJob = {
  jobId: Hex;
  modelId: Hex;
  session: JobSession;
  controller: AbortController;
  abortKind: AbortKind | undefined;
  done: Promise<void>;
  /** A text job sent without its receipt number: takes the number its `job-seq` frame brings. */
  awaitingSeq?: ((seq: bigint) => void) | undefined;
  /** Why that number was refused (the job is aborted `refused`). */
  refusal?: Refusal | undefined;
};

export type JobRunnerStats = {
  active: number;
  completed: number;
  failed: number;
  cancelled: number;
  rejected: number;
  /** Score jobs (validators' cross-checks) answered with a `score-result`. */
  scored: number;
  byModel: Record<Hex, { active: number; maxConcurrency: number }>;
};

export type JobRunner = ReturnType<typeof createJobRunner>;

class JobAbortedError extends Error {
  override name = 'AbortError';
}

/**
 * Runs jobs on the matching backend with per-model concurrency, streams tokens, signs receipts.
 * Over-capacity jobs, jobs for a model not served here and jobs arriving while draining are refused
 * at once with a retryable `job-error`, so the gateway can route them elsewhere.
 */
export function createJobRunner({
  logger,
  metrics,
  models,
  account,
  owner,
  chainId,
  grid,
  seqGuard,
  tee,
  now = Date.now,
}: JobRunnerParameters) {
  const running = new Map<Hex, RunningJob>();
  const activeByModel = new Map<Hex, number>();
  const counts = { completed: 0, failed: 0, cancelled: 0, rejected: 0, scored: 0 };
  const pricingWarned = new Set<string>();
  let accepting = true;

  for (const [modelId, served] of models) {
    metrics.capacity.set({ model: nameOf(served) }, served.maxConcurrency);
    metrics.activeJobs.set({ model: nameOf(served) }, 0);
    activeByModel.set(modelId, 0);
  }

  function sendError(
    session: JobSession,
    job: { jobId: Hex },
    modelName: string,
    code: string,
    message: string,
    retryable: boolean,
  ) {
    metrics.errors.inc({ model: modelName, code });
    session.send({ type: 'job-error', jobId: job.jobId, code, message, retryable });
  }

  /**
   * Takes a slot of the model for `frame` (a job or a score job: both count against the model's
   * concurrency) and starts `work`, or refuses at once with a retryable `job-error`.
   */
  function admit(
    frame: { jobId: Hex; modelId: Hex },
    session: JobSession,
    what: 'job' | 'score job' | 'image job' | 'image check' | 'confidential job',
    work: (entry: RunningJob, served: ServedModel) => Promise<void>,
    check?: (served: ServedModel) => { code: string; message: string; retryable?: boolean } | undefined,
  ): void {
    const served = models.get(frame.modelId);
    const modelName = served ? nameOf(served) : 'unknown';
    const reject = (code: string, message: string, retryable = true) => {
      counts.rejected += 1;
      metrics.jobs.inc({ model: modelName, outcome: 'rejected' });
      logger.info({ jobId: frame.jobId, modelId: frame.modelId, code }, `${what} refused: ${message}`);
      sendError(session, frame, modelName, code, message, retryable);
    };
    if (running.has(frame.jobId)) {
      logger.warn({ jobId: frame.jobId }, `duplicate ${what} id ignored: that job is already running`);
      return;
    }
    if (!accepting) {
      reject(WorkerErrorCode.draining, 'worker is shutting down and takes no new jobs');
      return;
    }
    if (!served) {
      reject(WorkerErrorCode.modelNotServed, `model ${frame.modelId} is not served by this worker`);
      return;
    }
    const refused = check?.(served);
    if (refused) {
      reject(refused.code, refused.message, refused.retryable);
      return;
    }
    const active = activeByModel.get(frame.modelId) ?? 0;
    if (active >= served.maxConcurrency) {
      reject(WorkerErrorCode.busy, `model ${modelName} is at capacity (${served.maxConcurrency} jobs)`);
      return;
    }
    activeByModel.set(frame.modelId, active + 1);
    metrics.activeJobs.inc({ model: modelName });
    const entry: RunningJob = {
      jobId: frame.jobId,
      modelId: frame.modelId,
      session,
      controller: new AbortController(),
      abortKind: undefined,
      done: Promise.resolve(),
    };
    running.set(frame.jobId, entry);
    entry.done = work(entry, served).finally(() => {
      running.delete(frame.jobId);
      activeByModel.set(frame.modelId, (activeByModel.get(frame.modelId) ?? 1) - 1);
      metrics.activeJobs.dec({ model: modelName });
    });
  }

  /** Each receipt number once (the last of a job's checks: a duplicate frame of a running job is ignored before). */
  function seqCheck(session: JobSession, seq: bigint) {
    return seqGuard.accept(session.gateway, seq)
      ? undefined
      : {
          code: WorkerErrorCode.seqReused,
          message: `receipt number ${seq} of gateway ${session.gateway} was already accepted or signed by this worker`,
          retryable: false,
        };
  }

  const wrongKind = (served: ServedModel, want: 'text' | 'image') =>
    ('image' in served ? 'image' : 'text') === want
      ? undefined
      : {
          code: WorkerErrorCode.modelNotServed,
          message: `${nameOf(served)} is ${want === 'text' ? 'an image' : 'a text'} model here`,
          retryable: false,
        };

  function submit(job: JobMessage, session: JobSession): void {
    admit(
      job,
      session,
      'job',
      (entry, served) => run(entry, job, served as ServedTextModel),
      (served) =>
        wrongKind(served, 'text') ?? (job.seq === undefined ? undefined : seqCheck(session, BigInt(job.seq))),
    );
  }

  /**
   * A `job-seq` frame: the receipt number of a job that was sent without one. Checked as the `job`
   * frame's would have been (once per gateway); a refused number stops the job with a `job-error`.
   * False when no job of this connection waits for a number under that id.
   */
  function assignSeq(frame: JobSeqMessage, session: JobSession): boolean {
    const entry = running.get(frame.jobId);
    const take = entry?.awaitingSeq;
    if (!entry || !take || entry.session !== session || entry.abortKind) return false;
    entry.awaitingSeq = undefined;
    const seq = BigInt(frame.seq);
    entry.refusal = seqCheck(session, seq);
    if (entry.refusal) abort(entry, 'refused');
    else take(seq);
    return true;
  }

  /** A `sealed-job` frame: a confidential job, opened only here (in the TEE). */
  function submitSealed(job: SealedJobMessage, session: JobSession): void {
    admit(
      job,
      session,
      'confidential job',
      (entry, served) => runSealed(entry, job, served as ServedTextModel),
      (served) =>
        wrongKind(served, 'text') ??
        (!tee
          ? { code: WorkerErrorCode.teeUnavailable, message: 'this worker runs in no TEE', retryable: false }
          : !('backend' in served) || !served.backend.tokenizer
            ? {
                code: WorkerErrorCode.teeUnavailable,
                message: `the ${('backend' in served && served.backend.kind) || 'image'} backend of ${nameOf(served)} cannot run confidential jobs (no tokenizer in the enclave)`,
                retryable: false,
              }
            : undefined) ??
        seqCheck(session, BigInt(job.seq)),
    );
  }

  /**
   * The sealed requests this worker signed a receipt for (their `requestHash`, the newest `ANSWERED_SEALED`):
   * a gateway replaying a client's ciphertext to bill it twice gets a refusal, not a second receipt. A
   * client's own retry is sealed afresh (a new HPKE `enc`), so it never collides.
   */
  const answeredSealed = new Set<string>();
  async function runSealed(entry: RunningJob, job: SealedJobMessage, served: ServedTextModel): Promise<void> {
    const { session, controller } = entry;
    const { backend } = served;
    const model = backend.model.name;
    // Ids and counts only: nothing of a confidential job's content is ever logged.
    const log = logger.child({ jobId: job.jobId, model, confidential: true });
    const started = performance.now();
    try {
      const r = await runSealedJob({
        job,
        backend,
        tokenizer: backend.tokenizer!(),
        tee: tee!,
        owner,
        gateway: session.gateway,
        signal: controller.signal,
        now,
        sendChunk(seq, final, ciphertext) {
          if (!controller.signal.aborted)
            session.send({ type: 'sealed-chunk', jobId: job.jobId, seq, final, ciphertext });
        },
      });
      if (controller.signal.aborted) throw new JobAbortedError('aborted');
      if (answeredSealed.has(r.receipt.requestHash))
        throw new SealedRequestError(
          'this sealed request was already answered (a replay): no second receipt',
        );
      answeredSealed.add(r.receipt.requestHash);
      if (answeredSealed.size > ANSWERED_SEALED)
        answeredSealed.delete(answeredSealed.values().next().value as string);
      const signature = await signReceipt(account, r.receipt, chainId, grid);
      seqGuard.signed(session.gateway, r.receipt.seq);
      session.send({
        type: 'sealed-result',
        jobId: job.jobId,
        chunks: r.chunks,
        finishReason: r.finishReason,
        timings: r.timings,
        receipt: receiptToJson(r.receipt),
        signature,
      });
      counts.completed += 1;
      metrics.jobs.inc({ model, outcome: 'completed' });
      metrics.jobSeconds.observe({ model }, (performance.now() - started) / 1000);
      log.info(
        {
          inputTokens: Number(r.receipt.inputUnits),
          outputTokens: Number(r.receipt.outputUnits),
          ms: Math.round(performance.now() - started),
          fee: r.receipt.fee.toString(),
        },
        'confidential job completed',
      );
    } catch (error) {
      const kind = entry.abortKind;
      if (kind === 'cancel') {
        counts.cancelled += 1;
        metrics.jobs.inc({ model, outcome: 'cancelled' });
        sendError(session, job, model, WorkerErrorCode.jobCancelled, 'job cancelled', false);
        return;
      }
      counts.failed += 1;
      metrics.jobs.inc({ model, outcome: 'failed' });
      if (kind === 'disconnect') return;
      if (error instanceof SealedRequestError) {
        log.info({ reason: error.message }, 'confidential request refused');
        sendError(session, job, model, WorkerErrorCode.sealedRequestInvalid, error.message, false);
        return;
      }
      log.error({ errorName: error instanceof Error ? error.name : 'unknown' }, 'confidential job failed');
      sendError(
        session,
        job,
        model,
        kind === 'shutdown' ? WorkerErrorCode.draining : WorkerErrorCode.backendFailed,
        'the confidential job failed in the backend',
        kind !== undefined,
      );
    }
  }

  /** An `image-job` frame. */
  function submitImage(job: ImageJobMessage, session: JobSession): void {
    admit(
      job,
      session,
      'image job',
      (entry, served) => runImage(entry, job, served as ServedImageModel),
      (served) => wrongKind(served, 'image') ?? seqCheck(session, BigInt(job.seq)),
    );
  }

  /** An `image-check` frame: a validator's cross-check of an image job another worker ran. */
  function submitImageCheck(frame: ImageCheckMessage, session: JobSession): void {
    admit(
      frame,
      session,
      'image check',
      (entry, served) => runImageCheck(entry, frame, served as ServedImageModel),
      (served) =>
        wrongKind(served, 'image') ??
        ('image' in served && served.image.check
          ? undefined
          : {
              code: WorkerErrorCode.scoreUnsupported,
              message: `${nameOf(served)} cannot be checked here (no latents)`,
            }),
    );
  }

  async function runImageCheck(
    entry: RunningJob,
    frame: ImageCheckMessage,
    served: ServedImageModel,
  ): Promise<void> {
    const { session, controller } = entry;
    const model = served.image.model.name;
    try {
      const input = frame.latent ? latentsFromBytes(Buffer.from(frame.latent, 'base64'), 1)?.[0] : undefined;
      if (frame.op !== 'noise' && !input) throw new Error(`a ${frame.op} check needs one latent`);
      const out = await served.image.check!({
        op: frame.op,
        promptTokenIds: frame.promptTokenIds,
        negativeTokenIds: frame.negativeTokenIds,
        params: frame.params,
        image: frame.image,
        step: frame.step,
        latent: input,
        signal: controller.signal,
      });
      if (controller.signal.aborted) throw new JobAbortedError('aborted');
      const imageHash = out.bytes ? hashImage(out.bytes) : undefined;
      const zero = `0x${'00'.repeat(32)}` as Hex;
      const signature = await account.signTypedData(
        imageCheckTypedData(
          {
            checkJobId: frame.jobId,
            auditedJobId: frame.auditedJobId,
            worker: owner,
            modelId: frame.modelId,
            requestHash: computeImageRequestHash(
              frame.promptTokenIds,
              frame.negativeTokenIds,
              frame.params,
              served.image.pipeline,
            ),
            op: IMAGE_CHECK_OPS.indexOf(frame.op),
            image: frame.image,
            step: frame.step,
            input: input ? hashLatent(input) : zero,
            output: out.latent ? hashLatent(out.latent) : (imageHash ?? zero),
          },
          chainId,
          grid,
        ),
      );
      session.send({
        type: 'image-check-result',
        jobId: frame.jobId,
        ...(out.latent ? { latent: Buffer.from(latentBytes(out.latent)).toString('base64') } : {}),
        ...(imageHash ? { imageHash } : {}),
        signature,
      });
      counts.scored += 1;
    } catch (error) {
      if (entry.abortKind === 'disconnect') return;
      const cancelled = entry.abortKind === 'cancel';
      sendError(
        session,
        frame,
        model,
        cancelled ? WorkerErrorCode.jobCancelled : WorkerErrorCode.backendFailed,
        cancelled
          ? 'check cancelled'
          : `image check failed: ${error instanceof Error ? error.message : String(error)}`.slice(0, 500),
        !cancelled,
      );
    }
  }

  async function runImage(entry: RunningJob, job: ImageJobMessage, served: ServedImageModel): Promise<void> {
    const { session, controller } = entry;
    const model = served.image.model.name;
    const log = logger.child({ jobId: job.jobId, model });
    const started = performance.now();
    let progressed = false;
    try {
      const { receipt, frame } = await generateImages({
        job,
        backend: served.image,
        signal: controller.signal,
        account,
        owner,
        gateway: session.gateway,
        chainId,
        grid,
        now,
        onProgress: (x) => {
          if (controller.signal.aborted) return;
          progressed = true;
          session.send({ type: 'progress', jobId: job.jobId, ...x });
        },
      });
      if (controller.signal.aborted) throw new JobAbortedError('aborted');
      // Remembered before the receipt leaves: a restart never signs this number again.
      seqGuard.signed(session.gateway, receipt.seq);
      session.send(frame);
      counts.completed += 1;
      metrics.jobs.inc({ model, outcome: 'completed' });
      metrics.jobSeconds.observe({ model }, (performance.now() - started) / 1000);
      log.info(
        {
          images: frame.images.length,
          ms: Math.round(performance.now() - started),
          fee: receipt.fee.toString(),
        },
        'image job completed',
      );
    } catch (error) {
      const kind = entry.abortKind;
      if (kind === 'cancel') {
        counts.cancelled += 1;
        metrics.jobs.inc({ model, outcome: 'cancelled' });
        sendError(session, job, model, WorkerErrorCode.jobCancelled, 'job cancelled', false);
        return;
      }
      counts.failed += 1;
      metrics.jobs.inc({ model, outcome: 'failed' });
      if (kind === 'disconnect') return;
      log.error({ err: error, progressed }, 'image job failed');
      sendError(
        session,
        job,
        model,
        kind === 'shutdown' ? WorkerErrorCode.draining : WorkerErrorCode.backendFailed,
        `image generation failed: ${error instanceof Error ? error.message : String(error)}`.slice(0, 500),
        true,
      );
    }
  }

  /** A `score` frame: a validator's cross-check of a job another worker ran. */
  function submitScore(frame: ScoreMessage, session: JobSession): void {
    admit(
      frame,
      session,
      'score job',
      (entry, served) => runScore(entry, frame, served as ServedTextModel),
      (served) =>
        'backend' in served && served.backend.score
          ? undefined
          : {
              code: WorkerErrorCode.scoreUnsupported,
              message: `the ${'image' in served ? served.image.kind : served.backend.kind} backend of ${nameOf(served)} cannot score`,
            },
    );
  }

  async function runScore(entry: RunningJob, frame: ScoreMessage, served: ServedTextModel): Promise<void> {
    const { session, controller } = entry;
    const { backend } = served;
    const model = backend.model.name;
    const log = logger.child({ jobId: frame.jobId, model });
    const started = performance.now();
    try {
      if (!backend.score) throw new Error('the backend cannot score');
      const result = await backend.score({
        promptTokenIds: frame.promptTokenIds,
        outputTokenIds: frame.outputTokenIds,
        topK: frame.topK,
        signal: controller.signal,
      });
      if (controller.signal.aborted) throw new JobAbortedError('aborted');
      const positions = scorePositionsSchema.safeParse(result.positions);
      if (!positions.success)
        throw new Error(
          `backend returned invalid scores: ${positions.error.issues[0]?.message ?? 'unknown'}`,
        );
      if (positions.data.length !== frame.outputTokenIds.length)
        throw new Error(
          `backend scored ${positions.data.length} positions for ${frame.outputTokenIds.length} tokens`,
        );
      // The worker answers for its scores with its bond: the validator keeps the signed set as evidence.
      const signature = await account.signTypedData(
        scoreTypedData(
          scoreAttestation({
            scoreJobId: frame.jobId,
            auditedJobId: frame.auditedJobId,
            worker: owner,
            modelId: frame.modelId,
            promptTokenIds: frame.promptTokenIds,
            outputTokenIds: frame.outputTokenIds,
            topK: frame.topK,
            positions: positions.data,
          }),
          chainId,
          grid,
        ),
      );
      const out: ScoreResultMessage = {
        type: 'score-result',
        jobId: frame.jobId,
        positions: positions.data,
        signature,
      };
      session.send(out);
      counts.scored += 1;
      metrics.jobs.inc({ model, outcome: 'scored' });
      log.info(
        {
          inputTokens: frame.promptTokenIds.length,
          outputTokens: frame.outputTokenIds.length,
          topK: frame.topK,
          ms: Math.round(performance.now() - started),
        },
        'score job completed',
      );
    } catch (error) {
      const kind = entry.abortKind;
      if (kind === 'cancel') {
        counts.cancelled += 1;
        metrics.jobs.inc({ model, outcome: 'cancelled' });
        log.info('score job cancelled by the gateway');
        sendError(session, frame, model, WorkerErrorCode.jobCancelled, 'job cancelled', false);
        return;
      }
      counts.failed += 1;
      metrics.jobs.inc({ model, outcome: 'failed' });
      if (kind === 'disconnect') {
        log.warn('score job aborted: the gateway connection dropped');
        return;
      }
      if (kind === 'shutdown') {
        log.warn('score job aborted: worker stopping');
        sendError(session, frame, model, WorkerErrorCode.draining, 'worker stopped before scoring', true);
        return;
      }
      const code = (error as { code?: unknown } | null)?.code;
      const message = error instanceof Error ? error.message : String(error);
      const details = (error as { details?: unknown } | null)?.details;
      if (code === 'INVALID_TOKEN') {
        log.info({ details }, 'score job refused: ids outside the vocabulary');
        sendError(
          session,
          frame,
          model,
          WorkerErrorCode.scoreInvalid,
          `${message}${typeof details === 'string' ? `: ${details}` : ''}`.slice(0, 500),
          false,
        );
        return;
      }
      log.error({ err: error }, 'score job failed');
      // Another worker may have a larger context or a healthier engine.
      sendError(
        session,
        frame,
        model,
        WorkerErrorCode.backendFailed,
        `scoring failed: ${message}${typeof details === 'string' ? ` (${details})` : ''}`.slice(0, 500),
        true,
      );
    }
  }

  async function run(entry: RunningJob, job: JobMessage, served: ServedTextModel): Promise<void> {
    const { session, controller } = entry;
    const { backend } = served;
    const model = backend.model.name;
    const log = logger.child({ jobId: job.jobId, model });
    const started = performance.now();
    /** Tokens the backend produced so far, and those that left in `token` frames. */
    let streamedTokens = 0;
    let sentTokens = 0;
    // A client that reads the answer whole: the first frame only (protocol.ts `tokens`).
    const firstOnly = job.tokens === 'first';
    // A devnet adversary may rewrite what leaves (adversary/index.ts); honest backends send as is.
    const emit = <F extends JobFrame>(frame: F) => session.send(backend.rewriteFrame?.(frame) ?? frame);
    // Sent before its number was reserved: the number follows (`assignSeq`); nothing is signed before.
    let seq: Promise<bigint> | bigint;
    if (job.seq !== undefined) seq = BigInt(job.seq);
    else {
      let resolve!: (n: bigint) => void;
      let reject!: (e: unknown) => void;
      seq = new Promise<bigint>((res, rej) => {
        resolve = res;
        reject = rej;
      });
      // Settles on abort too (a cancel, a drop, a refusal), so the wait below never outlives the job.
      controller.signal.addEventListener('abort', () => reject(controller.signal.reason), { once: true });
      seq.catch(() => {});
      entry.awaitingSeq = resolve;
    }
    warnIfUnderpriced(job, served, log);
    log.debug(
      { kind: job.kind, stream: job.stream, maxTokens: job.params.maxTokens, confidential: job.confidential },
      'job started',
    );
    // Tokens that arrive together (one read of the backend's stream) leave as one frame: a frame per
    // token costs both ends a message each. Sent after the current I/O turn, so nothing waits longer.
    let unsent: number[] = [];
    let flushing: NodeJS.Immediate | undefined;
    const flushTokens = () => {
      if (flushing) clearImmediate(flushing);
      flushing = undefined;
      if (unsent.length === 0 || controller.signal.aborted) return;
      const tokenIds = unsent;
      unsent = [];
      sentTokens += tokenIds.length;
      emit({ type: 'token', jobId: job.jobId, tokenIds });
    };
    try {
      const result = await backend.generate({
        input: job.input,
        promptTokenIds: job.promptTokenIds,
        params: job.params,
        signal: controller.signal,
        onToken: job.stream
          ? (delta) => {
              if (controller.signal.aborted || delta.tokenIds.length === 0) return;
              streamedTokens += delta.tokenIds.length;
              if (firstOnly && sentTokens > 0) return;
              for (const id of delta.tokenIds) unsent.push(id);
              flushing ??= setImmediate(flushTokens);
            }
          : undefined,
      });
      // The result carries every output id: tokens still waiting for their frame (those of the read that
      // ended the answer, all of them when it came in one) leave with it, not before it in a frame of
      // their own; the gateway shows a streaming client what it has not seen from the verified result.
      // A result that must still wait for its number (`assignSeq` has not taken it) lets them go now.
      if (entry.awaitingSeq === undefined) {
        if (flushing) clearImmediate(flushing);
        flushing = undefined;
        unsent = [];
      } else flushTokens();
      if (controller.signal.aborted) throw new JobAbortedError('aborted');
      const receipt = buildTextReceipt({
        job,
        seq: await seq,
        gateway: session.gateway,
        worker: owner,
        result,
        sampler: backend.sampler,
        completedAt: Math.floor(now() / 1000),
      });
      const signature = await signReceipt(account, receipt, chainId, grid);
      // Remembered before the receipt leaves: a restart never signs this number again.
      seqGuard.signed(session.gateway, receipt.seq);
      const frame = resultMessage.safeParse({
        type: 'result',
        jobId: job.jobId,
        promptTokenIds: result.promptTokenIds,
        outputTokenIds: result.outputTokenIds,
        finishReason: result.finishReason,
        timings: result.timings,
        receipt: receiptToJson(receipt),
        signature,
      });
      if (!frame.success) {
        throw new Error(`backend returned an invalid result: ${frame.error.issues[0]?.message ?? 'unknown'}`);
      }
      if (controller.signal.aborted) throw new JobAbortedError('aborted');
      emit(frame.data);
      counts.completed += 1;
      metrics.jobs.inc({ model, outcome: 'completed' });
      metrics.tokens.inc({ model, direction: 'input' }, result.promptTokenIds.length);
      metrics.tokens.inc({ model, direction: 'output' }, result.outputTokenIds.length);
      metrics.jobSeconds.observe({ model }, (performance.now() - started) / 1000);
      metrics.ttftSeconds.observe({ model }, result.timings.ttftMs / 1000);
      log.info(
        {
          inputTokens: result.promptTokenIds.length,
          outputTokens: result.outputTokenIds.length,
          finishReason: result.finishReason,
          ms: Math.round(performance.now() - started),
          fee: receipt.fee.toString(),
        },
        'job completed',
      );
    } catch (error) {
      // What was streamed before the failure reaches the gateway before the error does.
      flushTokens();
      const kind = entry.abortKind;
      if (kind === 'cancel') {
        counts.cancelled += 1;
        metrics.jobs.inc({ model, outcome: 'cancelled' });
        log.info({ streamedTokens }, 'job cancelled by the gateway');
        sendError(session, job, model, WorkerErrorCode.jobCancelled, 'job cancelled', false);
        return;
      }
      const refusal = entry.refusal;
      if (kind === 'refused' && refusal) {
        counts.rejected += 1;
        metrics.jobs.inc({ model, outcome: 'rejected' });
        log.warn({ code: refusal.code }, `job stopped: ${refusal.message}`);
        sendError(session, job, model, refusal.code, refusal.message, false);
        return;
      }
      counts.failed += 1;
      metrics.jobs.inc({ model, outcome: 'failed' });
      if (kind === 'disconnect') {
        log.warn({ streamedTokens }, 'job aborted: the gateway connection dropped');
        return;
      }
      // No token sent yet: the user saw nothing and another worker may run the job.
      const retryable = sentTokens === 0;
      if (kind === 'shutdown') {
        log.warn({ streamedTokens }, 'job aborted: worker stopping');
        sendError(
          session,
          job,
          model,
          WorkerErrorCode.draining,
          'worker stopped before the job finished',
          retryable,
        );
        return;
      }
      const message = error instanceof Error ? error.message : String(error);
      const code = (error as { code?: unknown } | null)?.code;
      const details = (error as { details?: unknown } | null)?.details;
      const why = `${message}${typeof details === 'string' ? `: ${details}` : ''}`.slice(0, 500);
      if (code === 'INVALID_TOKEN') {
        // The gateway's ids are not this model's: no worker of it can run them.
        log.warn({ details }, 'job refused: prompt ids outside the vocabulary');
        sendError(session, job, model, WorkerErrorCode.promptInvalid, why, false);
        return;
      }
      if (code === BackendErrorCode.promptMismatch) {
        log.warn({ details }, "job refused: the backend would not run the gateway's prompt ids");
        sendError(session, job, model, WorkerErrorCode.promptMismatch, why, retryable);
        return;
      }
      log.error({ err: error, streamedTokens, retryable }, 'job failed');
      sendError(
        session,
        job,
        model,
        WorkerErrorCode.backendFailed,
        `backend failed: ${message}`.slice(0, 500),
        retryable,
      );
    }
  }

  function warnIfUnderpriced(job: JobMessage, served: ServedTextModel, log: Logger) {
    if (!served.rates) return;
    const key = `${job.modelId}:${job.pricing.inputPerMTokens}:${job.pricing.outputPerMTokens}`;
    if (pricingWarned.has(key)) return;
    if (
      BigInt(job.pricing.inputPerMTokens) < served.rates.inputPerMTokens ||
      BigInt(job.pricing.outputPerMTokens) < served.rates.outputPerMTokens
    ) {
      pricingWarned.add(key);
      log.warn(
        {
          jobInput: job.pricing.inputPerMTokens,
          jobOutput: job.pricing.outputPerMTokens,
          chainInput: served.rates.inputPerMTokens.toString(),
          chainOutput: served.rates.outputPerMTokens.toString(),
        },
        'gateway prices this model below the rate card read at start (rates may have changed on chain)',
      );
    }
  }

  function abort(entry: RunningJob, kind: AbortKind) {
    if (entry.abortKind) return;
    entry.abortKind = kind;
    entry.controller.abort(new JobAbortedError(kind));
  }

  return {
    submit,
    assignSeq,
    submitImage,
    submitSealed,
    submitImageCheck,
    submitScore,
    /** `cancel` frame from the gateway: aborts the job's (or score job's) backend call. False when it is not running. */
    cancel(jobId: Hex): boolean {
      const entry = running.get(jobId);
      if (!entry) return false;
      abort(entry, 'cancel');
      return true;
    },
    /** The connection these jobs came on is gone: abort them (nothing is sent). */
    abortSession(session: JobSession): number {
      let n = 0;
      for (const entry of running.values()) {
        if (entry.session === session) {
          abort(entry, 'disconnect');
          n += 1;
        }
      }
      return n;
    },
    /** Hard stop: abort everything still running. */
    abortAll(): void {
      for (const entry of running.values()) abort(entry, 'shutdown');
    },
    /** Refuse new jobs from now on (retryable `WORKER_DRAINING`). */
    stopAccepting(): void {
      accepting = false;
    },
    get accepting() {
      return accepting;
    },
    /** Resolves when no job is running (jobs started meanwhile included). */
    async idle(): Promise<void> {
      while (running.size > 0) await Promise.allSettled([...running.values()].map((e) => e.done));
    },
    stats(): JobRunnerStats {
      const byModel: JobRunnerStats['byModel'] = {};
      for (const [modelId, served] of models) {
        byModel[modelId] = { active: activeByModel.get(modelId) ?? 0, maxConcurrency: served.maxConcurrency };
      }
      return { active: running.size, ...counts, byModel };
    },
  };
}
