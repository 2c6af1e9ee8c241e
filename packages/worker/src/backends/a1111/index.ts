/**
 * Automatic1111's stable-diffusion-webui, or Forge, through its `/sdapi/v1` API (started with `--api`):
 * `txt2img` with the checkpoint chosen by `override_settings.sd_model_checkpoint`, progress polled from
 * `/sdapi/v1/progress` while the request runs, `/sdapi/v1/interrupt` on abort, checkpoints from
 * `/sdapi/v1/sd-models`.
 *
 * Seeds: with `subseed_strength` 0, A1111 runs image i of a batch on `seed + i` (`all_seeds`) and
 * draws each image's noise from its own generator (`rng.ImageRNG`), so a job of n images is one
 * request of `batch_size` n, unless `imageSeed` wraps at 2³² inside the job (A1111 would go on to
 * 2³²): then one request per run of consecutive seeds. The answer's `info.all_seeds` must be the
 * seeds asked, its `sd_model_hash` the checkpoint's, and size, steps, cfg, sampler and prompts the
 * job's: a server that ran anything else is an error.
 *
 * Weights: A1111 reports each checkpoint's sha256 once it has hashed it (on first load): it must be
 * the registered hash (checked at load, after the smoke run if it was not known before).
 *
 * One job at a time: A1111 runs one job at a time (`queue_lock`), and its progress and interrupt are
 * global, so this backend never has two requests outstanding. Progress snapshots count as this job's
 * only when their step count is the job's and they advance; a job of the same step count that another
 * client runs on the same server just before ours could be read as ours (the API does not say whose
 * job runs). An abort interrupts the server only once our job is seen running; while it is queued
 * behind another client's, the promise rejects at once and the interrupt is sent when it starts.
 */
import {
  computeModelId,
  type ImageParams,
  InvalidInputError,
  imageSeed,
  SAMPLER_NAME,
  ZERO_TRAJECTORY,
} from '@aipg/core';
import { InferenceAbortedError } from '@aipg/inference';
import type { Logger } from 'pino';
import type { Hex } from 'viem';
import { BackendError, BackendErrorCode } from '../errors.ts';
import { trimSlash } from '../http.ts';
import {
  checkImageParams,
  deliverImage,
  type ImageLimits,
  imageCapabilities,
  limitProblems,
  previewPlan,
  promptTextOf,
  smokeJob,
} from '../image.ts';
import type { BackendModel, ImageBackend, ImageRequest, ImageResult } from '../types.ts';

/** A job `scheduler` name → A1111's `sampler_name` and (A1111 ≥ 1.9) `scheduler`. */
export type A1111Sampler = { sampler: string; scheduler?: string | undefined };

export const DEFAULT_A1111_SAMPLERS: Record<string, A1111Sampler> = {
  euler: { sampler: 'Euler' },
  euler_a: { sampler: 'Euler a' },
  dpmpp_2m_karras: { sampler: 'DPM++ 2M', scheduler: 'karras' },
  ddim: { sampler: 'DDIM' },
};

export const DEFAULT_A1111_LIMITS: ImageLimits = {
  sizes: [
    [512, 512],
    [512, 768],
    [768, 512],
    [768, 768],
    [1024, 1024],
  ],
  steps: [1, 50],
  guidance: [1, 20],
  maxN: 4,
};

export type A1111BackendOptions = {
  /** ModelRegistry name. */
  name: string;
  /** The registered sha256 of the checkpoint file: A1111's `sha256` for it must be this. */
  weightsHash: Hex;
  /** Default http://127.0.0.1:7860. */
  url?: string | undefined;
  /** The checkpoint's `title` (`name.safetensors [hash]`) or `model_name` in `/sdapi/v1/sd-models`. */
  checkpoint: string;
  /** Default `DEFAULT_A1111_LIMITS`. */
  limits?: ImageLimits | undefined;
  /** Default `DEFAULT_A1111_SAMPLERS`. */
  samplers?: Record<string, A1111Sampler> | undefined;
  /**
   * More `override_settings` for every job (e.g. `{ randn_source: 'CPU' }`: noise independent of the
   * GPU, closer to other workers' images); the checkpoint is always set by the backend.
   */
  overrideSettings?: Record<string, unknown> | undefined;
  /** Advertised as the model's sampler and signed into receipts; default `a1111`. */
  pipeline?: string | undefined;
  /** `user:password` of the server's `--api-auth` (HTTP Basic). */
  auth?: string | undefined;
  /** How often progress is polled while a job runs; default 250 ms. */
  progressIntervalMs?: number | undefined;
  /** Bound on each progress poll and interrupt request; default 5000 ms. */
  requestTimeoutMs?: number | undefined;
  logger?: Logger | undefined;
};

export type A1111Backend = ImageBackend & { readonly kind: 'a1111' };

type SdModel = {
  title: string;
  model_name: string;
  hash?: string | null;
  sha256?: string | null;
  filename?: string;
};
type Txt2ImgAnswer = { images?: string[]; info?: string; parameters?: unknown };
type Info = {
  seed?: number;
  all_seeds?: number[];
  all_prompts?: string[];
  all_negative_prompts?: string[];
  width?: number;
  height?: number;
  steps?: number;
  cfg_scale?: number;
  sampler_name?: string;
  sd_model_hash?: string | null;
};
type Progress = {
  state?: {
    job_count?: number;
    sampling_step?: number;
    sampling_steps?: number;
    interrupted?: boolean;
    skipped?: boolean;
  };
  current_image?: string | null;
};

export function createA1111Backend(options: A1111BackendOptions): A1111Backend {
  const url = trimSlash(options.url ?? 'http://127.0.0.1:7860');
  const limits = options.limits ?? DEFAULT_A1111_LIMITS;
  const configured = options.samplers ?? DEFAULT_A1111_SAMPLERS;
  const problems = limitProblems(limits, Object.keys(configured));
  const pipeline = options.pipeline ?? 'a1111';
  if (!SAMPLER_NAME.test(pipeline)) problems.push(`pipeline name ${pipeline}`);
  if (problems.length > 0)
    throw new InvalidInputError('Invalid Automatic1111 backend options', problems.join('; '));
  const interval = options.progressIntervalMs ?? 250;
  const timeoutMs = options.requestTimeoutMs ?? 5000;
  const weightsHash = options.weightsHash.toLowerCase() as Hex;
  const model: BackendModel = {
    name: options.name,
    weightsHash,
    modelId: computeModelId(options.name, weightsHash),
  };
  const log = options.logger;
  const headers: Record<string, string> = options.auth
    ? { authorization: `Basic ${Buffer.from(options.auth).toString('base64')}` }
    : {};
  /** Aborts requests left running (an aborted job's txt2img) when the backend closes. */
  let closing = new AbortController();
  let samplers = configured;
  let checkpoint: SdModel | undefined;
  /** `sd_model_hash` every answer must carry (A1111's short hash: sha256's first 10 hex digits). */
  let shortHash: string | undefined;
  let loading: Promise<void> | undefined;
  let ready = false;
  let lockTail: Promise<void> = Promise.resolve();

  const call = (
    path: string,
    what: string,
    init: { body?: unknown; signal?: AbortSignal; notFoundOk?: boolean } = {},
  ) => a1111Fetch(`${url}${path}`, what, { headers, ...init });

  async function load(): Promise<void> {
    const models = await json<SdModel[]>(
      await call('/sdapi/v1/sd-models', 'A1111 /sd-models'),
      'A1111 /sd-models',
    );
    const found = findCheckpoint(models, options.checkpoint);
    checkWeights(found);
    checkpoint = found;
    const offered = await call('/sdapi/v1/samplers', 'A1111 /samplers');
    const names = (
      await json<{ name: string; aliases?: string[] | null }[]>(offered, 'A1111 /samplers')
    ).flatMap((s) => [s.name, ...(s.aliases ?? [])]);
    // /schedulers exists from A1111 1.9 (and in Forge); before, a scheduler cannot be chosen.
    const schedulersAnswer = await call('/sdapi/v1/schedulers', 'A1111 /schedulers', { notFoundOk: true });
    const schedulers =
      schedulersAnswer.status === 404
        ? undefined
        : (await json<{ name: string; label?: string }[]>(schedulersAnswer, 'A1111 /schedulers')).flatMap(
            (s) => [s.name, s.label ?? s.name],
          );
    const usable = Object.entries(configured).filter(
      ([, s]) =>
        names.includes(s.sampler) &&
        (s.scheduler === undefined || schedulers?.includes(s.scheduler) === true),
    );
    if (usable.length === 0)
      throw new BackendError('The server offers none of the configured samplers', {
        code: BackendErrorCode.protocol,
        details: `configured: ${JSON.stringify(configured)}; server samplers: ${names.join(', ')}`,
      });
    if (usable.length < Object.keys(configured).length)
      log?.warn(
        { dropped: Object.keys(configured).filter((k) => !usable.some(([u]) => u === k)) },
        'A1111 lacks some configured samplers or schedulers: not advertised',
      );
    samplers = Object.fromEntries(usable);
    shortHash = found.sha256 ? found.sha256.slice(0, 10) : (found.hash ?? undefined);
    await run(smokeJob(limits, Object.keys(samplers)[0]!));
    if (!found.sha256) {
      // A1111 hashes a checkpoint when it loads it: the smoke run did.
      const again = findCheckpoint(
        await json<SdModel[]>(await call('/sdapi/v1/sd-models', 'A1111 /sd-models'), 'A1111 /sd-models'),
        options.checkpoint,
      );
      checkWeights(again);
      checkpoint = again;
      if (again.sha256) shortHash = again.sha256.slice(0, 10);
      else
        log?.warn(
          { checkpoint: found.title },
          'A1111 reports no sha256 for the checkpoint: its weights could not be checked',
        );
    }
    ready = true;
    log?.info({ url, checkpoint: checkpoint.title, pipeline }, 'Automatic1111 model ready');
  }

  /** By title or model name; A1111 appends ` [shorthash]` to the title once it has hashed the file. */
  function findCheckpoint(models: SdModel[], wanted: string): SdModel {
    const bare = (title: string) => title.replace(/ \[[0-9a-f]+\]$/, '');
    const found = models.find(
      (m) => m.title === wanted || m.model_name === wanted || bare(m.title) === bare(wanted),
    );
    if (!found)
      throw new BackendError(`The server has no checkpoint ${wanted}`, {
        code: BackendErrorCode.modelNotFound,
        details: `${url} lists: ${
          models
            .map((m) => m.title)
            .join(', ')
            .slice(0, 2000) || 'no checkpoints'
        }`,
      });
    return found;
  }

  function checkWeights(found: SdModel) {
    if (found.sha256 && `0x${found.sha256.toLowerCase()}` !== weightsHash)
      throw new BackendError('The checkpoint is not the registered weights', {
        code: BackendErrorCode.weightsMismatch,
        details: `${found.title}: sha256 ${found.sha256}, registered ${weightsHash}`,
      });
  }

  /** Jobs run one after another; a slot is held until the server answered its request. */
  function acquire(): { ready: Promise<void>; release: () => void } {
    let release!: () => void;
    const mine = new Promise<void>((resolve) => {
      release = resolve;
    });
    const ready = lockTail;
    lockTail = lockTail.then(() => mine);
    return { ready, release };
  }

  async function run(req: ImageRequest): Promise<ImageResult> {
    const started = performance.now();
    const { params, signal } = req;
    checkImageParams(limits, samplers, params);
    const prompt = promptTextOf(req.promptTokenIds, 'prompt');
    const negative = promptTextOf(req.negativeTokenIds, 'negative prompt');
    if (signal.aborted) throw new InferenceAbortedError(signal.reason);

    const previews = previewPlan(params.n * params.steps, req.partialImages);
    let events = 0;
    const progress = {
      live: true,
      emit(image: number, step: number, preview?: Uint8Array) {
        if (!progress.live) return;
        events += 1;
        let attached: Uint8Array | undefined;
        if (preview && previews.due(events)) {
          previews.taken();
          attached = preview;
        }
        req.onProgress?.({ image, step, steps: params.steps, ...(attached ? { preview: attached } : {}) });
      },
    };

    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => {
        progress.live = false;
        reject(new InferenceAbortedError(signal.reason));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => {});
    const lock = acquire();
    let tail: Promise<unknown> | undefined;
    const images: ImageResult['images'] = [];
    try {
      await Promise.race([lock.ready, aborted]);
      for (const group of seedGroups(params)) {
        const request = { prompt, negative, params, ...group, previews: req.partialImages > 0 };
        const pngs = await runGroup(request, signal, aborted, progress, (t) => {
          tail = t;
        });
        for (const png of pngs)
          images.push({
            bytes: await deliverImage(png, params, 'A1111 txt2img'),
            trajectoryRoot: ZERO_TRAJECTORY,
          });
      }
    } catch (error) {
      progress.live = false;
      if (signal.aborted) throw new InferenceAbortedError(signal.reason);
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort!);
      if (tail) void tail.finally(lock.release);
      else lock.release();
    }
    return { images, timings: { totalMs: performance.now() - started } };
  }

  /** One txt2img request (consecutive seeds as one batch) watched by a progress poller. */
  async function runGroup(
    group: {
      prompt: string;
      negative: string;
      params: ImageParams;
      first: number;
      seeds: number[];
      previews: boolean;
    },
    signal: AbortSignal,
    aborted: Promise<never>,
    progress: { emit(image: number, step: number, preview?: Uint8Array): void },
    leaveRunning: (tail: Promise<unknown>) => void,
  ): Promise<Uint8Array[]> {
    const { params, seeds } = group;
    const chosen = samplers[params.scheduler]!;
    const body = {
      prompt: group.prompt,
      negative_prompt: group.negative,
      styles: [],
      seed: seeds[0],
      subseed_strength: 0,
      sampler_name: chosen.sampler,
      ...(chosen.scheduler === undefined ? {} : { scheduler: chosen.scheduler }),
      batch_size: seeds.length,
      n_iter: 1,
      steps: params.steps,
      cfg_scale: params.guidance,
      width: params.width,
      height: params.height,
      restore_faces: false,
      tiling: false,
      enable_hr: false,
      do_not_save_samples: true,
      do_not_save_grid: true,
      send_images: true,
      save_images: false,
      // Kept after the job: restoring would reload the previous checkpoint after every job.
      override_settings: { ...options.overrideSettings, sd_model_checkpoint: checkpoint!.title },
      override_settings_restore_afterwards: false,
    };
    const watcher = watchProgress(params.steps, group.previews, (step, preview) => {
      for (let j = 0; j < seeds.length; j++)
        progress.emit(group.first + j, step, j === 0 ? preview : undefined);
    });
    const answer = call('/sdapi/v1/txt2img', 'A1111 txt2img', { body, signal: closing.signal }).then((r) =>
      json<Txt2ImgAnswer>(r, 'A1111 txt2img'),
    );
    answer.catch(() => {});
    let result: Txt2ImgAnswer;
    try {
      result = await Promise.race([answer, aborted]);
    } catch (error) {
      if (signal.aborted) {
        // The server goes on with our job: interrupt it now if it runs, else as soon as it does.
        if (watcher.seen) await interrupt();
        else watcher.onSeen = interrupt;
        leaveRunning(answer.catch(() => {}).finally(watcher.stop));
      } else await watcher.stop();
      throw error;
    }
    await watcher.stop();
    if (watcher.error) throw watcher.error;
    const pngs = checkAnswer(result, group);
    if (watcher.last < params.steps)
      for (let j = 0; j < seeds.length; j++) progress.emit(group.first + j, params.steps);
    return pngs;
  }

  /** The answer must be what was asked: seeds, checkpoint, size, steps, cfg, sampler, prompts. */
  function checkAnswer(
    result: Txt2ImgAnswer,
    group: { prompt: string; negative: string; params: ImageParams; seeds: number[] },
  ): Uint8Array[] {
    const { params, seeds } = group;
    let info: Info;
    try {
      info = JSON.parse(result.info ?? '') as Info;
    } catch {
      throw new BackendError('A1111 txt2img: info is not JSON', {
        code: BackendErrorCode.protocol,
        details: String(result.info).slice(0, 500),
      });
    }
    if (JSON.stringify(info.all_seeds) !== JSON.stringify(seeds))
      throw new BackendError('The server did not run the seeds asked', {
        code: BackendErrorCode.protocol,
        details: `asked ${JSON.stringify(seeds)}, all_seeds ${JSON.stringify(info.all_seeds)}`,
      });
    if (shortHash !== undefined && info.sd_model_hash !== shortHash)
      throw new BackendError('The server ran another checkpoint', {
        code: BackendErrorCode.weightsMismatch,
        details: `asked ${checkpoint!.title} (${shortHash}), ran sd_model_hash ${String(info.sd_model_hash)}`,
      });
    const chosen = samplers[params.scheduler]!;
    const differ: string[] = [];
    const same = (what: string, got: unknown, want: unknown) => {
      if (got !== undefined && JSON.stringify(got) !== JSON.stringify(want))
        differ.push(`${what} ${JSON.stringify(got)} (asked ${JSON.stringify(want)})`);
    };
    same('width', info.width, params.width);
    same('height', info.height, params.height);
    same('steps', info.steps, params.steps);
    same('cfg_scale', info.cfg_scale, params.guidance);
    same('sampler_name', info.sampler_name, chosen.sampler);
    same(
      'all_prompts',
      info.all_prompts,
      seeds.map(() => group.prompt),
    );
    same(
      'all_negative_prompts',
      info.all_negative_prompts,
      seeds.map(() => group.negative),
    );
    if (differ.length > 0)
      throw new BackendError('The server ran other parameters', {
        code: BackendErrorCode.protocol,
        details: differ.join('; '),
      });
    const images = result.images ?? [];
    if (images.length !== seeds.length)
      throw new BackendError(`The server sent ${images.length} images (${seeds.length} asked)`, {
        code: BackendErrorCode.protocol,
      });
    return images.map((b64) => new Uint8Array(Buffer.from(b64, 'base64')));
  }

  async function interrupt(): Promise<void> {
    try {
      const response = await call('/sdapi/v1/interrupt', 'A1111 /interrupt', {
        body: {},
        signal: AbortSignal.timeout(timeoutMs),
      });
      await response.body?.cancel();
      if (!response.ok) log?.warn({ status: response.status }, 'A1111: interrupt refused');
    } catch (error) {
      log?.warn({ err: error }, 'A1111: could not interrupt');
    }
  }

  /**
   * Polls `/sdapi/v1/progress` until stopped. A snapshot is this job's when it shows one job of this
   * job's step count (`n_iter` is 1); its step is reported when it advances.
   */
  function watchProgress(
    steps: number,
    previews: boolean,
    report: (step: number, preview?: Uint8Array) => void,
  ) {
    const path = `/sdapi/v1/progress?skip_current_image=${previews ? 'false' : 'true'}`;
    let wake: (() => void) | undefined;
    const watcher = {
      seen: false,
      last: 0,
      stopped: false,
      error: undefined as Error | undefined,
      onSeen: undefined as (() => Promise<void>) | undefined,
      stop: async () => {
        watcher.stopped = true;
        wake?.();
        await loop;
      },
    };
    const take = (snapshot: Progress) => {
      const state = snapshot.state ?? {};
      if (state.sampling_steps !== steps || state.job_count !== 1 || state.interrupted || state.skipped)
        return;
      if (!watcher.seen) {
        watcher.seen = true;
        const onSeen = watcher.onSeen;
        watcher.onSeen = undefined;
        void onSeen?.();
      }
      const step = Math.min(Number(state.sampling_step), steps);
      if (!Number.isInteger(step) || step <= watcher.last) return;
      watcher.last = step;
      const preview = snapshot.current_image
        ? new Uint8Array(Buffer.from(snapshot.current_image, 'base64'))
        : undefined;
      try {
        report(step, preview);
      } catch (error) {
        watcher.error ??= error as Error;
      }
    };
    const loop = (async () => {
      while (!watcher.stopped) {
        const snapshot = await call(path, 'A1111 /progress', { signal: AbortSignal.timeout(timeoutMs) })
          .then((r) => json<Progress>(r, 'A1111 /progress'))
          .catch(() => undefined);
        if (watcher.stopped) break;
        if (snapshot) take(snapshot);
        await new Promise<void>((resolve) => {
          const timer = setTimeout(resolve, interval);
          wake = () => {
            clearTimeout(timer);
            resolve();
          };
        });
      }
    })();
    return watcher;
  }
  return {
    kind: 'a1111',
    model,
    pipeline,
    get capabilities() {
      return imageCapabilities(limits, Object.keys(samplers));
    },
    load() {
      loading ??= load().catch((error: unknown) => {
        loading = undefined;
        throw error;
      });
      return loading;
    },
    async generate(request: ImageRequest) {
      if (!ready)
        throw new BackendError('The Automatic1111 backend is not loaded', {
          code: BackendErrorCode.notLoaded,
        });
      return run(request);
    },
    async close() {
      await loading?.catch(() => undefined);
      loading = undefined;
      ready = false;
      closing.abort(new Error('backend closed'));
      closing = new AbortController();
    },
  };
}

/**
 * The requests of one job: `imageSeed` wraps at 2³², A1111's `seed + i` does not, so a job whose seeds
 * wrap is two batches.
 */
function seedGroups(params: ImageParams): { first: number; seeds: number[] }[] {
  const groups: { first: number; seeds: number[] }[] = [];
  for (let i = 0; i < params.n; i++) {
    const seed = imageSeed(params, i);
    const last = groups.at(-1);
    if (last && last.seeds.at(-1)! + 1 === seed) last.seeds.push(seed);
    else groups.push({ first: i, seeds: [seed] });
  }
  return groups;
}

/**
 * fetch with errors mapped to BackendError: no answer is BACKEND_UNREACHABLE (retryable), an HTTP error
 * BACKEND_HTTP_ERROR with A1111's message (`{error, detail, errors}`, FastAPI's `{detail}`).
 */
async function a1111Fetch(
  url: string,
  what: string,
  init: {
    headers: Record<string, string>;
    body?: unknown;
    signal?: AbortSignal | undefined;
    notFoundOk?: boolean;
  },
): Promise<Response> {
  let response: Response;
  try {
    response = await fetch(url, {
      method: init.body === undefined ? 'GET' : 'POST',
      headers: {
        ...(init.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...init.headers,
      },
      body: init.body === undefined ? undefined : JSON.stringify(init.body),
      signal: init.signal,
    });
  } catch (cause) {
    throw new BackendError(`${what}: the server is unreachable`, {
      code: BackendErrorCode.unreachable,
      details: `${url}: ${cause instanceof Error ? cause.message : String(cause)}`,
      cause,
      retryable: true,
    });
  }
  if (response.ok || (init.notFoundOk && response.status === 404)) return response;
  const text = await response.text().catch(() => '');
  let message: string | undefined;
  try {
    const body = JSON.parse(text) as { error?: unknown; detail?: unknown; errors?: unknown };
    const detail = typeof body.detail === 'string' ? body.detail : body.detail && JSON.stringify(body.detail);
    message = [body.error, detail, body.errors].filter((x) => typeof x === 'string' && x !== '').join(': ');
  } catch {}
  throw new BackendError(`${what}: HTTP ${response.status}`, {
    code: BackendErrorCode.http,
    details: (message || text.slice(0, 500) || response.statusText).slice(0, 1000),
    retryable: response.status === 429 || response.status >= 500,
  });
}

async function json<T>(response: Response, what: string): Promise<T> {
  let text: string;
  try {
    text = await response.text();
  } catch (cause) {
    throw new BackendError(`${what}: the answer broke`, {
      code: BackendErrorCode.stream,
      cause,
      retryable: true,
    });
  }
  try {
    return JSON.parse(text) as T;
  } catch (cause) {
    throw new BackendError(`${what}: the answer is not JSON`, {
      code: BackendErrorCode.protocol,
      details: text.slice(0, 500),
      cause,
    });
  }
}
