/**
 * ComfyUI (https://github.com/comfyanonymous/ComfyUI), driven through its HTTP and WebSocket API:
 * `POST /prompt` with an API-format graph, progress over `/ws?clientId=`, results from
 * `/history/{id}` and `/view`, `/interrupt` and `/queue` to cancel.
 *
 * What runs: never a graph from the job. Every job fills the slots of one ALLOWED RECIPE (a fixed
 * graph: checkpoint loader, two CLIP text encoders, empty latent, KSampler, VAE decode, SaveImage),
 * values are checked against the recipe's ranges before anything is sent, and the graph sent holds
 * exactly the recipe's nodes.
 *
 * Seeds: ComfyUI draws a batch's noise from ONE generator (`comfy/sample.py prepare_noise`), so image
 * i of a `batch_size` n prompt is not what seed + i gives alone. A job of n images is therefore n
 * prompts of `batch_size` 1, prompt i with `KSampler.seed = imageSeed(params, i)`, queued together;
 * the seed the server ran is read back from `/history` and must be the one sent.
 *
 * Progress: the backend has its own `client_id`, so ComfyUI sends this backend's prompts' messages to
 * its socket only; messages are still filtered by `prompt_id` (a prompt posted without `client_id`
 * is broadcast to every socket) and by node (the recipe's KSampler: VAE or upscaler nodes report
 * progress too). ComfyUI exposes no latents: trajectory roots are `ZERO_TRAJECTORY`, and the weights
 * cannot be verified through the API (validators compare outputs).
 *
 * The last section holds the image helpers the Automatic1111 backend shares (limits, prompt text,
 * delivery in the job's format, preview schedule).
 */
import { randomUUID } from 'node:crypto';
import { computeModelId, InvalidInputError, imageSeed, SAMPLER_NAME, ZERO_TRAJECTORY } from '@aipg/core';
import { InferenceAbortedError } from '@aipg/inference';
import type { Logger } from 'pino';
import type { Hex } from 'viem';
import WebSocket from 'ws';
import { BackendError, BackendErrorCode } from '../errors.ts';
import {
  type HttpResponse,
  type RequestOptions,
  request,
  requestJson,
  serverMessage,
  trimSlash,
} from '../http.ts';
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

// ── recipe ──────────────────────────────────────────────────────────────────────────────────────

/** One node of an API-format graph; an input that is an edge is `[sourceNodeId, outputIndex]`. */
export type ComfyUiNode = {
  class_type: string;
  inputs: Record<string, unknown>;
  _meta?: { title?: string } | undefined;
};
export type ComfyUiGraph = Record<string, ComfyUiNode>;

/** Where a value goes: `[nodeId, inputName]`. */
export type ComfyUiSlot = readonly [node: string, input: string];

export type ComfyUiSlotName =
  | 'checkpoint'
  | 'prompt'
  | 'negative'
  | 'seed'
  | 'steps'
  | 'cfg'
  | 'sampler'
  | 'scheduler'
  | 'width'
  | 'height'
  | 'batchSize'
  | 'filenamePrefix';

/**
 * A signed-off workflow: the graph, the inputs a job may set (everything else is sent as written),
 * and the values it accepts. Checked when the backend is created (`checkComfyUiRecipe`).
 */
export type ComfyUiRecipe = {
  /** For logs and errors, e.g. `sd-txt2img-v1`. */
  name: string;
  graph: ComfyUiGraph;
  slots: Record<ComfyUiSlotName, ComfyUiSlot>;
  limits: ImageLimits;
  /** The job's `scheduler` names this recipe accepts → KSampler's `sampler_name` and `scheduler`. */
  samplers: Record<string, { sampler: string; scheduler: string }>;
};

/** The node classes a recipe may use, and the class each slot must sit on. */
const RECIPE_NODES = [
  'CheckpointLoaderSimple',
  'CLIPTextEncode',
  'EmptyLatentImage',
  'KSampler',
  'VAEDecode',
  'SaveImage',
] as const;
const SLOT_CLASS: Record<ComfyUiSlotName, (typeof RECIPE_NODES)[number]> = {
  checkpoint: 'CheckpointLoaderSimple',
  prompt: 'CLIPTextEncode',
  negative: 'CLIPTextEncode',
  seed: 'KSampler',
  steps: 'KSampler',
  cfg: 'KSampler',
  sampler: 'KSampler',
  scheduler: 'KSampler',
  width: 'EmptyLatentImage',
  height: 'EmptyLatentImage',
  batchSize: 'EmptyLatentImage',
  filenamePrefix: 'SaveImage',
};

/** ComfyUI's stock text-to-image workflow (its default graph, in API format) as a recipe. */
export const DEFAULT_COMFYUI_RECIPE: ComfyUiRecipe = {
  name: 'sd-txt2img-v1',
  graph: {
    '4': { class_type: 'CheckpointLoaderSimple', inputs: { ckpt_name: '' } },
    '5': { class_type: 'EmptyLatentImage', inputs: { width: 512, height: 512, batch_size: 1 } },
    '6': { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['4', 1] } },
    '7': { class_type: 'CLIPTextEncode', inputs: { text: '', clip: ['4', 1] } },
    '3': {
      class_type: 'KSampler',
      inputs: {
        seed: 0,
        steps: 20,
        cfg: 7,
        sampler_name: 'euler',
        scheduler: 'normal',
        denoise: 1,
        model: ['4', 0],
        positive: ['6', 0],
        negative: ['7', 0],
        latent_image: ['5', 0],
      },
    },
    '8': { class_type: 'VAEDecode', inputs: { samples: ['3', 0], vae: ['4', 2] } },
    '9': { class_type: 'SaveImage', inputs: { filename_prefix: 'aipg', images: ['8', 0] } },
  },
  slots: {
    checkpoint: ['4', 'ckpt_name'],
    prompt: ['6', 'text'],
    negative: ['7', 'text'],
    seed: ['3', 'seed'],
    steps: ['3', 'steps'],
    cfg: ['3', 'cfg'],
    sampler: ['3', 'sampler_name'],
    scheduler: ['3', 'scheduler'],
    width: ['5', 'width'],
    height: ['5', 'height'],
    batchSize: ['5', 'batch_size'],
    filenamePrefix: ['9', 'filename_prefix'],
  },
  limits: {
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
  },
  samplers: {
    euler: { sampler: 'euler', scheduler: 'normal' },
    euler_a: { sampler: 'euler_ancestral', scheduler: 'normal' },
    dpmpp_2m_karras: { sampler: 'dpmpp_2m', scheduler: 'karras' },
    ddim: { sampler: 'ddim', scheduler: 'ddim_uniform' },
  },
};

const isEdge = (value: unknown) => Array.isArray(value);

/**
 * Refuses a recipe that is not the fixed text-to-image shape: unknown node classes, edges to missing
 * nodes, a slot on a missing input, an edge or the wrong class, not exactly one KSampler and one
 * SaveImage, a KSampler with `denoise` ≠ 1 (steps would not be the steps run), or bad limits.
 */
export function checkComfyUiRecipe(recipe: ComfyUiRecipe): {
  sampler: string;
  output: string;
} {
  const problems: string[] = [];
  const nodes = Object.entries(recipe.graph);
  const ofClass = (c: string) => nodes.filter(([, n]) => n.class_type === c).map(([id]) => id);
  for (const [id, node] of nodes) {
    if (!(RECIPE_NODES as readonly string[]).includes(node.class_type))
      problems.push(`node ${id}: class ${node.class_type} is not allowed in a recipe`);
    for (const [input, value] of Object.entries(node.inputs ?? {}))
      if (isEdge(value) && !(String((value as unknown[])[0]) in recipe.graph))
        problems.push(`node ${id}.${input}: edge to missing node ${String((value as unknown[])[0])}`);
  }
  const samplers = ofClass('KSampler');
  const outputs = ofClass('SaveImage');
  if (samplers.length !== 1) problems.push(`${samplers.length} KSampler nodes (one expected)`);
  if (outputs.length !== 1) problems.push(`${outputs.length} SaveImage nodes (one expected)`);
  const denoise = samplers[0] === undefined ? 1 : recipe.graph[samplers[0]]?.inputs.denoise;
  if (denoise !== undefined && denoise !== 1)
    problems.push(`KSampler denoise ${String(denoise)} (must be 1)`);
  const seen = new Set<string>();
  for (const [slot, [id, input]] of Object.entries(recipe.slots) as [ComfyUiSlotName, ComfyUiSlot][]) {
    const node = recipe.graph[id];
    if (!node) problems.push(`slot ${slot}: no node ${id}`);
    else if (node.class_type !== SLOT_CLASS[slot])
      problems.push(`slot ${slot}: node ${id} is ${node.class_type}, not ${SLOT_CLASS[slot]}`);
    else if (!(input in node.inputs) || isEdge(node.inputs[input]))
      problems.push(`slot ${slot}: node ${id} has no value input ${input}`);
    if (seen.has(`${id}.${input}`)) problems.push(`slot ${slot}: ${id}.${input} is already a slot`);
    seen.add(`${id}.${input}`);
  }
  if (samplers[0] !== undefined)
    for (const slot of ['seed', 'steps', 'cfg', 'sampler', 'scheduler'] as const)
      if (recipe.slots[slot]?.[0] !== samplers[0]) problems.push(`slot ${slot}: not on the KSampler`);
  problems.push(...limitProblems(recipe.limits, Object.keys(recipe.samplers)));
  if (problems.length > 0)
    throw new InvalidInputError(`Invalid ComfyUI recipe ${recipe.name}`, problems.join('; '));
  return { sampler: samplers[0]!, output: outputs[0]! };
}

/** The graph of image `i` of a job: the recipe's nodes, its slots filled, nothing else. */
export function comfyUiGraph(
  recipe: ComfyUiRecipe,
  values: Record<ComfyUiSlotName, string | number>,
): ComfyUiGraph {
  const graph = structuredClone(recipe.graph);
  for (const [slot, [id, input]] of Object.entries(recipe.slots) as [ComfyUiSlotName, ComfyUiSlot][])
    graph[id]!.inputs[input] = values[slot];
  return graph;
}

// ── backend ─────────────────────────────────────────────────────────────────────────────────────

export type ComfyUiBackendOptions = {
  /** ModelRegistry name. */
  name: string;
  /** The registered sha256 of the checkpoint (ComfyUI cannot prove which weights it runs). */
  weightsHash: Hex;
  /** Default http://127.0.0.1:8188. */
  url?: string | undefined;
  /** The checkpoint as ComfyUI lists it (relative to `models/checkpoints`), e.g. `sd_xl_base_1.0.safetensors`. */
  checkpoint: string;
  /** Default `DEFAULT_COMFYUI_RECIPE`. */
  recipe?: ComfyUiRecipe | undefined;
  /** Advertised as the model's sampler and signed into receipts; default `comfyui`. */
  pipeline?: string | undefined;
  /** This backend's ComfyUI `client_id`; default a random UUID. */
  clientId?: string | undefined;
  /** Bound on each cancel request (`/queue`, `/interrupt`) after an abort; default 5000. */
  cancelTimeoutMs?: number | undefined;
  logger?: Logger | undefined;
};

export type ComfyUiBackend = ImageBackend & {
  readonly kind: 'comfyui';
  readonly clientId: string;
  readonly recipe: ComfyUiRecipe;
};

type Message = { type: string; data?: Record<string, unknown> | null };
type QueueItem = [number, string, ...unknown[]];
type HistoryEntry = {
  prompt?: [number, string, ComfyUiGraph, ...unknown[]];
  outputs?: Record<string, { images?: { filename: string; subfolder?: string; type?: string }[] }>;
  status?: { status_str?: string; completed?: boolean; messages?: unknown[] };
};

/** One prompt of a job, as its messages arrive. */
type Tracker = {
  id: string;
  onMessage(message: Message): void;
  onPreview(bytes: Uint8Array): void;
  fail(error: Error): void;
};

/** ComfyUI's binary event type of a preview frame (`BinaryEventTypes.PREVIEW_IMAGE`). */
const PREVIEW_IMAGE = 1;
/** Messages kept for prompt ids not known yet (a server that assigns its own ids). */
const EARLY_LIMIT = 1024;

export function createComfyUiBackend(options: ComfyUiBackendOptions): ComfyUiBackend {
  const url = trimSlash(options.url ?? 'http://127.0.0.1:8188');
  const recipe = options.recipe ?? DEFAULT_COMFYUI_RECIPE;
  const { sampler: samplerNode, output: outputNode } = checkComfyUiRecipe(recipe);
  const clientId = options.clientId ?? randomUUID();
  const pipeline = options.pipeline ?? 'comfyui';
  if (!SAMPLER_NAME.test(pipeline)) throw new InvalidInputError('Invalid pipeline name', pipeline);
  const cancelTimeoutMs = options.cancelTimeoutMs ?? 5000;
  const weightsHash = options.weightsHash.toLowerCase() as Hex;
  const model: BackendModel = {
    name: options.name,
    weightsHash,
    modelId: computeModelId(options.name, weightsHash),
  };
  const log = options.logger;
  /** The recipe's samplers the server offers (all of them until `load()` asks it). */
  let samplers = recipe.samplers;
  let loading: Promise<void> | undefined;
  let ready = false;
  const socket = createSocket(url, clientId, log);

  async function load(): Promise<void> {
    const info = await requestJson<Record<string, { input?: Record<string, Record<string, unknown>> }>>(
      `${url}/object_info`,
      { what: 'ComfyUI /object_info' },
    );
    const missing = RECIPE_NODES.filter(
      (c) => Object.values(recipe.graph).some((n) => n.class_type === c) && !info[c],
    );
    if (missing.length > 0)
      throw new BackendError('The server cannot run the recipe', {
        code: BackendErrorCode.protocol,
        details: `node classes missing from /object_info: ${missing.join(', ')}`,
      });
    const checkpoints = comboOptions(info.CheckpointLoaderSimple?.input?.required?.ckpt_name);
    if (!checkpoints.includes(options.checkpoint))
      throw new BackendError(`The server has no checkpoint ${options.checkpoint}`, {
        code: BackendErrorCode.modelNotFound,
        details: `${url} lists: ${checkpoints.join(', ').slice(0, 2000) || 'no checkpoints'}`,
      });
    const ksampler = info.KSampler?.input?.required ?? {};
    const serverSamplers = comboOptions(ksampler.sampler_name);
    const serverSchedulers = comboOptions(ksampler.scheduler);
    const offered = Object.entries(recipe.samplers).filter(
      ([, s]) => serverSamplers.includes(s.sampler) && serverSchedulers.includes(s.scheduler),
    );
    if (offered.length === 0)
      throw new BackendError('The server offers none of the recipe samplers', {
        code: BackendErrorCode.protocol,
        details: `recipe: ${JSON.stringify(recipe.samplers)}; server samplers: ${serverSamplers.join(', ')}`,
      });
    if (offered.length < Object.keys(recipe.samplers).length)
      log?.warn(
        { dropped: Object.keys(recipe.samplers).filter((k) => !offered.some(([o]) => o === k)) },
        'ComfyUI lacks some recipe samplers: not advertised',
      );
    samplers = Object.fromEntries(offered);
    await socket.open();
    // A tiny generation through the whole path before the model is advertised.
    await run(smokeJob(recipe.limits, Object.keys(samplers)[0]!));
    ready = true;
    log?.info({ url, checkpoint: options.checkpoint, recipe: recipe.name, clientId }, 'ComfyUI model ready');
    log?.warn(
      { checkpoint: options.checkpoint },
      'ComfyUI cannot prove which weights it runs and exposes no latents: validators compare outputs',
    );
  }

  async function generate(req: ImageRequest): Promise<ImageResult> {
    if (!ready)
      throw new BackendError('The ComfyUI backend is not loaded', { code: BackendErrorCode.notLoaded });
    return run(req);
  }

  async function run(req: ImageRequest): Promise<ImageResult> {
    const started = performance.now();
    const { params, signal } = req;
    checkImageParams(recipe.limits, samplers, params);
    const prompt = promptTextOf(req.promptTokenIds, 'prompt');
    const negative = promptTextOf(req.negativeTokenIds, 'negative prompt');
    if (signal.aborted) throw new InferenceAbortedError(signal.reason);
    const chosen = samplers[params.scheduler]!;
    const tag = randomUUID().slice(0, 8);
    const graphs = Array.from({ length: params.n }, (_, i) =>
      comfyUiGraph(recipe, {
        checkpoint: options.checkpoint,
        prompt,
        negative,
        seed: imageSeed(params, i),
        steps: params.steps,
        cfg: params.guidance,
        sampler: chosen.sampler,
        scheduler: chosen.scheduler,
        width: params.width,
        height: params.height,
        // One image per prompt: a batch shares one noise generator (see the header).
        batchSize: 1,
        filenamePrefix: `aipg_${tag}_${i}`,
      }),
    );

    const progress = jobProgress(req);
    const jobs: PromptRun[] = [];
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_, reject) => {
      onAbort = () => reject(new InferenceAbortedError(signal.reason));
      signal.addEventListener('abort', onAbort, { once: true });
    });
    aborted.catch(() => {});
    const images: ImageResult['images'] = [];
    try {
      await Promise.race([socket.open(), aborted]);
      for (const [i, graph] of graphs.entries()) {
        const job = trackPrompt(i, randomUUID(), samplerNode, params.steps, progress);
        jobs.push(job);
        const posted = await Promise.race([socket.post(graph, job.tracker, signal), aborted]);
        if (Object.keys(posted.node_errors ?? {}).length > 0)
          throw new BackendError('The server reported node errors', {
            code: BackendErrorCode.protocol,
            details: nodeErrorsText(posted.node_errors),
          });
      }
      for (const [i, job] of jobs.entries()) {
        await Promise.race([job.done, aborted]);
        const png = await Promise.race([result(job.tracker.id, imageSeed(params, i), signal), aborted]);
        const bytes = await deliverImage(png, params, 'ComfyUI /view');
        images.push({ bytes, trajectoryRoot: ZERO_TRAJECTORY });
      }
    } catch (error) {
      progress.close();
      // Stop what is left of this job on the server: queued prompts deleted, the running one interrupted.
      await cancel(jobs.filter((j) => !j.finished).map((j) => j.tracker.id));
      if (signal.aborted) throw new InferenceAbortedError(signal.reason);
      throw error;
    } finally {
      signal.removeEventListener('abort', onAbort!);
      for (const job of jobs) socket.untrack(job.tracker.id);
    }
    return { images, timings: { totalMs: performance.now() - started } };
  }

  /** The single PNG a finished prompt saved, after checking it ran the seed sent. */
  async function result(id: string, seed: number, signal: AbortSignal): Promise<Uint8Array> {
    const opts: RequestOptions = { what: 'ComfyUI /history', signal };
    const history = await requestJson<Record<string, HistoryEntry>>(
      `${url}/history/${encodeURIComponent(id)}`,
      opts,
    );
    const entry = history[id];
    if (!entry)
      throw new BackendError('The server has no history for a finished prompt', {
        code: BackendErrorCode.protocol,
        details: id,
      });
    if (entry.status?.status_str !== undefined && entry.status.status_str !== 'success')
      throw new BackendError('ComfyUI failed while running the prompt', {
        code: BackendErrorCode.stream,
        details: JSON.stringify(entry.status.messages ?? entry.status).slice(0, 500),
        retryable: true,
      });
    const [seedNode, seedInput] = recipe.slots.seed;
    const ran = entry.prompt?.[2]?.[seedNode]?.inputs?.[seedInput];
    if (ran !== undefined && ran !== seed)
      throw new BackendError('The server ran another seed', {
        code: BackendErrorCode.protocol,
        details: `asked ${seed}, its history says ${String(ran)}`,
      });
    const files = entry.outputs?.[outputNode]?.images ?? [];
    if (files.length !== 1)
      throw new BackendError(`The prompt saved ${files.length} images (one expected)`, {
        code: BackendErrorCode.protocol,
        details: JSON.stringify(entry.outputs ?? {}).slice(0, 500),
      });
    const file = files[0]!;
    const query = new URLSearchParams({
      filename: file.filename,
      subfolder: file.subfolder ?? '',
      type: file.type ?? 'output',
    });
    const view = { what: 'ComfyUI /view', signal };
    const response = await request(`${url}/view?${query}`, view);
    return readBytes(response, view);
  }

  /**
   * Deletes this job's queued prompts, then interrupts the running one if it is ours (checked on
   * `/queue` first: `/interrupt` stops whatever runs on servers that ignore its `prompt_id`).
   */
  async function cancel(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const opts = (what: string) => ({ what, signal: AbortSignal.timeout(cancelTimeoutMs) });
    try {
      const queue = await requestJson<{ queue_running?: QueueItem[]; queue_pending?: QueueItem[] }>(
        `${url}/queue`,
        opts('ComfyUI /queue'),
      );
      const pending = (queue.queue_pending ?? []).map((q) => q[1]).filter((id) => ids.includes(id));
      if (pending.length > 0)
        await (
          await request(`${url}/queue`, { ...opts('ComfyUI /queue'), body: { delete: pending } })
        ).text();
      const running = (queue.queue_running ?? []).map((q) => q[1]).find((id) => ids.includes(id));
      if (running !== undefined)
        await (
          await request(`${url}/interrupt`, { ...opts('ComfyUI /interrupt'), body: { prompt_id: running } })
        ).text();
    } catch (error) {
      log?.warn({ err: error, prompts: ids }, 'ComfyUI: could not cancel prompts');
    }
  }

  return {
    kind: 'comfyui',
    clientId,
    recipe,
    model,
    pipeline,
    get capabilities() {
      return imageCapabilities(recipe.limits, Object.keys(samplers));
    },
    load() {
      loading ??= load().catch((error: unknown) => {
        loading = undefined;
        throw error;
      });
      return loading;
    },
    generate,
    async close() {
      await loading?.catch(() => undefined);
      loading = undefined;
      ready = false;
      socket.close();
    },
  };
}

/** A job's progress events, in order, with `partialImages` previews placed by `previewPlan`. */
function jobProgress(req: ImageRequest) {
  const { params } = req;
  const previews = previewPlan(params.n * params.steps, req.partialImages);
  let lastImage = -1;
  let events = 0;
  let live = true;
  return {
    /** Step `step` of image `image` is done: dropped when an earlier image reports after a later one. */
    accept(image: number): { wantsPreview: boolean } | undefined {
      if (!live || image < lastImage) return undefined;
      lastImage = image;
      events += 1;
      return { wantsPreview: previews.due(events) };
    },
    emit(image: number, step: number, preview?: Uint8Array) {
      if (!live) return;
      if (preview) previews.taken();
      req.onProgress?.({ image, step, steps: params.steps, ...(preview ? { preview } : {}) });
    },
    /** The job failed or was aborted: nothing more is reported. */
    close() {
      live = false;
    },
  };
}

/** One prompt of a job: its tracker (fed by the socket) and its end. */
type PromptRun = { tracker: Tracker; done: Promise<void>; finished: boolean };

/**
 * Follows one prompt's messages: the KSampler's `progress` (steps must be the job's), the end
 * (`executing` with node null: history is written by then), `execution_error` and
 * `execution_interrupted`. A step that wants a preview waits for the frame that follows its progress
 * message, or for the prompt's next message.
 */
function trackPrompt(
  index: number,
  id: string,
  samplerNode: string,
  steps: number,
  progress: ReturnType<typeof jobProgress>,
): PromptRun {
  let resolve!: () => void;
  let reject!: (error: Error) => void;
  const done = new Promise<void>((res, rej) => {
    resolve = res;
    reject = rej;
  });
  done.catch(() => {});
  let lastStep = 0;
  let held: number | undefined;
  const flush = (preview?: Uint8Array) => {
    if (held === undefined) return;
    const step = held;
    held = undefined;
    progress.emit(index, step, preview);
  };
  const step = (data: Record<string, unknown>) => {
    if (data.max !== steps)
      throw new BackendError('The server runs another number of steps', {
        code: BackendErrorCode.protocol,
        details: `asked ${steps}, progress reports max ${String(data.max)}`,
      });
    const value = Number(data.value);
    if (!Number.isInteger(value) || value <= lastStep || value > steps) return;
    const accepted = progress.accept(index);
    if (!accepted) return;
    lastStep = value;
    if (accepted.wantsPreview) held = value;
    else progress.emit(index, value);
  };
  const run: PromptRun = {
    done,
    finished: false,
    tracker: {
      id,
      onMessage(message) {
        const data = message.data ?? {};
        try {
          flush();
          if (message.type === 'progress' && data.node === samplerNode) step(data);
        } catch (error) {
          reject(error as Error);
          return;
        }
        if (message.type === 'executing' && data.node === null) end();
        else if (message.type === 'execution_error')
          end(
            new BackendError('ComfyUI failed while running the prompt', {
              code: BackendErrorCode.stream,
              details: `${String(data.node_type)} (node ${String(data.node_id)}): ${String(data.exception_type)}: ${String(data.exception_message)}`,
              retryable: true,
            }),
          );
        else if (message.type === 'execution_interrupted')
          end(
            new BackendError('The prompt was interrupted on the server', {
              code: BackendErrorCode.stream,
              details: `at node ${String(data.node_id)} (${String(data.node_type)})`,
              retryable: true,
            }),
          );
      },
      onPreview(bytes) {
        try {
          flush(bytes);
        } catch (error) {
          reject(error as Error);
        }
      },
      fail: (error) => reject(error),
    },
  };
  /** The prompt is over on the server (done, failed or interrupted there). */
  function end(error?: Error) {
    run.finished = true;
    if (error) reject(error);
    else resolve();
  }
  return run;
}

/**
 * The backend's one WebSocket (`/ws?clientId=`), reopened on demand, routing messages to the
 * prompts being tracked by `prompt_id`. Prompts are posted here too: this backend sends its own
 * `prompt_id` (ComfyUI takes it since 2025); a server that assigns another one answers it, and
 * the messages that arrived for it before that answer are kept and replayed.
 */
function createSocket(url: string, clientId: string, log: Logger | undefined) {
  const wsUrl = `${url.replace(/^http/, 'ws')}/ws?clientId=${encodeURIComponent(clientId)}`;
  let ws: WebSocket | undefined;
  let connecting: WebSocket | undefined;
  let opening: Promise<void> | undefined;
  const trackers = new Map<string, Tracker>();
  const early = new Map<string, Message[]>();
  let earlyCount = 0;
  let posting = 0;
  /** The prompt ComfyUI is executing (its preview frames carry no id). */
  let running: string | undefined;

  function onMessage(raw: WebSocket.RawData, isBinary: boolean) {
    const buffer = Array.isArray(raw) ? Buffer.concat(raw) : Buffer.from(raw as ArrayBuffer);
    if (isBinary) {
      if (buffer.length < 8 || buffer.readUInt32BE(0) !== PREVIEW_IMAGE) return;
      const tracker = running === undefined ? undefined : trackers.get(running);
      tracker?.onPreview(new Uint8Array(buffer.subarray(8)));
      return;
    }
    let message: Message;
    try {
      message = JSON.parse(buffer.toString('utf8')) as Message;
    } catch {
      log?.warn({ frame: buffer.toString('utf8').slice(0, 200) }, 'ComfyUI /ws: malformed frame ignored');
      return;
    }
    const id = message.data?.prompt_id;
    if (typeof id !== 'string') return;
    const ends =
      (message.type === 'executing' && message.data?.node === null) ||
      message.type === 'execution_error' ||
      message.type === 'execution_interrupted';
    if (message.type === 'execution_start' || (message.type === 'executing' && !ends)) running = id;
    const tracker = trackers.get(id);
    if (tracker) tracker.onMessage(message);
    else if (posting > 0 && earlyCount < EARLY_LIMIT) {
      early.set(id, [...(early.get(id) ?? []), message]);
      earlyCount += 1;
    }
    if (ends && running === id) running = undefined;
  }

  function open(): Promise<void> {
    if (ws?.readyState === WebSocket.OPEN) return Promise.resolve();
    opening ??= new Promise<void>((resolve, reject) => {
      const socket = new WebSocket(wsUrl);
      connecting = socket;
      let opened = false;
      const refuse = (error: BackendError) => {
        if (connecting === socket) connecting = undefined;
        opening = undefined;
        reject(error);
      };
      socket.on('unexpected-response', (_req, res) => {
        socket.terminate();
        refuse(
          new BackendError(`ComfyUI /ws: HTTP ${res.statusCode}`, {
            code: BackendErrorCode.http,
            details: res.statusMessage,
            retryable: (res.statusCode ?? 0) >= 500,
          }),
        );
      });
      socket.on('open', () => {
        opened = true;
        connecting = undefined;
        ws = socket;
        opening = undefined;
        resolve();
      });
      socket.on('message', onMessage);
      socket.on('error', (cause) => {
        if (!opened)
          refuse(
            new BackendError('ComfyUI /ws: the server is unreachable', {
              code: BackendErrorCode.unreachable,
              details: `${wsUrl}: ${cause.message}`,
              cause,
              retryable: true,
            }),
          );
      });
      socket.on('close', () => {
        if (ws !== socket) return;
        ws = undefined;
        running = undefined;
        for (const tracker of trackers.values())
          tracker.fail(
            new BackendError('ComfyUI /ws: the connection closed', {
              code: BackendErrorCode.stream,
              retryable: true,
            }),
          );
      });
    });
    return opening;
  }

  /** POST /prompt; the tracker receives the prompt's messages (from before the answer too). */
  async function post(
    graph: ComfyUiGraph,
    tracker: Tracker,
    signal: AbortSignal,
  ): Promise<{ prompt_id: string; node_errors?: Record<string, unknown> }> {
    if (ws?.readyState !== WebSocket.OPEN)
      throw new BackendError('ComfyUI /ws: the connection closed', {
        code: BackendErrorCode.stream,
        retryable: true,
      });
    const wanted = tracker.id;
    trackers.set(wanted, tracker);
    posting += 1;
    try {
      const body = { prompt: graph, client_id: clientId, prompt_id: wanted };
      const answer = await postPrompt(url, body, signal);
      if (answer.prompt_id !== wanted) {
        trackers.delete(wanted);
        tracker.id = answer.prompt_id;
        trackers.set(answer.prompt_id, tracker);
        for (const message of early.get(answer.prompt_id) ?? []) tracker.onMessage(message);
      }
      return answer;
    } catch (error) {
      trackers.delete(tracker.id);
      throw error;
    } finally {
      posting -= 1;
      if (posting === 0) {
        early.clear();
        earlyCount = 0;
      }
    }
  }

  return {
    open,
    post,
    untrack(id: string) {
      trackers.delete(id);
    },
    close() {
      const socket = ws;
      ws = undefined;
      connecting?.terminate();
      connecting = undefined;
      for (const tracker of trackers.values())
        tracker.fail(
          new BackendError('The ComfyUI backend was closed', { code: BackendErrorCode.notLoaded }),
        );
      trackers.clear();
      socket?.close();
    },
  };
}

/** POST /prompt, keeping ComfyUI's validation report (`node_errors`) in the error's details. */
async function postPrompt(
  url: string,
  body: unknown,
  signal: AbortSignal,
): Promise<{ prompt_id: string; node_errors?: Record<string, unknown> }> {
  const what = 'ComfyUI /prompt';
  let response: Response;
  try {
    response = await fetch(`${url}/prompt`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal,
    });
  } catch (cause) {
    if (signal.aborted) throw new InferenceAbortedError(signal.reason);
    throw new BackendError(`${what}: the server is unreachable`, {
      code: BackendErrorCode.unreachable,
      details: `${url}: ${cause instanceof Error ? cause.message : String(cause)}`,
      cause,
      retryable: true,
    });
  }
  const text = await response.text().catch((cause: unknown) => {
    if (signal.aborted) throw new InferenceAbortedError(signal.reason);
    throw new BackendError(`${what}: the answer broke`, {
      code: BackendErrorCode.stream,
      cause,
      retryable: true,
    });
  });
  let answer: { prompt_id?: unknown; node_errors?: Record<string, unknown>; error?: unknown } | undefined;
  try {
    answer = JSON.parse(text);
  } catch {}
  if (!response.ok) {
    const error = answer?.error as { message?: string; details?: string } | string | undefined;
    const message =
      typeof error === 'string' ? error : [error?.message, error?.details].filter(Boolean).join(': ');
    const nodes = nodeErrorsText(answer?.node_errors);
    throw new BackendError(`${what}: HTTP ${response.status}`, {
      code: BackendErrorCode.http,
      details:
        [message || serverMessage(text), nodes].filter(Boolean).join('; ') ||
        text.slice(0, 500) ||
        response.statusText,
      retryable: response.status === 429 || response.status >= 500,
    });
  }
  if (typeof answer?.prompt_id !== 'string')
    throw new BackendError(`${what}: no prompt_id in the answer`, {
      code: BackendErrorCode.protocol,
      details: text.slice(0, 500),
    });
  return answer as { prompt_id: string; node_errors?: Record<string, unknown> };
}

/** `{ "<node>": { class_type, errors: [{ message, details }] } }` as one line. */
function nodeErrorsText(nodeErrors: Record<string, unknown> | undefined): string {
  return Object.entries(nodeErrors ?? {})
    .map(([id, e]) => {
      const node = e as { class_type?: string; errors?: { message?: string; details?: string }[] };
      const errors = (node.errors ?? []).map((x) => [x.message, x.details].filter(Boolean).join(': '));
      return `node ${id} (${node.class_type ?? '?'}): ${errors.join(', ')}`;
    })
    .join('; ')
    .slice(0, 1000);
}

/** A combo input's choices: `[[choices…], {meta}]`, or `["COMBO", {options: [choices…]}]` (newer). */
function comboOptions(spec: unknown): string[] {
  if (!Array.isArray(spec)) return [];
  if (Array.isArray(spec[0])) return spec[0].map(String);
  const options = (spec[1] as { options?: unknown } | undefined)?.options;
  return spec[0] === 'COMBO' && Array.isArray(options) ? options.map(String) : [];
}

async function readBytes(response: HttpResponse, options: RequestOptions): Promise<Uint8Array> {
  try {
    return new Uint8Array(await response.arrayBuffer());
  } catch (cause) {
    if (options.signal?.aborted) throw new InferenceAbortedError(options.signal.reason);
    throw new BackendError(`${options.what}: the answer broke`, {
      code: BackendErrorCode.stream,
      cause,
      retryable: true,
    });
  }
}

// ── image helpers shared with the Automatic1111 backend ─────────────────────────────────────────
// (they belong in a backends/image.ts beside http.ts; kept here while that file is not ours to add)
