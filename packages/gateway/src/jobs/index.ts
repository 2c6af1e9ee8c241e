import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import {
  computeImageFee,
  type ImageFormat,
  type ImageJobMessage,
  type ImageParams,
  type ImageResultMessage,
  imagePromptTokenIds,
  JobErrorCode,
  type JobMessage,
  MAX_IMAGE_PROMPT_TOKENS,
  MAX_PROMPT_TOKENS,
  type ProgressMessage,
  type Receipt,
  type ResultMessage,
  receiptLeafHash,
  type SamplingParams,
  type SealedChunkMessage,
  type SealedJobMessage,
  type SealedResultMessage,
} from '@aipg/core';
import type { Address, Hex } from 'viem';
import { type Billing, maxFee } from '../billing/index.ts';
import { createPayerRoom } from '../billing/room.ts';
import { type Chain, chainFailure, type OnchainModel } from '../chain/index.ts';
import { type Common, sleep } from '../common.ts';
import { GatewayError } from '../errors.ts';
import type { Hub, SlotReservation, WorkerSession } from '../hub/index.ts';
import type { Routing } from '../routing/index.ts';
import {
  type ApiKeyRecord,
  type JobCompletion,
  type JobInput,
  type JobKind,
  type JobMode,
  type JobRecord,
  type NewJob,
  type SealedInput,
  type Storage,
  type StoredReceipt,
  sealedOf,
} from '../storage/index.ts';
import { completedJob, type FirstDispatch, IMAGE_JOB_SAMPLING, insertedJob } from '../storage/jobs.ts';
import type { Tee } from '../tee/index.ts';
import type { GatewayTokenizer, Tokenizers } from '../tokenizers/index.ts';
import { sealedJobFrame, verifySealedResult } from './confidential.ts';
import { newJobId } from './id.ts';
import { acceptsImage, imageJobFrame, imageResultBound, verifyImageResult } from './image.ts';
import { createOutputStream } from './output.ts';
import { verifyResult } from './receipt-check.ts';
import { streamEvents } from './stream.ts';

/** A validated request, as the API hands it over. */
export type JobSpec = {
  kind: JobKind;
  /** The `model` string the client sent: a registry name or a 0x model id. */
  model: string;
  input: Exclude<JobInput, { sealed: unknown }>;
  maxTokens: number | undefined;
  temperature: number;
  topP: number;
  seed: number | null;
  stop: string[];
  includeUsage: boolean;
  pin: Address[] | null;
  maxPrice: { inputPerM: bigint; outputPerM: bigint } | null;
};

/** A validated confidential chat request (docs/confidential.md), as the API hands it over. */
export type ConfidentialSpec = {
  model: string;
  maxTokens: number | undefined;
  includeUsage: boolean;
  sealed: { worker: Address; attestation: Hex; enc: string; ciphertext: string };
  maxPrice: { inputPerM: bigint; outputPerM: bigint } | null;
};

/** A validated image request, as the API hands it over. */
export type ImageSpec = {
  model: string;
  prompt: string;
  negativePrompt: string;
  /** Unset (`size: "auto"`): the first size the workers online offer. */
  width: number | undefined;
  height: number | undefined;
  /** Unset: the pipeline's default (its range's middle, at most 20). */
  steps: number | undefined;
  guidance: number;
  /** Unset: drawn by the gateway (and signed into the receipt like any other). */
  seed: number | undefined;
  n: number;
  /** Unset: the first the chosen workers offer. */
  scheduler: string | undefined;
  format: ImageFormat;
  responseFormat: 'b64_json' | 'url';
  partialImages: number;
  pin: Address[] | null;
};

export type RunHooks = {
  /** Each text delta, in order, rendered by the gateway from the token ids the worker streams. */
  onToken?: ((text: string) => void) | undefined;
  /** An image job's progress, in order (`preview`: a partial image, base64, when one was asked). */
  onProgress?:
    | ((p: { image: number; step: number; steps: number; preview?: string | undefined }) => void)
    | undefined;
  /** A confidential job's sealed response chunks, in order, as the worker sends them (streamed jobs). */
  onSealedChunk?: ((chunk: SealedChunkMessage) => void) | undefined;
  /** Aborted when the client went away: the worker is told to stop, nothing is charged. */
  signal?: AbortSignal | undefined;
};

export type JobOutcome =
  | { ok: true; job: JobRecord; receipt: StoredReceipt }
  | { ok: false; job: JobRecord | undefined; error: GatewayError; afterFirstToken: boolean };

type Attempt =
  | {
      kind: 'result';
      frame: ResultMessage | ImageResultMessage | SealedResultMessage;
      dispatchedAt: number;
      firstTokenAt: number | null;
      streamed: number[];
      /** A confidential job's sealed chunks, in order. */
      chunks: SealedChunkMessage[];
    }
  | { kind: 'error'; code: string; message: string; afterFirstToken: boolean }
  | { kind: 'cancelled' };

/** An attempt under way on a worker (`startOnWorker`). */
type StartedAttempt = {
  /** How the attempt ends; `hooks` hear it from here on, and first what it streamed before. */
  attach(hooks: RunHooks): Promise<Attempt>;
  /** The receipt number of a job that left without one (`job-seq`). */
  assign(seq: bigint): void;
  /** Stops it (the worker is told); it ends `cancelled`. */
  cancel(reason: string): void;
};

export type Jobs = ReturnType<typeof createJobs>;

/**
 * How long past the job timeout a dispatch's receipt number stays in flight (the result frame may arrive
 * just before the timeout and still be verified and stored); settlement waits for it until then.
 */
const DISPATCH_GRACE_MS = 60_000;

/** A commit is journaled (answered before its statement) only this long or more before its number's expiry. */
const EARLY_COMMIT_MARGIN_MS = 30_000;
const NONE: ReadonlySet<string> = new Set();
/** The output length routing plans for (its speed estimates), whatever the job's cap. */
const expectedTokens = (maxTokens: number) => Math.min(maxTokens, 256);
/** A process is alive this long after its last beat; it beats every `BEAT_TICKS` × 500 ms. */
const INSTANCE_TTL_MS = 15_000;
const BEAT_TICKS = 8;
/** Capacity refusals one job re-routes at most (each waits for a slot within the queue's time). */
const BUSY_RETRIES = 16;
/** Each recovery pass looks this far behind where the last one stopped (clocks, transactions in flight). */
const RECOVERY_OVERLAP_MS = 60_000;

type Booked = {
  worker: WorkerSession;
  slot: SlotReservation;
  seq: bigint | undefined;
  early?: StartedAttempt | undefined;
};

/**
 * Runs jobs end to end: price and reserve (402 before any work), route, dispatch, hand the job to
 * another worker when one fails before its first token, verify the receipt, store receipt + result in
 * one transaction, and only then answer. Also the async queue (`POST /v1/jobs`); its webhooks are
 * webhooks/index.ts's.
 */
export function createJobs({
  common,
  storage,
  chain,
  billing,
  hub,
  routing,
  tokenizers,
  tee,
  onReceipt,
}: {
  common: Common;
  storage: Storage;
  chain: Chain;
  billing: Billing;
  hub: Hub;
  routing: Routing;
  /** The models' registered tokenizers: prompts are tokenized and outputs rendered with them. */
  tokenizers: Tokenizers;
  /** Workers' attestations: confidential jobs go only to attested workers (none without it). */
  tee?: Tee | undefined;
  /** Called after each receipt is stored (the settlement loop counts them). */
  onReceipt?: (() => void) | undefined;
}) {
  const { options, logger, metrics, shutdown } = common;
  const instanceId = `gw-${randomBytes(6).toString('hex')}`;
  // The same host and port is the same gateway restarted; a port picked at random (0) is never reused.
  const instanceName = options.port === 0 ? instanceId : `${hostname()}:${options.port}`;
  const running = new Set<Promise<unknown>>();
  let asyncRunning = 0;
  const asyncConcurrency = 64;

  const leaseMs = () => options.jobs.jobTimeoutMs + options.jobs.queueTimeoutMs + 30_000;
  /** Until when a receipt number handed out now may still come back with a receipt. */
  const dispatchExpiry = () => new Date(Date.now() + options.jobs.jobTimeoutMs + DISPATCH_GRACE_MS);
  /** Image jobs running in this process: the last progress each reported (`GET /v1/jobs/{id}`). */
  const progress = new Map<string, { image: number; step: number; steps: number; images: number }>();
  /**
   * The worker, slot and first receipt number `prepare` booked, by job id, until `execute` takes them;
   * `early`: the attempt already under way on that worker (`reserveAndBook`).
   */
  const booked = new Map<string, Booked>();
  /** What each payer may still spend, by its last reservation: whether its job may leave early. */
  const room = createPayerRoom();

  function track<T>(p: Promise<T>): Promise<T> {
    running.add(p);
    p.finally(() => running.delete(p)).catch(() => {});
    return p;
  }

  async function resolveModel(name: string): Promise<OnchainModel> {
    let model: OnchainModel | undefined;
    try {
      model = await chain.findModel(name);
    } catch (error) {
      throw chainFailure(error, 'model registry');
    }
    if (!model) {
      throw new GatewayError(
        'model_not_found',
        `the model "${name}" does not exist or is not active (GET /v1/models lists them)`,
        {
          param: 'model',
        },
      );
    }
    return model;
  }

  /** The tokenizer of a prepared job's model (an async job may run on another replica, or after a restart). */
  async function tokenizerOf(job: JobRecord): Promise<GatewayTokenizer> {
    let model: OnchainModel | undefined;
    try {
      // The cached registry (stale while refreshed): a job never waits on the RPC for it.
      model =
        (await chain.models()).find((m) => m.id.toLowerCase() === job.modelId.toLowerCase()) ??
        (await chain.model(job.modelId));
    } catch (error) {
      throw chainFailure(error, 'model registry');
    }
    if (!model) throw new GatewayError('model_not_found', `model ${job.modelName} is no longer registered`);
    return tokenizers.get(model);
  }

  /** The model a request names, if it is of `kind` and this gateway takes requests now (400 for another kind). */
  async function modelFor(name: string, kind: 'text' | 'image'): Promise<OnchainModel> {
    if (shutdown.isShuttingDown())
      throw new GatewayError('shutting_down', 'the gateway is shutting down; retry on another');
    const model = await resolveModel(name);
    if (model.kind !== kind) {
      throw new GatewayError(
        'invalid_request',
        model.kind === 'image'
          ? `${model.name} is an image model: send it to /v1/images/generations`
          : `${model.name} is a text model: send it to /v1/chat/completions or /v1/completions`,
        { param: 'model' },
      );
    }
    return model;
  }

  /**
   * Validates what needs the registry and the hub, prices the job at its maximum, and reserves that
   * amount of the payer's balance while inserting the job. Throws 404 / 503 / 402 before any work.
   */
  async function prepare(
    spec: JobSpec,
    key: ApiKeyRecord,
    opts: {
      mode: JobMode;
      idempotency?: { scope: string; key: string } | undefined;
      webhookUrl?: string | undefined;
    },
  ): Promise<JobRecord> {
    const model = await modelFor(spec.model, 'text');
    let maxTokens = spec.maxTokens ?? options.jobs.defaultMaxTokens;
    if (spec.maxPrice) {
      if (
        model.rates.inputPerMTokens > spec.maxPrice.inputPerM ||
        model.rates.outputPerMTokens > spec.maxPrice.outputPerM
      ) {
        // The rate card is the model's, on chain: no worker can take the job for less. The client's to fix.
        throw new GatewayError(
          'max_price_too_low',
          `grid.max_price is below ${model.name}'s rate card: ${model.rates.inputPerMTokens} / ${model.rates.outputPerMTokens} AIPG wei per million input / output tokens`,
          { param: 'grid.max_price' },
        );
      }
    }
    // The gateway tokenizes the request itself: the worker runs these ids, signs them, and the payer
    // is charged for exactly their count.
    const tokenizer = await tokenizers.get(model);
    const promptTokenIds =
      'messages' in spec.input
        ? tokenizer.chatPromptTokenIds(spec.input.messages)
        : tokenizer.promptTokenIds(spec.input.prompt);
    const inputParam = 'messages' in spec.input ? 'messages' : 'prompt';
    if (promptTokenIds.length > MAX_PROMPT_TOKENS) {
      throw new GatewayError(
        'context_length_exceeded',
        `the prompt is ${promptTokenIds.length} tokens; at most ${MAX_PROMPT_TOKENS} are accepted`,
        { param: inputParam },
      );
    }
    // The model's context (its tokenizer file's, bound to the registry by hash): a job that cannot fit
    // is the client's mistake, answered here, never sent to a worker and counted against it.
    const context = tokenizer.contextLength;
    // Unasked, the default leaves room for the prompt (as OpenAI fills what the context has left).
    if (spec.maxTokens === undefined && context !== undefined && context > promptTokenIds.length)
      maxTokens = Math.min(maxTokens, context - promptTokenIds.length);
    if (context !== undefined && promptTokenIds.length + maxTokens > context) {
      throw new GatewayError(
        'context_length_exceeded',
        `This model's maximum context length is ${context} tokens. However, you requested ${promptTokenIds.length + maxTokens} tokens (${promptTokenIds.length} in the ${inputParam}, ${maxTokens} in the completion). Please reduce the length of the ${inputParam} or completion.`,
        { param: inputParam },
      );
    }
    const eligible = routing.eligible(hub.workers(), model.id, spec.pin);
    if (eligible.length === 0) {
      throw new GatewayError(
        'no_worker_available',
        spec.pin
          ? `none of the pinned workers (grid.workers) is online serving ${model.name}`
          : `no worker is online serving ${model.name}; retry later`,
        { param: spec.pin ? 'grid.workers' : 'model', retryable: true },
      );
    }
    let premiumBps: number;
    try {
      premiumBps = await chain.confidentialPremiumBps();
    } catch (error) {
      throw chainFailure(error, 'confidential premium');
    }
    const id = newJobId();
    const params: SamplingParams = {
      maxTokens,
      temperature: spec.temperature,
      topP: spec.topP,
      seed: samplingSeed(spec, id),
      stop: spec.stop,
    };
    const reservedFee = maxFee({
      inputTokens: promptTokenIds.length,
      maxTokens,
      rates: model.rates,
      confidential: false,
      premiumBps,
    });
    const newJob: NewJob = {
      id,
      kind: spec.kind,
      mode: opts.mode,
      apiKeyId: key.id,
      payer: key.payer,
      modelId: model.id,
      modelName: model.name,
      request: {
        input: spec.input,
        model: spec.model,
        includeUsage: spec.includeUsage,
        pin: spec.pin,
        maxPrice: spec.maxPrice
          ? { inputPerM: spec.maxPrice.inputPerM.toString(), outputPerM: spec.maxPrice.outputPerM.toString() }
          : null,
        created: Math.floor(Date.now() / 1000),
      },
      params,
      pricing: {
        inputPerMTokens: model.rates.inputPerMTokens.toString(),
        outputPerMTokens: model.rates.outputPerMTokens.toString(),
        confidentialPremiumBps: premiumBps,
      },
      // Async jobs wait for the queue; the others run now, leased to this process.
      status: opts.mode === 'async' ? 'queued' : 'running',
      leaseUntil: opts.mode === 'async' ? null : new Date(Date.now() + leaseMs()),
      instanceId: opts.mode === 'async' ? null : instanceId,
      reservedFee,
      promptTokenIds,
      idempotencyScope: opts.idempotency?.scope ?? null,
      idempotencyKey: opts.idempotency?.key ?? null,
      webhookUrl: opts.webhookUrl ?? null,
      image: null,
    };
    return reserveAndBook(newJob, eligible, expectedTokens(maxTokens), tokenizer);
  }

  /**
   * Prices and reserves a confidential chat job: sealed to one attested worker, which alone can run it.
   * The gateway cannot count the prompt, so the reservation covers the whole context the model has left
   * after `max_tokens`, with the premium; the signed counts are bounded by the same figures.
   */
  async function prepareConfidential(
    spec: ConfidentialSpec,
    key: ApiKeyRecord,
    opts: { mode: 'sync' | 'stream'; idempotency?: { scope: string; key: string } | undefined },
  ): Promise<JobRecord> {
    const model = await modelFor(spec.model, 'text');
    if (
      spec.maxPrice &&
      (model.rates.inputPerMTokens > spec.maxPrice.inputPerM ||
        model.rates.outputPerMTokens > spec.maxPrice.outputPerM)
    ) {
      throw new GatewayError(
        'max_price_too_low',
        `grid.max_price is below ${model.name}'s rate card: ${model.rates.inputPerMTokens} / ${model.rates.outputPerMTokens} AIPG wei per million input / output tokens`,
        { param: 'grid.max_price' },
      );
    }
    const context = (await tokenizers.get(model)).contextLength;
    const maxTokens =
      spec.maxTokens ?? Math.min(options.jobs.defaultMaxTokens, context ? Math.floor(context / 2) : Infinity);
    if (context !== undefined && maxTokens >= context) {
      throw new GatewayError(
        'context_length_exceeded',
        `This model's maximum context length is ${context} tokens; max_tokens ${maxTokens} leaves no room for the prompt`,
        { param: 'max_tokens' },
      );
    }
    const maxInputTokens = Math.min(
      MAX_PROMPT_TOKENS,
      context === undefined ? MAX_PROMPT_TOKENS : context - maxTokens,
    );
    const worker = hub
      .workers()
      .find((w) => w.owner.toLowerCase() === spec.sealed.worker.toLowerCase() && w.models.has(model.id));
    if (!worker || !tee?.knows(worker, spec.sealed.attestation)) {
      throw new GatewayError(
        'worker_unavailable',
        !worker
          ? `worker ${spec.sealed.worker} is not online serving ${model.name}; fetch GET /v1/attestation again and encrypt to another`
          : `worker ${spec.sealed.worker} is not attested under evidence ${spec.sealed.attestation} now; fetch GET /v1/attestation again`,
        { param: 'encrypted.worker', retryable: true },
      );
    }
    let premiumBps: number;
    try {
      premiumBps = await chain.confidentialPremiumBps();
    } catch (error) {
      throw chainFailure(error, 'confidential premium');
    }
    const id = newJobId();
    const sealed: SealedInput = { ...spec.sealed, worker: worker.owner, maxInputTokens };
    const newJob: NewJob = {
      id,
      kind: 'chat',
      mode: opts.mode,
      apiKeyId: key.id,
      payer: key.payer,
      modelId: model.id,
      modelName: model.name,
      request: {
        input: { sealed },
        model: spec.model,
        includeUsage: spec.includeUsage,
        pin: [worker.owner],
        maxPrice: spec.maxPrice
          ? { inputPerM: spec.maxPrice.inputPerM.toString(), outputPerM: spec.maxPrice.outputPerM.toString() }
          : null,
        created: Math.floor(Date.now() / 1000),
      },
      // The sampling parameters are sealed: only the output cap is the gateway's.
      params: { maxTokens, temperature: 0, topP: 1, seed: null, stop: [] },
      pricing: {
        inputPerMTokens: model.rates.inputPerMTokens.toString(),
        outputPerMTokens: model.rates.outputPerMTokens.toString(),
        confidentialPremiumBps: premiumBps,
      },
      status: 'running',
      leaseUntil: new Date(Date.now() + leaseMs()),
      instanceId,
      reservedFee: maxFee({
        inputTokens: maxInputTokens,
        maxTokens,
        rates: model.rates,
        confidential: true,
        premiumBps,
      }),
      promptTokenIds: [],
      idempotencyScope: opts.idempotency?.scope ?? null,
      idempotencyKey: opts.idempotency?.key ?? null,
      webhookUrl: null,
      image: null,
    };
    return reserveAndBook(newJob, [worker], expectedTokens(maxTokens));
  }

  /**
   * Books a worker's slot for a job that runs now (the choice and the booking in one step, so
   * concurrent requests never land on one slot), and reserves the job (`insertReserved`), whose
   * statement also numbers that first dispatch. None free: the job waits for one in execute, as a retry
   * does. A text job (`tokenizer` given) of a payer with room to spare (`room`) leaves for that worker at once,
   * while its reservation is written, so the two overlap (one database write less before the worker
   * starts); its receipt number follows once reserved (`job-seq`), and the worker signs nothing before.
   * If the reservation fails after all (a race with another process), the worker is told to stop.
   */
  async function reserveAndBook(
    newJob: NewJob,
    eligible: WorkerSession[],
    expected: number,
    tokenizer?: GatewayTokenizer,
  ): Promise<JobRecord> {
    let first: { worker: WorkerSession; slot: SlotReservation } | undefined;
    if (newJob.mode !== 'async') {
      const w = routing.pick(eligible, newJob.modelId, { exclude: NONE, expectedTokens: expected });
      const slot = w ? hub.reserve(w, newJob.modelId) : undefined;
      if (w && slot) first = { worker: w, slot };
    }
    const job = insertedJob(newJob);
    const early =
      first && tokenizer && newJob.idempotencyKey === null && room.take(newJob.payer, newJob.reservedFee)
        ? startOnWorker(job, first.worker, first.slot, undefined, tokenizer)
        : undefined;
    let seq: bigint | undefined;
    try {
      seq = await insertReserved(
        newJob,
        first && { gateway: chain.gateway, worker: first.worker.owner, expiresAt: dispatchExpiry() },
      );
    } catch (error) {
      if (early) early.cancel('the job could not be reserved');
      else first?.slot.release();
      throw error;
    } finally {
      if (early) room.written(newJob.payer, newJob.reservedFee);
    }
    // No number came with the reservation: that attempt can never be signed; execute dispatches afresh.
    if (early && seq === undefined) early.cancel('no receipt number');
    else if (first) {
      if (early && seq !== undefined) early.assign(seq);
      booked.set(newJob.id, { ...first, seq, early });
    }
    return job;
  }

  /** The workers online for `job`'s model (its pin) that can run it: for an image job, its parameters. */
  function eligibleFor(job: Pick<JobRecord, 'modelId' | 'request' | 'image'>): WorkerSession[] {
    const all = routing.eligible(hub.workers(), job.modelId, job.request.pin);
    // A sealed request opens only in the enclave it was encrypted to, while its evidence stands.
    const sealed = sealedOf(job);
    if (sealed) return all.filter((w) => tee?.knows(w, sealed.attestation) ?? false);
    const p = job.image?.params;
    return p ? all.filter((w) => acceptsImage(w.models.get(job.modelId)?.image, p)) : all;
  }

  /**
   * Validates and prices an image request against the model and the workers online for it, then
   * reserves its exact fee (megapixel-steps × the model's rate: known before it runs) and writes it.
   */
  async function prepareImage(
    spec: ImageSpec,
    key: ApiKeyRecord,
    opts: {
      mode: JobMode;
      idempotency?: { scope: string; key: string } | undefined;
      webhookUrl?: string | undefined;
    },
  ): Promise<JobRecord> {
    const model = await modelFor(spec.model, 'image');
    const promptTokenIds = imagePromptTokenIds(spec.prompt);
    const negativeTokenIds = imagePromptTokenIds(spec.negativePrompt);
    for (const [param, ids] of [
      ['prompt', promptTokenIds],
      ['negative_prompt', negativeTokenIds],
    ] as const) {
      if (ids.length > MAX_IMAGE_PROMPT_TOKENS)
        throw new GatewayError(
          'invalid_request',
          `${param} is longer than ${MAX_IMAGE_PROMPT_TOKENS} bytes`,
          {
            param,
          },
        );
    }
    if (promptTokenIds.length === 0)
      throw new GatewayError('invalid_request', 'prompt must not be empty', { param: 'prompt' });
    const online = routing.eligible(hub.workers(), model.id, spec.pin);
    const offers = online.flatMap((w) => {
      const caps = w.models.get(model.id)?.image;
      return caps ? [caps] : [];
    });
    if (offers.length === 0) {
      throw new GatewayError(
        'no_worker_available',
        spec.pin
          ? `none of the pinned workers (grid.workers) is online serving ${model.name}`
          : `no worker is online serving ${model.name}; retry later`,
        { param: spec.pin ? 'grid.workers' : 'model', retryable: true },
      );
    }
    // Defaults, then each parameter against what the workers online offer (the client's to fix).
    const scheduler = spec.scheduler ?? offers[0]!.schedulers[0]!;
    const lo = Math.min(...offers.map((o) => o.minSteps));
    const hi = Math.max(...offers.map((o) => o.maxSteps));
    const steps = spec.steps ?? Math.max(lo, Math.min(hi, 20));
    const [autoWidth, autoHeight] = offers[0]!.sizes[0]!;
    const params: ImageParams = {
      width: spec.width ?? autoWidth,
      height: spec.height ?? autoHeight,
      steps,
      guidance: spec.guidance,
      seed: spec.seed ?? randomBytes(4).readUInt32BE(0),
      n: spec.n,
      scheduler,
      format: spec.format,
    };
    const sizes = [...new Set(offers.flatMap((o) => o.sizes.map(([w, h]) => `${w}x${h}`)))];
    const refuse = (param: string, message: string) =>
      new GatewayError('invalid_request', message, { param });
    if (!sizes.includes(`${params.width}x${params.height}`))
      throw refuse(
        'size',
        `${model.name} is served at ${sizes.join(', ')}; not ${params.width}x${params.height}`,
      );
    if (steps < lo || steps > hi) throw refuse('steps', `${model.name} runs ${lo}–${hi} steps; not ${steps}`);
    const maxN = Math.max(...offers.map((o) => o.maxN));
    if (params.n > maxN) throw refuse('n', `${model.name} makes at most ${maxN} images per request`);
    const schedulers = [...new Set(offers.flatMap((o) => o.schedulers))];
    if (!schedulers.includes(scheduler))
      throw refuse('scheduler', `${model.name} runs with ${schedulers.join(', ')}; not ${scheduler}`);
    const image = {
      params,
      negativeTokenIds,
      responseFormat: spec.responseFormat,
      partialImages: spec.partialImages,
      outputs: null,
    };
    const eligible = online.filter((w) => acceptsImage(w.models.get(model.id)?.image, params));
    // The answer must fit one hub frame (images and their latents travel together).
    const bound = Math.max(
      ...eligible.map((w) => imageResultBound(params, w.models.get(model.id)?.image?.trajectory ?? false)),
    );
    if (eligible.length > 0 && bound > options.hub.maxFrameBytes) {
      throw refuse(
        'n',
        `${params.n} images of ${params.width}x${params.height} at ${steps} steps are too large for one answer (about ${Math.ceil(bound / 1_048_576)} MB, at most ${Math.floor(options.hub.maxFrameBytes / 1_048_576)} MB): ask for fewer images, steps or pixels`,
      );
    }
    if (eligible.length === 0) {
      throw refuse(
        'size',
        `no worker online runs ${model.name} at ${params.width}x${params.height}, ${steps} steps, n = ${params.n} with ${scheduler} at once`,
      );
    }
    let premiumBps: number;
    try {
      premiumBps = await chain.confidentialPremiumBps();
    } catch (error) {
      throw chainFailure(error, 'confidential premium');
    }
    const id = newJobId();
    const newJob: NewJob = {
      id,
      kind: 'image',
      mode: opts.mode,
      apiKeyId: key.id,
      payer: key.payer,
      modelId: model.id,
      modelName: model.name,
      request: {
        input: { prompt: spec.prompt },
        model: spec.model,
        includeUsage: false,
        pin: spec.pin,
        maxPrice: null,
        created: Math.floor(Date.now() / 1000),
      },
      params: IMAGE_JOB_SAMPLING,
      pricing: {
        inputPerMTokens: '0',
        outputPerMTokens: '0',
        perMegapixelStep: model.rates.perMegapixelStep.toString(),
        confidentialPremiumBps: premiumBps,
      },
      image,
      status: opts.mode === 'async' ? 'queued' : 'running',
      leaseUntil: opts.mode === 'async' ? null : new Date(Date.now() + leaseMs()),
      instanceId: opts.mode === 'async' ? null : instanceId,
      reservedFee: computeImageFee({ params, rates: model.rates }),
      promptTokenIds,
      idempotencyScope: opts.idempotency?.scope ?? null,
      idempotencyKey: opts.idempotency?.key ?? null,
      webhookUrl: opts.webhookUrl ?? null,
    };
    return reserveAndBook(newJob, eligible, 1);
  }

  /**
   * Gives back what `prepare` booked for a job that will not be executed after all (the request failed
   * between the two): the worker's slot, and the receipt number, which stays used with no leaf.
   */
  function discard(job: JobRecord): void {
    const b = booked.get(job.id);
    if (!b) return;
    booked.delete(job.id);
    b.early?.cancel('the request failed before it ran');
    b.slot.release();
    if (b.seq !== undefined) void storage.receiptNumbers.release(chain.gateway, b.seq).catch(() => {});
  }

  /**
   * Waits for a worker with a free slot (bounded by `jobs.queueTimeoutMs`) and books the slot in the
   * same step as the choice, so concurrent requests never land on one slot. `exclude`: workers that
   * failed this job; `busy`: workers that refused it for capacity (they serve other gateways too),
   * passed over until a slot frees somewhere, never counted against them.
   */
  async function acquireWorker(
    job: JobRecord,
    exclude: Set<string>,
    busy: Set<string>,
    deadline: number,
    signal: AbortSignal | undefined,
  ): Promise<{ worker: WorkerSession; slot: SlotReservation }> {
    for (;;) {
      const eligible = eligibleFor(job);
      const skip = busy.size === 0 ? exclude : new Set([...exclude, ...busy]);
      const w = routing.pick(eligible, job.modelId, {
        exclude: skip,
        expectedTokens: expectedTokens(job.params.maxTokens),
      });
      // No await between the pick and the booking.
      const slot = w ? hub.reserve(w, job.modelId) : undefined;
      if (w && slot) return { worker: w, slot };
      const left = eligible.filter((e) => !exclude.has(e.id));
      if (left.length === 0) {
        throw new GatewayError(
          'no_worker_available',
          exclude.size > 0
            ? `no other worker serving ${job.modelName} is online after ${exclude.size} failed`
            : `no worker is online serving ${job.modelName}`,
          { retryable: true },
        );
      }
      const remaining = deadline - Date.now();
      if (remaining <= 0 || signal?.aborted || shutdown.isShuttingDown()) {
        throw new GatewayError(
          'no_worker_available',
          `all workers serving ${job.modelName} are busy; retry later`,
          {
            retryable: true,
            headers: { 'retry-after': '1' },
          },
        );
      }
      await hub.waitForCapacity(Math.min(remaining, 1_000), signal);
      // A slot freed (or a second passed): a worker that was full may take the job now.
      busy.clear();
    }
  }

  /**
   * Sends `job` to `worker` in `slot` and follows the attempt until it ends. `seq` undefined: a text job
   * sent while its receipt number is being reserved (`assign` sends it; the worker signs nothing
   * before). What the attempt streams before `attach` is kept and handed to the hooks when they attach.
   */
  function startOnWorker(
    job: JobRecord,
    worker: WorkerSession,
    slot: SlotReservation,
    seq: bigint | undefined,
    tokenizer: GatewayTokenizer | undefined,
  ): StartedAttempt {
    let hooks: RunHooks | undefined;
    /** What the hooks must hear once attached (tokens, chunks, progress that came before). */
    const early: ((h: RunHooks) => void)[] = [];
    const tell = (fn: (h: RunHooks) => void) => {
      if (hooks) fn(hooks);
      else early.push(fn);
    };
    let handle!: { cancel(reason: string): void; assign(seq: bigint): void };
    let onAbort = () => {};
    let cancelled = (_reason: string) => {};
    const ended = new Promise<Attempt>((resolve) => {
      const dispatchedAt = Date.now();
      const streamed: number[] = [];
      const chunks: SealedChunkMessage[] = [];
      /** An image job's last step reported per image, and the previews it sent. */
      const stepsSeen: number[] = [];
      let previewsSeen = 0;
      const sealed = sealedOf(job);
      // Text deltas are rendered only for a client that reads them as they come (a streamed request);
      // every other answer is rendered once, from the verified result.
      const rendered =
        tokenizer && job.mode === 'stream' ? createOutputStream(tokenizer, job.params.stop) : undefined;
      let firstTokenAt: number | null = null;
      let done = false;
      const message: JobMessage | ImageJobMessage | SealedJobMessage = sealed
        ? sealedJobFrame(job, sealed, seq!, job.mode === 'stream')
        : job.image
          ? imageJobFrame(job, seq!)
          : {
              type: 'job',
              jobId: job.id,
              ...(seq === undefined ? {} : { seq: seq.toString() }),
              modelId: job.modelId,
              payer: job.payer,
              kind: job.kind as JobMessage['kind'],
              input: job.request.input as JobMessage['input'],
              promptTokenIds: job.promptTokenIds!,
              params: { ...job.params, stop: [...job.params.stop] },
              pricing: job.pricing,
              confidential: false,
              // Always streamed on the wire: the gateway measures time to first token itself and knows
              // whether a failing worker had started answering. A client that reads the answer whole
              // needs no more than the first tokens before the result.
              stream: true,
              ...(job.mode === 'stream' ? {} : { tokens: 'first' as const }),
            };
      const finish = (a: Attempt) => {
        if (done) return;
        done = true;
        progress.delete(job.id);
        clearTimeout(firstTokenTimer);
        clearTimeout(jobTimer);
        hooks?.signal?.removeEventListener('abort', onAbort);
        resolve(a);
      };
      /** A frame no honest worker sends (out of order, past what an answer holds): the attempt ends, its fault. */
      const refuse = (message: string, cancelReason = message) => {
        handle.cancel(cancelReason);
        finish({ kind: 'error', code: 'invalid_frame', message, afterFirstToken: firstTokenAt !== null });
      };
      handle = hub.dispatch(
        worker,
        message,
        {
          onToken(t) {
            if (done) return;
            if (!tokenizer) {
              handle.cancel('token frames for an image job');
              finish({
                kind: 'error',
                code: 'invalid_frame',
                message: 'token frames for an image job',
                afterFirstToken: false,
              });
              return;
            }
            // No answer has more than max_tokens ids: a worker streaming past them is refused there, before
            // the text reaches a client or the ids pile up here.
            if (streamed.length + t.tokenIds.length > job.params.maxTokens) {
              refuse(`more than max_tokens (${job.params.maxTokens}) tokens streamed`);
              return;
            }
            if (firstTokenAt === null) {
              firstTokenAt = Date.now();
              clearTimeout(firstTokenTimer);
            }
            for (const id of t.tokenIds) streamed.push(id);
            if (!rendered) return;
            const text = rendered.push(t.tokenIds);
            if (text) tell((h) => h.onToken?.(text));
          },
          onSealedChunk(c: SealedChunkMessage) {
            if (done) return;
            // An enclave seals a chunk per text delta (each at least one token), one for what it held
            // back, and the final one: never more than max_tokens + 2.
            if (chunks.length >= job.params.maxTokens + 2) {
              refuse(`more than max_tokens + 2 (${job.params.maxTokens + 2}) sealed chunks`);
              return;
            }
            if (!sealed || c.seq !== chunks.length || chunks.at(-1)?.final) {
              refuse(
                sealed ? `sealed chunk ${c.seq} out of order` : 'sealed chunks for a plain job',
                'sealed chunk out of order',
              );
              return;
            }
            if (firstTokenAt === null) {
              firstTokenAt = Date.now();
              clearTimeout(firstTokenTimer);
            }
            chunks.push(c);
            tell((h) => h.onSealedChunk?.(c));
          },
          onProgress(p: ProgressMessage) {
            if (done) return;
            // An honest pipeline reports each step of each image once, in order, and a preview only as
            // many times as asked: anything else is refused there, before it piles up or floods a client.
            const fault = progressFault(message, p, stepsSeen, previewsSeen);
            if (fault) {
              refuse(fault, 'progress out of order');
              return;
            }
            stepsSeen[p.image] = p.step;
            if (p.preview !== undefined) previewsSeen += 1;
            // The worker has started (the first-token timeout is met); a job that showed the client a
            // preview has started answering, like a text job after its first token.
            clearTimeout(firstTokenTimer);
            if (p.preview !== undefined && job.mode === 'stream') firstTokenAt ??= Date.now();
            progress.set(job.id, {
              image: p.image,
              step: p.step,
              steps: p.steps,
              images: job.image?.params.n ?? 1,
            });
            tell((h) => h.onProgress?.({ image: p.image, step: p.step, steps: p.steps, preview: p.preview }));
          },
          onResult(frame) {
            const want = sealed ? 'sealed-result' : job.image ? 'image-result' : 'result';
            if (frame.type !== want) {
              finish({
                kind: 'error',
                code: 'invalid_frame',
                message: `a ${frame.type} frame for a ${job.kind} job`,
                afterFirstToken: firstTokenAt !== null,
              });
              return;
            }
            finish({ kind: 'result', frame, dispatchedAt, firstTokenAt, streamed, chunks });
          },
          onError(e) {
            finish({
              kind: 'error',
              code: e.code,
              message: e.message,
              afterFirstToken: firstTokenAt !== null,
            });
          },
        },
        slot,
      );
      const firstTokenTimer = setTimeout(() => {
        handle.cancel('first token timeout');
        finish({
          kind: 'error',
          code: 'first_token_timeout',
          message: `no first token within ${options.jobs.firstTokenTimeoutMs} ms`,
          afterFirstToken: false,
        });
      }, options.jobs.firstTokenTimeoutMs);
      const jobTimer = setTimeout(() => {
        handle.cancel('job timeout');
        finish({
          kind: 'error',
          code: 'job_timeout',
          message: `the job took longer than ${options.jobs.jobTimeoutMs} ms`,
          afterFirstToken: firstTokenAt !== null,
        });
      }, options.jobs.jobTimeoutMs);
      cancelled = (reason) => {
        handle.cancel(reason);
        finish({ kind: 'cancelled' });
      };
      onAbort = () => cancelled('client went away');
    });
    return {
      attach(h) {
        hooks = h;
        for (const fn of early.splice(0)) fn(h);
        if (h.signal?.aborted) onAbort();
        else h.signal?.addEventListener('abort', onAbort, { once: true });
        return ended;
      },
      assign(n) {
        handle.assign(n);
      },
      cancel: (reason) => cancelled(reason),
    };
  }

  async function fail(
    job: JobRecord,
    error: GatewayError,
    afterFirstToken: boolean,
    startedAt: number,
    /** The dispatches it took, and the worker of the last (recorded on the job). */
    last?: { attempts: number; worker?: Address | undefined; operator?: Address | undefined },
  ): Promise<JobOutcome> {
    await storage.jobs
      .fail(job.id, { code: error.code, message: error.shortMessage, status: error.status }, last)
      .catch((e: unknown) => {
        logger.error({ msg: 'recording a failed job failed', job_id: job.id, error: e });
      });
    metrics.jobs.inc({ model: job.modelName, status: 'failed', reason: error.code });
    metrics.jobDuration.observe({ model: job.modelName, status: 'failed' }, (Date.now() - startedAt) / 1000);
    return { ok: false, job: await storage.jobs.get(job.id).catch(() => undefined), error, afterFirstToken };
  }

  /** Runs a prepared job to its end. Never throws: the outcome says what happened. */
  /**
   * Inserts `job` holding its maximum fee (`job.reservedFee`) if its payer can afford it, atomically
   * with the check (one statement under the payer's row lock: concurrent requests never overspend
   * together), or 402. Cached funds first; before refusing, the chain is read again. With `dispatch`,
   * the same statement numbers the job's first dispatch: returns that receipt number.
   */
  async function insertReserved(
    job: NewJob,
    dispatch: FirstDispatch | undefined,
  ): Promise<bigint | undefined> {
    for (let fresh = false; ; fresh = true) {
      const { funds, spendable } = await billing.spendable(job.payer, fresh);
      const done = await storage.jobs.insertReserved(job, spendable, dispatch);
      if (done.inserted) {
        room.remember(job.payer, spendable - done.unsettled - done.reserved - job.reservedFee);
        return done.seq ?? undefined;
      }
      room.forget(job.payer);
      if (fresh) throw billing.insufficient(job, funds, done);
    }
  }

  async function execute(job: JobRecord, hooks: RunHooks = {}): Promise<JobOutcome> {
    return track(executeInner(job, hooks));
  }

  async function executeInner(job: JobRecord, hooks: RunHooks): Promise<JobOutcome> {
    // What prepare booked is this run's first dispatch; whatever is left of it at the end is given back.
    let pre = booked.get(job.id);
    booked.delete(job.id);
    try {
      return await executeBooked(job, hooks, () => {
        const p = pre;
        pre = undefined;
        return p;
      });
    } finally {
      if (pre) {
        pre.early?.cancel('the job did not run');
        pre.slot.release();
        if (pre.seq !== undefined)
          await storage.receiptNumbers.release(chain.gateway, pre.seq).catch(() => {});
      }
    }
  }

  async function executeBooked(
    job: JobRecord,
    hooks: RunHooks,
    takeBooked: () => Booked | undefined,
  ): Promise<JobOutcome> {
    const log = logger.child({ job_id: job.id, model: job.modelName, payer: job.payer });
    const startedAt = Date.now();
    if (job.status === 'queued') {
      const started = await storage.jobs.start(job.id, instanceId, new Date(Date.now() + leaseMs()));
      if (!started)
        return {
          ok: false,
          job,
          error: new GatewayError('internal_error', 'the job was taken by another process'),
          afterFirstToken: false,
        };
    }
    metrics.jobsInFlight.inc(undefined, 1);
    let dispatched = 0;
    let lastWorker: WorkerSession | undefined;
    const last = () => ({
      attempts: job.attempts + dispatched,
      worker: lastWorker?.owner,
      operator: lastWorker?.operator,
    });
    try {
      const sealed = sealedOf(job);
      const input = job.request.input;
      const tokenizer = job.image || sealed ? undefined : await tokenizerOf(job);
      // A job queued by a gateway older than its own tokenization is tokenized now.
      if (tokenizer && !('sealed' in input))
        job.promptTokenIds ??=
          'messages' in input
            ? tokenizer.chatPromptTokenIds(input.messages)
            : tokenizer.promptTokenIds(input.prompt);
      const exclude = new Set<string>();
      const busy = new Set<string>();
      const failures: string[] = [];
      let busyRefusals = 0;
      const queueDeadline = Date.now() + options.jobs.queueTimeoutMs;
      for (let attempt = 1; attempt <= options.jobs.maxAttempts; attempt++) {
        let worker: WorkerSession;
        let slot: SlotReservation;
        const pre = takeBooked();
        try {
          ({ worker, slot } = pre ?? (await acquireWorker(job, exclude, busy, queueDeadline, hooks.signal)));
        } catch (error) {
          if (hooks.signal?.aborted) break;
          const e =
            error instanceof GatewayError
              ? error
              : new GatewayError('internal_error', 'routing failed', { cause: error });
          if (failures.length > 0) {
            return fail(
              job,
              new GatewayError(
                'worker_failed',
                `the job failed on ${failures.length} worker(s): ${failures.join('; ')}`,
              ),
              false,
              startedAt,
              last(),
            );
          }
          return fail(job, e, false, startedAt, last());
        }
        let seq: bigint;
        dispatched += 1;
        lastWorker = worker;
        try {
          // A fresh receipt number per dispatch (a retry on another worker signs another number).
          seq =
            pre?.seq ??
            (await storage.receiptNumbers.assign({
              gateway: chain.gateway,
              jobId: job.id,
              worker: worker.owner,
              expiresAt: dispatchExpiry(),
            }));
        } catch (error) {
          slot.release();
          throw error;
        }
        log.debug({
          msg: 'job dispatched',
          worker: worker.owner,
          worker_id: worker.id,
          attempt,
          seq: seq.toString(),
        });
        const a = await (pre?.early ?? startOnWorker(job, worker, slot, seq, tokenizer)).attach(hooks);
        if (a.kind !== 'result') {
          await storage.receiptNumbers.release(chain.gateway, seq).catch((error: unknown) => {
            log.warn({ msg: 'releasing a receipt number failed', seq: seq.toString(), error });
          });
        }
        if (a.kind === 'cancelled') break;
        if (
          a.kind === 'error' &&
          !a.afterFirstToken &&
          (a.code === JobErrorCode.busy || a.code === JobErrorCode.draining)
        ) {
          // Full with other work (another gateway's) or shutting down: not a fault. Another worker, or
          // a full one once a slot frees, within the queue's time; the attempt is not counted.
          if (++busyRefusals > BUSY_RETRIES)
            return fail(
              job,
              new GatewayError(
                'no_worker_available',
                `all workers serving ${job.modelName} are busy; retry later`,
                {
                  retryable: true,
                  headers: { 'retry-after': '1' },
                },
              ),
              false,
              startedAt,
              last(),
            );
          (a.code === JobErrorCode.busy ? busy : exclude).add(worker.id);
          attempt -= 1;
          log.debug({
            msg: 'worker refused for capacity, routing elsewhere',
            worker: worker.owner,
            code: a.code,
          });
          continue;
        }
        if (a.kind === 'error' && a.code === JobErrorCode.sealedRequestInvalid) {
          // The client sealed something the enclave cannot open or run: its mistake (the gateway cannot
          // read the request to tell), answered as a 400 and never counted against the worker.
          return fail(
            job,
            new GatewayError('invalid_request', `the worker could not run the sealed request: ${a.message}`, {
              param: 'encrypted',
            }),
            false,
            startedAt,
            last(),
          );
        }
        if (a.kind === 'error') {
          routing.recordFailure(worker);
          log.warn({
            msg: 'worker failed the job',
            worker: worker.owner,
            code: a.code,
            reason: a.message,
            after_first_token: a.afterFirstToken,
          });
          if (a.afterFirstToken) {
            return fail(
              job,
              new GatewayError(
                'worker_failed',
                `the worker failed after it started answering (${a.code}: ${a.message}); nothing was charged`,
              ),
              true,
              startedAt,
              last(),
            );
          }
          failures.push(`${a.code}: ${a.message}`);
          exclude.add(worker.id);
          if (attempt < options.jobs.maxAttempts) metrics.jobRetries.inc({ model: job.modelName });
          continue;
        }
        if (sealed)
          return await completeSealed(job, sealed, worker, seq, a, startedAt, log, job.attempts + dispatched);
        return tokenizer
          ? await complete(job, worker, seq, tokenizer, a, startedAt, log, job.attempts + dispatched)
          : await completeImage(job, worker, seq, a, startedAt, log, job.attempts + dispatched);
      }
      if (hooks.signal?.aborted) {
        return fail(
          job,
          new GatewayError('request_cancelled', 'the client closed the request; nothing was charged'),
          false,
          startedAt,
          last(),
        );
      }
      return fail(
        job,
        new GatewayError(
          'worker_failed',
          `the job failed on ${failures.length} worker(s): ${failures.join('; ')}; nothing was charged`,
        ),
        false,
        startedAt,
        last(),
      );
    } catch (error) {
      // A gateway condition (the registry unreachable, a tokenizer missing) keeps its own code and status.
      if (error instanceof GatewayError) return fail(job, error, false, startedAt, last());
      log.error({ msg: 'job crashed', error });
      return fail(
        job,
        new GatewayError('internal_error', 'the job failed inside the gateway; nothing was charged', {
          cause: error,
        }),
        false,
        startedAt,
        last(),
      );
    } finally {
      metrics.jobsInFlight.inc(undefined, -1);
    }
  }

  /**
   * A verified receipt with the job id and addresses in the gateway's own spelling, whatever case the
   * worker wrote them in (EIP-712 and the leaf encode bytes, so this changes neither the signature nor
   * the leaf): the receipt row references the job, the number's row is keyed by the gateway's address,
   * and the payer's totals and the workers' credits add up per address.
   */
  function ownSpelling<R extends Receipt>(receipt: R, job: JobRecord, worker: WorkerSession): R {
    return { ...receipt, jobId: job.id, gateway: chain.gateway, payer: job.payer, worker: worker.owner };
  }

  /** An attempt's times as stored with its result: to the first token, in all, and when it came. */
  function timingsOf(a: Extract<Attempt, { kind: 'result' }>, now: number) {
    return {
      ttftMs: (a.firstTokenAt ?? now) - a.dispatchedAt,
      totalMs: now - a.dispatchedAt,
      firstTokenAt: a.firstTokenAt === null ? null : new Date(a.firstTokenAt),
    };
  }

  async function complete(
    job: JobRecord,
    worker: WorkerSession,
    seq: bigint,
    tokenizer: GatewayTokenizer,
    a: Extract<Attempt, { kind: 'result' }>,
    startedAt: number,
    log: Common['logger'],
    attempts: number,
  ): Promise<JobOutcome> {
    const now = Date.now();
    const frame = a.frame as ResultMessage; // checked against the job's kind on arrival
    const sampler = worker.models.get(job.modelId)?.sampler ?? '';
    const verdict = await verifyResult(frame, {
      jobId: job.id,
      seq,
      gateway: chain.gateway,
      payer: job.payer,
      worker: worker.owner,
      operator: worker.operator,
      modelId: job.modelId,
      promptTokenIds: job.promptTokenIds!,
      sampler,
      tokenizer,
      params: job.params,
      pricing: job.pricing,
      confidential: false,
      chainId: chain.chainId,
      grid: chain.grid,
      dispatchedAt: a.dispatchedAt,
      now,
      clockSkewSec: options.jobs.clockSkewSec,
      streamedTokenIds: a.firstTokenAt === null ? null : a.streamed,
    });
    if (!verdict.ok) return reject(job, worker, seq, verdict, a, startedAt, log, attempts);
    const receipt = ownSpelling(verdict.receipt, job, worker);
    const { ttftMs, totalMs, firstTokenAt } = timingsOf(a, now);
    const outputs = frame.outputTokenIds.length;
    const genMs = Math.max(1, totalMs - ttftMs);
    const tokensPerSecond =
      outputs <= 1 ? outputs / Math.max(0.001, totalMs / 1000) : ((outputs - 1) * 1000) / genMs;
    // Receipt and result commit together, before the client hears anything: a crash loses neither.
    const leafHash = receiptLeafHash(receipt);
    const completion: JobCompletion = {
      worker: worker.owner,
      operator: worker.operator,
      fee: receipt.fee,
      outputTokenIds: frame.outputTokenIds,
      outputText: verdict.text,
      sampler,
      finishReason: frame.finishReason,
      ttftMs,
      totalMs,
      tokensPerSecond,
      firstTokenAt,
      attempts,
    };
    return commit(
      job,
      worker,
      seq,
      { receipt, signature: frame.signature, leafHash },
      completion,
      a,
      startedAt,
      log,
      {
        msg: 'job done',
        input_tokens: frame.promptTokenIds.length,
        output_tokens: outputs,
        ttft_ms: ttftMs,
        total_ms: totalMs,
      },
    );
  }

  /**
   * A confidential job's result: checked against what the gateway relayed (verifySealedResult), then
   * committed like any other. What is stored of the answer is its sealed chunks: ciphertext only.
   */
  async function completeSealed(
    job: JobRecord,
    sealed: SealedInput,
    worker: WorkerSession,
    seq: bigint,
    a: Extract<Attempt, { kind: 'result' }>,
    startedAt: number,
    log: Common['logger'],
    attempts: number,
  ): Promise<JobOutcome> {
    const now = Date.now();
    const frame = a.frame as SealedResultMessage; // checked against the job's kind on arrival
    const verdict = await verifySealedResult(frame, {
      jobId: job.id,
      seq,
      gateway: chain.gateway,
      payer: job.payer,
      worker: worker.owner,
      operator: worker.operator,
      modelId: job.modelId,
      chainId: chain.chainId,
      grid: chain.grid,
      dispatchedAt: a.dispatchedAt,
      now,
      clockSkewSec: options.jobs.clockSkewSec,
      pricing: job.pricing,
      sealed,
      maxTokens: job.params.maxTokens,
      chunks: a.chunks,
    });
    if (!verdict.ok) return reject(job, worker, seq, verdict, a, startedAt, log, attempts);
    const receipt = ownSpelling(verdict.receipt, job, worker);
    const { ttftMs, totalMs, firstTokenAt } = timingsOf(a, now);
    const outputs = Number(receipt.outputUnits);
    const completion: JobCompletion = {
      worker: worker.owner,
      operator: worker.operator,
      fee: receipt.fee,
      outputTokenIds: [],
      outputText: JSON.stringify(a.chunks.map((c) => c.ciphertext)),
      sampler: worker.models.get(job.modelId)?.sampler ?? '',
      finishReason: frame.finishReason,
      ttftMs,
      totalMs,
      tokensPerSecond: outputs <= 1 ? 0 : ((outputs - 1) * 1000) / Math.max(1, totalMs - ttftMs),
      firstTokenAt,
      attempts,
    };
    return commit(
      job,
      worker,
      seq,
      { receipt, signature: frame.signature, leafHash: receiptLeafHash(receipt) },
      completion,
      a,
      startedAt,
      log,
      {
        msg: 'confidential job done',
        input_tokens: Number(receipt.inputUnits),
        output_tokens: outputs,
        total_ms: totalMs,
      },
    );
  }

  /** A result that did not verify: its number released, the worker marked, nothing charged. */
  async function reject(
    job: JobRecord,
    worker: WorkerSession,
    seq: bigint,
    verdict: { field: string; reason: string },
    a: Extract<Attempt, { kind: 'result' }>,
    startedAt: number,
    log: Common['logger'],
    attempts: number,
  ): Promise<JobOutcome> {
    await storage.receiptNumbers.release(chain.gateway, seq).catch(() => {});
    routing.recordInvalidReceipt(worker);
    metrics.receiptsRejected.inc({ field: verdict.field });
    log.warn({ msg: 'receipt rejected', worker: worker.owner, field: verdict.field, reason: verdict.reason });
    return fail(
      job,
      new GatewayError(
        'invalid_receipt',
        `the worker's receipt did not verify (${verdict.reason}); nothing was charged`,
      ),
      a.firstTokenAt !== null,
      startedAt,
      { attempts, worker: worker.owner, operator: worker.operator },
    );
  }

  /**
   * Commits a verified receipt with the job's result (one statement: a number settlement gave up, in
   * flight past its time, stores nothing and the job fails uncharged), then counts the success.
   */
  async function commit(
    job: JobRecord,
    worker: WorkerSession,
    seq: bigint,
    signed: { receipt: Receipt; signature: Hex; leafHash: Hex },
    completion: JobCompletion,
    a: Extract<Attempt, { kind: 'result' }>,
    startedAt: number,
    log: Common['logger'],
    done: Record<string, unknown>,
  ): Promise<JobOutcome> {
    const attempts = completion.attempts ?? job.attempts;
    // Settlement gives a number up only once its dispatch has expired; well before that, the commit can
    // be journaled and the client answered while the statement follows (embedded PGlite; see storage).
    const early =
      Date.now() + EARLY_COMMIT_MARGIN_MS < a.dispatchedAt + options.jobs.jobTimeoutMs + DISPATCH_GRACE_MS;
    const committing = storage.commitReceipt({ ...signed, signer: worker.operator }, job.id, completion, {
      early,
    });
    if (committing.journaled) {
      void committing.stored.then(
        (stored) => {
          if (!stored)
            log.error({ msg: 'a journaled receipt was refused by the database', seq: seq.toString() });
        },
        (error: unknown) =>
          log.error({
            msg: 'a journaled commit kept failing; its journal line is committed at the next start',
            err: error instanceof Error ? error.message : String(error),
          }),
      );
    }
    const stored = committing.journaled || (await committing.stored);
    if (!stored) {
      log.warn({
        msg: 'receipt came after its number was given up',
        worker: worker.owner,
        seq: seq.toString(),
      });
      return fail(
        job,
        new GatewayError('worker_failed', 'the worker answered too late to be paid; nothing was charged'),
        a.firstTokenAt !== null,
        startedAt,
        { attempts, worker: worker.owner, operator: worker.operator },
      );
    }
    routing.recordSuccess(worker, { ttftMs: completion.ttftMs, tokensPerSecond: completion.tokensPerSecond });
    onReceipt?.();
    metrics.jobs.inc({ model: job.modelName, status: 'succeeded', reason: 'ok' });
    metrics.jobDuration.observe(
      { model: job.modelName, status: 'succeeded' },
      (Date.now() - startedAt) / 1000,
    );
    // Time to first token: a text job's (an image job has none).
    if (job.image === null) metrics.ttft.observe({ model: job.modelName }, completion.ttftMs / 1000);
    log.info({ ...done, worker: worker.owner, fee: signed.receipt.fee.toString() });
    // What was just committed, as the database holds it (no read-back).
    const kept: StoredReceipt = {
      ...signed,
      signer: worker.operator,
      seq,
      batchId: null,
      settled: false,
      excluded: null,
    };
    return { ok: true, job: completedJob(job, completion, attempts), receipt: kept };
  }

  /**
   * An image job's result: verified (receipt, images, hashes, fee, signature), its images stored
   * (content-addressed, until they expire) BEFORE the receipt is committed, so a billed job always has
   * its images; then receipt and result commit together, as for text.
   */
  async function completeImage(
    job: JobRecord,
    worker: WorkerSession,
    seq: bigint,
    a: Extract<Attempt, { kind: 'result' }>,
    startedAt: number,
    log: Common['logger'],
    attempts: number,
  ): Promise<JobOutcome> {
    const now = Date.now();
    const frame = a.frame as ImageResultMessage; // checked against the job's kind on arrival
    const pipeline = worker.models.get(job.modelId)?.sampler ?? '';
    const verdict = await verifyImageResult(frame, {
      job,
      seq,
      gateway: chain.gateway,
      worker: worker.owner,
      operator: worker.operator,
      pipeline,
      chainId: chain.chainId,
      grid: chain.grid,
      dispatchedAt: a.dispatchedAt,
      now,
      clockSkewSec: options.jobs.clockSkewSec,
    });
    if (!verdict.ok) return reject(job, worker, seq, verdict, a, startedAt, log, attempts);
    await storage.images.put(
      verdict.images.map((i) => ({ hash: i.stored.hash, format: i.stored.format, bytes: i.bytes })),
      job.id,
      new Date(now + options.images.retentionMs),
    );
    for (const [i, img] of verdict.images.entries())
      if (img.latents)
        await storage.images.putTrajectory(
          job.id,
          i,
          img.latents,
          new Date(now + options.images.auditRetentionMs),
        );
    const receipt = ownSpelling(verdict.receipt, job, worker);
    const { totalMs, firstTokenAt } = timingsOf(a, now);
    const completion: JobCompletion = {
      worker: worker.owner,
      operator: worker.operator,
      fee: receipt.fee,
      outputTokenIds: [],
      outputText: '',
      sampler: pipeline,
      finishReason: 'stop',
      ttftMs: totalMs,
      totalMs,
      tokensPerSecond: 0,
      firstTokenAt,
      attempts,
      images: verdict.images.map((i) => i.stored),
    };
    const leafHash = receiptLeafHash(receipt);
    return commit(
      job,
      worker,
      seq,
      { receipt, signature: frame.signature, leafHash },
      completion,
      a,
      startedAt,
      log,
      {
        msg: 'image job done',
        images: frame.images.length,
        total_ms: totalMs,
      },
    );
  }

  // ── async jobs ─────────────────────────────────────────────────────────────────────────────
  async function pumpQueue(): Promise<void> {
    if (shutdown.isShuttingDown()) return;
    const free = asyncConcurrency - asyncRunning;
    if (free <= 0) return;
    const claimed = await storage.jobs.claimQueued(instanceId, new Date(Date.now() + leaseMs()), free);
    for (const job of claimed) {
      asyncRunning += 1;
      void execute(job).finally(() => {
        asyncRunning -= 1;
      });
    }
  }

  let pumping: Promise<void> | undefined;
  function kick() {
    pumping ??= pumpQueue()
      .catch((error: unknown) => logger.warn({ msg: 'async queue poll failed', error }))
      .finally(() => {
        pumping = undefined;
      });
  }

  let loop: NodeJS.Timeout | undefined;
  let ticks = 0;
  /** The last vacuum pass (`database.vacuumIntervalMs`) started then; one runs at a time (`vacuuming`). */
  let lastVacuumAt = Date.now();
  let vacuuming: Promise<void> | undefined;
  /** Where the periodic recovery stands: leases that end from `since` on, and the processes already found dead. */
  let recovery: { since: Date; dead: Set<string> } | undefined;
  let recovering = false;

  /**
   * The periodic recovery (every 10 s): leases that lapsed since the last pass, and the running jobs of
   * processes found dead since (at once, not when their leases lapse). Bounded by what changed: the
   * whole set of running jobs is looked at only at start.
   */
  async function recoverLapsed(): Promise<void> {
    if (!recovery || recovering) return;
    recovering = true;
    try {
      const dead = await storage.instances.dead();
      const known = recovery.dead;
      const r = await storage.jobs.recoverSince(
        new Date(recovery.since.getTime() - RECOVERY_OVERLAP_MS),
        dead.filter((id) => !known.has(id)),
      );
      recovery = { since: r.at, dead: new Set(dead) };
      if (r.requeued + r.failed > 0)
        logger.info({ msg: 'recovered jobs of a stopped gateway', requeued: r.requeued, failed: r.failed });
    } finally {
      recovering = false;
    }
  }

  return {
    instanceId,
    prepare,
    prepareImage,
    prepareConfidential,
    modelFor,
    discard,
    /** An image job's last progress, while it runs in this process. */
    progressOf: (id: string) => progress.get(id),
    execute,
    /**
     * Runs `job` streamed: an async iterator of what it produces (text deltas, sealed chunks, image
     * progress) whose return value is the outcome (stream.ts).
     */
    stream: (job: JobRecord, signal?: AbortSignal) => streamEvents(execute, job, signal),
    /**
     * Readies receipt numbering, recovers jobs left by a previous process and starts the async queue.
     * Call before the first request is dispatched.
     */
    async start(): Promise<void> {
      // This process is alive (beaten every few seconds): its idempotency locks and running jobs are
      // someone else's to take over the moment it stops. A process of the same name (this host and
      // port) that is still listed is the one this replaces: dead now. Embedded PGlite: every other.
      await storage.instances.beat(instanceId, instanceName, INSTANCE_TTL_MS);
      const retired = await storage.instances.retireOthers(
        instanceId,
        instanceName,
        storage.db.kind === 'pglite',
      );
      if (retired.length > 0) logger.info({ msg: 'took over from a stopped gateway process', retired });
      // Receipt numbers continue from at least where the chain's settled ranges end (a fresh or restored
      // database never hands out a number a batch already covered).
      const nextSeq = await storage.receiptNumbers.init(chain.gateway, await chain.nextReceiptSeq());
      logger.info({ msg: 'receipt numbers ready', next_seq: nextSeq.toString() });
      // Embedded PGlite has one process at a time: whatever was running belongs to a dead process.
      if (storage.db.kind === 'pglite') {
        await storage.jobs.expireAllRunning();
        await storage.receiptNumbers.releaseAll();
      }
      recovery = { since: new Date(), dead: new Set(await storage.instances.dead()) };
      const recovered = await storage.jobs.recoverExpired();
      if (recovered.requeued + recovered.failed > 0)
        logger.info({ msg: 'recovered jobs of a stopped gateway', ...recovered });
      loop = setInterval(() => {
        ticks += 1;
        kick();
        if (ticks % BEAT_TICKS === 0)
          storage.instances
            .beat(instanceId, instanceName, INSTANCE_TTL_MS)
            .catch((error: unknown) => logger.warn({ msg: 'instance heartbeat failed', error }));
        if (ticks % 20 === 0) {
          recoverLapsed().catch((error: unknown) => logger.warn({ msg: 'job recovery failed', error }));
          storage.idempotency.prune().catch(() => {});
          if (ticks % 7_200 === 0) storage.instances.prune().catch(() => {});
          // Expired images and audit latents (every minute).
          if (ticks % 120 === 0) storage.images.deleteExpired().catch(() => {});
        }
        const vacuumEvery = options.database.vacuumIntervalMs;
        if (vacuumEvery > 0 && !vacuuming && Date.now() - lastVacuumAt >= vacuumEvery) {
          lastVacuumAt = Date.now();
          vacuuming = storage.db
            .vacuum()
            .then((done) => {
              if (done.length > 0)
                logger.info({
                  msg: 'database vacuumed',
                  tables: done.map((t) => ({ table: t.table, dead_rows: t.deadRows, ms: Math.round(t.ms) })),
                });
            })
            .catch((error: unknown) => logger.warn({ msg: 'database vacuum failed', error }))
            .finally(() => {
              vacuuming = undefined;
            });
        }
      }, 500);
      loop.unref();
      kick();
    },
    /** Starts queued async jobs now (after a submit) instead of at the next poll. */
    kick,
    /** Waits for every job in flight (bounded), then stops the loops. */
    async stop(timeoutMs: number): Promise<void> {
      clearInterval(loop);
      const deadline = Date.now() + timeoutMs;
      while (running.size > 0 && Date.now() < deadline) await sleep(25);
      if (running.size > 0)
        logger.warn({ msg: 'shutdown: jobs still running after the timeout', count: running.size });
      await pumping;
      await vacuuming;
      // A clean stop: nothing of this process is left to wait for.
      await storage.instances
        .retire(instanceId)
        .catch((error: unknown) => logger.warn({ msg: 'retiring the instance failed', error }));
    },
    inFlight: () => running.size,
  };
}

/**
 * Why a progress frame is one no honest worker sends for `frame` (undefined when it is fine): not an image
 * job, an image past `n` or a step past the job's steps, a step not after the last one reported for its
 * image (pipelines report each step once, in order), or a preview beyond `partialImages` for each image
 * (a pipeline spreads `partialImages` over the whole job; at most that many per image is allowed). So a
 * job's progress is bounded: at most n × (steps + 1) frames and n × `partialImages` previews. The step
 * count a frame names is not held against it: a worker running fewer steps than paid for is the
 * validators' to catch on the trajectory it commits to (and slash), not the gateway's to guess from a label.
 */
export function progressFault(
  frame: JobMessage | ImageJobMessage | SealedJobMessage,
  p: ProgressMessage,
  stepsSeen: readonly number[],
  previewsSeen: number,
): string | undefined {
  if (frame.type !== 'image-job') return 'progress frames for a text job';
  const { params, partialImages } = frame;
  if (p.image >= params.n) return `progress of image ${p.image} of a job of ${params.n}`;
  if (p.step > params.steps || p.step <= (stepsSeen[p.image] ?? -1))
    return `progress step ${p.step} of image ${p.image} out of order`;
  if (p.preview !== undefined && previewsSeen >= partialImages * params.n)
    return `more previews than the ${partialImages} asked per image`;
  return undefined;
}

/**
 * The seed a job runs with. A sampled job (temperature > 0) the client left unseeded gets one drawn
 * from its random job id: as unpredictable to the client as an engine's private seed, but committed
 * in the receipt (`requestHash`), so a validator can replay the sampler token by token instead of
 * judging the output only statistically. Greedy jobs need none.
 */
export function samplingSeed(spec: { temperature: number; seed: number | null }, jobId: Hex): number | null {
  if (spec.seed !== null || spec.temperature === 0) return spec.seed;
  return Number.parseInt(jobId.slice(2, 14), 16); // 48 bits: a safe integer
}
