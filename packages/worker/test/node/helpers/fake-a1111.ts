/**
 * A local Automatic1111 / Forge `/sdapi/v1` API (modules/api/api.py, processing.py `Processed.js()`,
 * shared_state.py): `GET /sdapi/v1/sd-models` (`title` gains ` [shorthash]` and `sha256` appears once
 * the checkpoint has been loaded, as A1111 hashes on load), `/samplers`, `/schedulers` (404 on an older
 * server), `POST /sdapi/v1/txt2img` run one at a time (`queue_lock`) with the checkpoint of
 * `override_settings.sd_model_checkpoint`, image i of a batch on `seed + i` (`all_seeds`) with its own
 * noise, and the answer `{images: [base64 PNG], parameters, info: "<JSON>"}`; `GET /sdapi/v1/progress`
 * (the global `state`: job_count, sampling_step, sampling_steps, interrupted…, and `current_image`),
 * `POST /sdapi/v1/interrupt` (stops whatever runs). Errors have A1111's shape `{error, detail, body, errors}`.
 *
 * Steps advance in lockstep with progress polls: a job moves to its next step only after a poll has
 * seen the current one, so a poller sees every step (and tests need no timing). Knobs: `fault`,
 * `holdAtStep` (our job waits there until interrupted or released), `foreignJob` (another client's job
 * of that many steps runs before the next txt2img), `previews`, `onStep` (called at each step).
 */
import { createHash } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fakeImagePng } from './fake-comfyui.ts';

export type FakeA1111Checkpoint = { file: string; sha256: string };

export type FakeA1111Options = {
  checkpoints: FakeA1111Checkpoint[];
  /** Checkpoints whose sha256 is known before they are loaded (A1111's cache.json). Default none. */
  hashed?: string[];
  /** An A1111 before 1.9: no /schedulers, no `scheduler` field. */
  noSchedulers?: boolean;
};

export type FakeA1111Fault =
  /** The server runs (and reports in all_seeds) seed + 1 for every image. */
  | { kind: 'wrong-seed' }
  /** override_settings ignored: the checkpoint loaded before runs. */
  | { kind: 'ignore-override' }
  /** The grid image comes first, as when `return_grid` is on. */
  | { kind: 'extra-image' }
  | { kind: 'http-500'; path: string };

type Job = 'api' | 'foreign';

export type FakeA1111 = {
  url: string;
  fault: FakeA1111Fault | undefined;
  holdAtStep: number | undefined;
  foreignJob: { steps: number } | undefined;
  previews: boolean;
  onStep: ((job: Job, step: number) => void) | undefined;
  readonly requests: string[];
  readonly txt2img: Record<string, unknown>[];
  /** Every POST /sdapi/v1/interrupt: the job running then (undefined when idle) and its step. */
  readonly interrupts: { job: Job | undefined; step: number }[];
  /** Resolves at the next POST /sdapi/v1/interrupt. */
  nextInterrupt(): Promise<void>;
  release(): void;
  reset(): void;
  close(): Promise<void>;
};

export const FAKE_A1111_SAMPLERS: { name: string; aliases: string[]; options: Record<string, string> }[] = [
  { name: 'DPM++ 2M', aliases: ['k_dpmpp_2m'], options: { scheduler: 'karras' } },
  { name: 'Euler a', aliases: ['k_euler_a', 'k_euler_ancestral'], options: { uses_ensd: 'True' } },
  { name: 'Euler', aliases: ['k_euler'], options: {} },
  { name: 'DDIM', aliases: [], options: { default_eta_is_0: 'True', uses_ensd: 'True' } },
];
const SCHEDULERS = ['automatic', 'uniform', 'karras', 'exponential', 'sgm_uniform', 'simple'];

export async function startFakeA1111(options: FakeA1111Options): Promise<FakeA1111> {
  const hashed = new Set(options.hashed ?? []);
  const short = (c: FakeA1111Checkpoint) => c.sha256.slice(0, 10);
  const modelName = (c: FakeA1111Checkpoint) => c.file.replace(/\.[^.]+$/, '');
  const title = (c: FakeA1111Checkpoint) => (hashed.has(c.file) ? `${c.file} [${short(c)}]` : c.file);
  /** The checkpoint loaded now: the last one, until a job asks for another. */
  let loaded = options.checkpoints.at(-1)!;
  hashed.add(loaded.file);

  const idle = { job: '', job_count: 0, job_no: 0, sampling_step: 0, sampling_steps: 0 };
  let state = { skipped: false, interrupted: false, job_timestamp: '0', ...idle };
  let current: Job | undefined;
  let seen = false;
  let waiters: (() => void)[] = [];
  let held: (() => void) | undefined;
  let interruptWaiters: (() => void)[] = [];
  let lock: Promise<void> = Promise.resolve();
  let timestamp = 20261206000000;

  const fake: FakeA1111 = {
    url: '',
    fault: undefined,
    holdAtStep: undefined,
    foreignJob: undefined,
    previews: false,
    onStep: undefined,
    requests: [],
    txt2img: [],
    interrupts: [],
    nextInterrupt: () =>
      new Promise((resolve) => {
        interruptWaiters.push(resolve);
      }),
    release() {
      held?.();
    },
    reset() {
      fake.fault = undefined;
      fake.holdAtStep = undefined;
      fake.foreignJob = undefined;
      fake.previews = false;
      fake.onStep = undefined;
      held?.();
      for (const list of [fake.requests, fake.txt2img, fake.interrupts]) list.length = 0;
    },
    close: async () => {},
  };

  /** Resolves once a progress poll has seen the state as it is now. */
  const observed = () => (seen ? Promise.resolve() : new Promise<void>((resolve) => waiters.push(resolve)));
  const change = (next: Partial<typeof state>) => {
    state = { ...state, ...next };
    seen = false;
  };

  /** One job, step by step in lockstep with the polls; false when interrupted. */
  async function runJob(job: Job, steps: number): Promise<boolean> {
    current = job;
    change({
      job: job === 'api' ? 'scripts_txt2img' : 'task(0123456789abcdef)',
      job_count: 1,
      job_no: 0,
      sampling_step: 0,
      sampling_steps: steps,
      interrupted: false,
      skipped: false,
      job_timestamp: String(timestamp++),
    });
    let done = true;
    for (let step = 1; step <= steps; step++) {
      await observed();
      if (state.interrupted) {
        done = false;
        break;
      }
      change({ sampling_step: step });
      fake.onStep?.(job, step);
      if (job === 'api' && fake.holdAtStep === step)
        await new Promise<void>((resolve) => {
          held = resolve;
        });
    }
    if (done) await observed();
    current = undefined;
    change(idle);
    return done && !state.interrupted;
  }

  async function txt2img(res: ServerResponse, body: Record<string, unknown>) {
    const sampler = String(body.sampler_name ?? 'Euler');
    if (!FAKE_A1111_SAMPLERS.some((s) => s.name === sampler || s.aliases.includes(sampler)))
      return json(res, 404, { error: 'HTTPException', detail: 'Sampler not found', body: '', errors: '' });
    const wanted = (body.override_settings as { sd_model_checkpoint?: string } | undefined)
      ?.sd_model_checkpoint;
    const steps = Number(body.steps ?? 20);
    const width = Number(body.width ?? 512);
    const height = Number(body.height ?? 512);
    const batch = Number(body.batch_size ?? 1);
    let release!: () => void;
    const previous = lock;
    lock = new Promise((resolve) => {
      release = resolve;
    });
    await previous;
    try {
      if (fake.foreignJob) {
        const foreign = fake.foreignJob;
        fake.foreignJob = undefined;
        await runJob('foreign', foreign.steps);
      }
      if (wanted !== undefined && fake.fault?.kind !== 'ignore-override') {
        const found = options.checkpoints.find(
          (c) => title(c) === wanted || c.file === wanted || modelName(c) === wanted,
        );
        if (!found)
          return json(res, 500, {
            error: 'RuntimeError',
            detail: '',
            body: '',
            errors: `checkpoint ${wanted} not found`,
          });
        loaded = found;
        hashed.add(found.file);
      }
      await runJob('api', steps);
      const base = Number(body.seed ?? -1) + (fake.fault?.kind === 'wrong-seed' ? 1 : 0);
      const seeds = Array.from({ length: batch }, (_, i) => base + i);
      const prompt = String(body.prompt ?? '');
      const negative = String(body.negative_prompt ?? '');
      const images: string[] = [];
      for (const seed of seeds) {
        const png = await fakeImagePng(width, height, {
          model: loaded.sha256,
          prompt,
          negative,
          seed,
          steps,
          cfg: body.cfg_scale,
          sampler,
          scheduler: body.scheduler ?? 'automatic',
        });
        images.push(png.toString('base64'));
      }
      if (fake.fault?.kind === 'extra-image') images.unshift(images[0]!);
      const info = {
        prompt,
        all_prompts: seeds.map(() => prompt),
        negative_prompt: negative,
        all_negative_prompts: seeds.map(() => negative),
        seed: seeds[0],
        all_seeds: seeds,
        subseed: 1234,
        all_subseeds: seeds.map(() => 1234),
        subseed_strength: body.subseed_strength ?? 0,
        width,
        height,
        sampler_name: sampler,
        cfg_scale: body.cfg_scale,
        steps,
        batch_size: batch,
        restore_faces: false,
        face_restoration_model: null,
        sd_model_name: modelName(loaded),
        sd_model_hash: short(loaded),
        sd_vae_name: null,
        sd_vae_hash: null,
        seed_resize_from_w: -1,
        seed_resize_from_h: -1,
        denoising_strength: null,
        extra_generation_params: {},
        index_of_first_image: fake.fault?.kind === 'extra-image' ? 1 : 0,
        infotexts: seeds.map((s) => `${prompt}\nSteps: ${steps}, Sampler: ${sampler}, Seed: ${s}`),
        styles: [],
        job_timestamp: state.job_timestamp,
        clip_skip: 1,
        is_using_inpainting_conditioning: false,
        version: 'v1.10.1',
      };
      json(res, 200, { images, parameters: body, info: JSON.stringify(info) });
    } finally {
      release();
    }
  }

  const json = (res: ServerResponse, status: number, value: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json' }).end(JSON.stringify(value));

  async function handle(req: IncomingMessage, res: ServerResponse, raw: string) {
    const address = new URL(req.url ?? '/', 'http://localhost');
    const path = address.pathname;
    fake.requests.push(`${req.method} ${path}`);
    const fault = fake.fault;
    if (fault?.kind === 'http-500' && path === fault.path)
      return json(res, 500, {
        error: 'OutOfMemoryError',
        detail: '',
        body: '',
        errors: 'CUDA out of memory. Tried to allocate 1.50 GiB',
      });
    let body: Record<string, unknown> = {};
    if (raw.length > 0)
      try {
        body = JSON.parse(raw);
      } catch {
        return json(res, 422, { detail: [{ loc: ['body'], msg: 'invalid JSON', type: 'value_error' }] });
      }
    if (req.method === 'GET' && path === '/sdapi/v1/sd-models')
      return json(
        res,
        200,
        options.checkpoints.map((c) => ({
          title: title(c),
          model_name: modelName(c),
          hash: hashed.has(c.file) ? short(c) : null,
          sha256: hashed.has(c.file) ? c.sha256 : null,
          filename: `/stable-diffusion-webui/models/Stable-diffusion/${c.file}`,
          config: null,
        })),
      );
    if (req.method === 'GET' && path === '/sdapi/v1/samplers') return json(res, 200, FAKE_A1111_SAMPLERS);
    if (req.method === 'GET' && path === '/sdapi/v1/schedulers') {
      if (options.noSchedulers) return json(res, 404, { detail: 'Not Found' });
      return json(
        res,
        200,
        SCHEDULERS.map((name) => ({
          name,
          label: name[0]!.toUpperCase() + name.slice(1),
          aliases: null,
          default_rho: -1,
          need_inner_model: false,
        })),
      );
    }
    if (req.method === 'POST' && path === '/sdapi/v1/txt2img') {
      fake.txt2img.push(body);
      return txt2img(res, body);
    }
    if (req.method === 'GET' && path === '/sdapi/v1/progress') {
      const snapshot = { ...state };
      const preview =
        fake.previews && current && address.searchParams.get('skip_current_image') === 'false'
          ? (await fakeImagePng(8, 8, ['preview', snapshot.job_timestamp, snapshot.sampling_step])).toString(
              'base64',
            )
          : null;
      seen = true;
      const ready = waiters;
      waiters = [];
      for (const resolve of ready) resolve();
      const fraction =
        snapshot.job_count > 0 && snapshot.sampling_steps > 0
          ? snapshot.sampling_step / snapshot.sampling_steps
          : 0;
      return json(res, 200, {
        progress: fraction,
        eta_relative: 0,
        state: snapshot,
        current_image: preview,
        textinfo: null,
      });
    }
    if (req.method === 'POST' && path === '/sdapi/v1/interrupt') {
      fake.interrupts.push({ job: current, step: state.sampling_step });
      if (current) change({ interrupted: true });
      held?.();
      const ready = interruptWaiters;
      interruptWaiters = [];
      for (const resolve of ready) resolve();
      return res.writeHead(200).end();
    }
    json(res, 404, { detail: 'Not Found' });
  }

  const server = createServer((req, res) => {
    let raw = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      raw += chunk;
    });
    req.on('end', () => {
      handle(req, res, raw).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500);
        res.end(String(error));
      });
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = async () => {
    change({ interrupted: true });
    held?.();
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return fake;
}

/** A checkpoint's sha256 as A1111 reports it (lowercase hex), from a name. */
export const fakeSha256 = (name: string) => createHash('sha256').update(name).digest('hex');
