/**
 * A local ComfyUI that speaks its real wire protocol (server.py, execution.py, main.py's prompt worker):
 * `GET /object_info` (combo lists as `[[choices], {meta}]`, or `["COMBO", {options}]` like newer
 * servers), `POST /prompt` validated like `execution.validate_prompt` (400 `{error, node_errors}`),
 * a prompt queue run one prompt at a time, `/ws?clientId=` with ComfyUI's JSON messages (`status`,
 * `execution_start`, `execution_cached`, `executing`, `progress`, `executed`, `execution_success`,
 * `execution_error`, `execution_interrupted`) sent to the socket of the prompt's `client_id` or to
 * every socket when it has none, binary preview frames (`>I` event type 1, `>I` image type 2 = PNG,
 * bytes), history written before the final `executing {node: null}`, `GET /history/{id}`,
 * `GET /view`, `GET/POST /queue` and `POST /interrupt` (with `prompt_id`: only that prompt, as newer
 * servers do). Images are real PNGs whose pixels derive from everything that shapes them (checkpoint,
 * prompts, seed, steps, cfg, sampler, size), so a seed always gives the same bytes.
 *
 * Knobs steer tests: `fault`, `holdAtStep` (the running prompt waits there until interrupted or
 * released), `legacyIds` (a server before client-chosen prompt ids, which also runs the prompt before
 * answering the POST), `interleaveForeign` (a prompt without client_id, broadcast to every socket,
 * queued behind each of ours), `vaeProgress` (VAEDecode reports progress too), `previews`.
 */
import { createHash, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import sharp from 'sharp';
import { type WebSocket, WebSocketServer } from 'ws';

export type FakeComfyUiOptions = {
  checkpoints?: string[];
  samplers?: string[];
  schedulers?: string[];
  /** Newer ComfyUI's combo format: `["COMBO", {options: [...]}]`. */
  comboV2?: boolean;
};

export type FakeComfyUiFault =
  /** POST /prompt fails validation (400 with node_errors), whatever the graph. */
  | { kind: 'node-errors' }
  /** `execution_error` from the KSampler after this step (CUDA out of memory). */
  | { kind: 'execution-error'; atStep: number }
  /** HTTP 500 on this path (aiohttp's plain-text error page). */
  | { kind: 'http-500'; path: '/object_info' | '/prompt' | '/history' | '/view' }
  /** Every WebSocket is dropped after this step (the prompt goes on running). */
  | { kind: 'drop-socket'; atStep: number }
  /** The saved image is 8 pixels wider than the latent asked. */
  | { kind: 'wrong-size' }
  /** The server runs (and records in its history) seed + 1. */
  | { kind: 'wrong-seed' };

type Graph = Record<string, { class_type: string; inputs: Record<string, unknown> }>;
type Item = {
  number: number;
  id: string;
  graph: Graph;
  extra: { client_id?: string };
  outputs: string[];
  finished: Promise<void>;
  finish: () => void;
};
type ImageRef = { filename: string; subfolder: string; type: 'output' };

export type FakeComfyUi = {
  url: string;
  fault: FakeComfyUiFault | undefined;
  holdAtStep: number | undefined;
  legacyIds: boolean;
  interleaveForeign: boolean;
  vaeProgress: boolean;
  previews: boolean;
  /** Every POST /prompt body, valid or not. */
  readonly prompts: { prompt: Graph; client_id?: string; prompt_id?: string }[];
  /** Every POST /interrupt: its body and the prompt running when it came. */
  readonly interrupts: { body: unknown; running: string | undefined }[];
  /** Prompt ids removed with POST /queue {delete}. */
  readonly deleted: string[];
  /** "METHOD /path" of every HTTP request. */
  readonly requests: string[];
  /** Ids of the prompts run to the end, in order (foreign ones included). */
  readonly completed: string[];
  /** Resolves once this many prompts have been queued (valid POST /prompt) since the last reset. */
  waitForQueued(count: number): Promise<void>;
  /** Lets a held prompt go on. */
  release(): void;
  /** Knobs off, records emptied, the queue cleared; resolves once the running prompt (let go) has ended. */
  reset(): Promise<void>;
  close(): Promise<void>;
};

export const FAKE_CHECKPOINTS = ['aipg-tiny.safetensors', 'sd_xl_base_1.0.safetensors'];
const SAMPLERS = ['euler', 'euler_ancestral', 'heun', 'dpmpp_2m', 'ddim', 'uni_pc'];
const SCHEDULERS = ['normal', 'karras', 'exponential', 'sgm_uniform', 'simple', 'ddim_uniform'];

/** Deterministic pixels from everything that shapes an image, as a real PNG (sharp, no metadata). */
export async function fakeImagePng(width: number, height: number, parts: unknown): Promise<Buffer> {
  const digest = createHash('sha256').update(JSON.stringify(parts)).digest();
  let state = digest.readUInt32LE(0) | 1;
  const raw = Buffer.alloc(width * height * 3);
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) {
      state ^= state << 13;
      state ^= state >>> 17;
      state ^= state << 5;
      const o = 3 * (y * width + x);
      raw[o] = (digest[1]! + x * 2 + (state & 0x1f)) & 0xff;
      raw[o + 1] = (digest[2]! + y * 2 + ((state >>> 8) & 0x1f)) & 0xff;
      raw[o + 2] = (digest[3]! + ((state >>> 16) & 0x3f)) & 0xff;
    }
  return sharp(raw, { raw: { width, height, channels: 3 } })
    .png()
    .toBuffer();
}

export async function startFakeComfyUi(options: FakeComfyUiOptions = {}): Promise<FakeComfyUi> {
  const checkpoints = options.checkpoints ?? FAKE_CHECKPOINTS;
  const combo = (choices: string[]) =>
    options.comboV2 ? ['COMBO', { options: choices }] : [choices, { tooltip: '' }];
  const int = (min: number, max: number, def: number) => ['INT', { default: def, min, max }];
  const float = (min: number, max: number, def: number) => ['FLOAT', { default: def, min, max, step: 0.1 }];
  const classes: Record<
    string,
    { required: Record<string, unknown[]>; output: string[]; outputNode?: true }
  > = {
    CheckpointLoaderSimple: { required: { ckpt_name: combo(checkpoints) }, output: ['MODEL', 'CLIP', 'VAE'] },
    CLIPTextEncode: {
      required: { text: ['STRING', { multiline: true, dynamicPrompts: true }], clip: ['CLIP'] },
      output: ['CONDITIONING'],
    },
    EmptyLatentImage: {
      required: { width: int(16, 16384, 512), height: int(16, 16384, 512), batch_size: int(1, 4096, 1) },
      output: ['LATENT'],
    },
    KSampler: {
      required: {
        model: ['MODEL'],
        // ComfyUI says 0xffffffffffffffff, which JSON carries as 18446744073709552000.
        seed: int(0, 18446744073709552000, 0),
        steps: int(1, 10000, 20),
        cfg: float(0, 100, 8),
        sampler_name: combo(options.samplers ?? SAMPLERS),
        scheduler: combo(options.schedulers ?? SCHEDULERS),
        positive: ['CONDITIONING'],
        negative: ['CONDITIONING'],
        latent_image: ['LATENT'],
        denoise: float(0, 1, 1),
      },
      output: ['LATENT'],
    },
    VAEDecode: { required: { samples: ['LATENT'], vae: ['VAE'] }, output: ['IMAGE'] },
    SaveImage: {
      required: { images: ['IMAGE'], filename_prefix: ['STRING', { default: 'ComfyUI' }] },
      output: [],
      outputNode: true,
    },
    PreviewImage: { required: { images: ['IMAGE'] }, output: [], outputNode: true },
    LoraLoader: {
      required: {
        model: ['MODEL'],
        clip: ['CLIP'],
        lora_name: combo([]),
        strength_model: float(-100, 100, 1),
      },
      output: ['MODEL', 'CLIP'],
    },
  };
  const objectInfo = Object.fromEntries(
    Object.entries(classes).map(([name, c]) => [
      name,
      {
        input: { required: c.required },
        input_order: { required: Object.keys(c.required) },
        output: c.output,
        output_is_list: c.output.map(() => false),
        output_name: c.output,
        name,
        display_name: name,
        description: '',
        python_module: 'nodes',
        category: 'fake',
        output_node: c.outputNode === true,
      },
    ]),
  );

  const sockets = new Map<string, WebSocket>();
  const queue: Item[] = [];
  const history = new Map<string, unknown>();
  const files = new Map<string, Buffer>();
  let running: Item | undefined;
  let interrupted = false;
  let held: (() => void) | undefined;
  let number = 0;
  let fileCounter = 0;
  let queuedCount = 0;
  const queuedWaiters: { count: number; resolve: () => void }[] = [];

  const fake: FakeComfyUi = {
    url: '',
    fault: undefined,
    holdAtStep: undefined,
    legacyIds: false,
    interleaveForeign: false,
    vaeProgress: false,
    previews: false,
    prompts: [],
    interrupts: [],
    deleted: [],
    requests: [],
    completed: [],
    waitForQueued(count) {
      if (queuedCount >= count) return Promise.resolve();
      return new Promise((resolve) => queuedWaiters.push({ count, resolve }));
    },
    release() {
      held?.();
    },
    async reset() {
      queuedCount = 0;
      queue.length = 0;
      fake.fault = undefined;
      fake.holdAtStep = undefined;
      held?.();
      fake.legacyIds = false;
      fake.interleaveForeign = false;
      fake.vaeProgress = false;
      fake.previews = false;
      await running?.finished;
      for (const list of [fake.prompts, fake.interrupts, fake.deleted, fake.requests, fake.completed])
        list.length = 0;
    },
    close: async () => {},
  };

  const send = (type: string, data: unknown, sid: string | undefined) => {
    const frame = JSON.stringify({ type, data });
    if (sid === undefined) for (const ws of sockets.values()) ws.send(frame);
    else sockets.get(sid)?.send(frame);
  };
  const sendBinary = (bytes: Buffer, sid: string | undefined) => {
    if (sid === undefined) for (const ws of sockets.values()) ws.send(bytes);
    else sockets.get(sid)?.send(bytes);
  };
  const queueRemaining = () => queue.length + (running ? 1 : 0);
  const status = () =>
    send('status', { status: { exec_info: { queue_remaining: queueRemaining() } } }, undefined);
  const tick = () => new Promise<void>((resolve) => setImmediate(resolve));

  function validate(graph: unknown): { status: 400; body: unknown } | { outputs: string[] } {
    if (typeof graph !== 'object' || graph === null)
      return {
        status: 400,
        body: { error: { type: 'no_prompt', message: 'No prompt provided' }, node_errors: {} },
      };
    const nodes = graph as Graph;
    for (const [id, node] of Object.entries(nodes))
      if (!classes[node.class_type])
        return {
          status: 400,
          body: {
            error: {
              type: 'invalid_prompt',
              message: `Cannot execute because node ${node.class_type} does not exist.`,
              details: `Node ID '#${id}'`,
              extra_info: {},
            },
            node_errors: {},
          },
        };
    const outputs = Object.keys(nodes).filter((id) => classes[nodes[id]!.class_type]!.outputNode);
    if (outputs.length === 0)
      return {
        status: 400,
        body: {
          error: { type: 'prompt_no_outputs', message: 'Prompt has no outputs', details: '', extra_info: {} },
          node_errors: [],
        },
      };
    const nodeErrors: Record<string, unknown> = {};
    for (const [id, node] of Object.entries(nodes)) {
      const errors: { type: string; message: string; details: string; extra_info: unknown }[] = [];
      for (const [name, spec] of Object.entries(classes[node.class_type]!.required)) {
        const value = node.inputs?.[name];
        const error = (type: string, message: string, details: string) =>
          errors.push({ type, message, details, extra_info: { input_name: name } });
        if (value === undefined) error('required_input_missing', 'Required input is missing', name);
        else if (Array.isArray(value)) {
          if (!nodes[String(value[0])])
            error('exception_during_validation', 'Exception when validating node', name);
        } else if (Array.isArray(spec[0]) || spec[0] === 'COMBO') {
          const choices = (
            Array.isArray(spec[0]) ? spec[0] : (spec[1] as { options: string[] }).options
          ) as string[];
          if (!choices.includes(value as string))
            error(
              'value_not_in_list',
              'Value not in list',
              `${name}: '${String(value)}' not in ${JSON.stringify(choices)}`,
            );
        } else if (spec[0] === 'INT' || spec[0] === 'FLOAT') {
          const { min, max } = spec[1] as { min: number; max: number };
          if (typeof value !== 'number' || (spec[0] === 'INT' && !Number.isInteger(value)))
            error(
              'invalid_input_type',
              'Failed to convert an input value to a number',
              `${name}, ${String(value)}`,
            );
          else if (value < min)
            error('value_smaller_than_min', `Value ${value} smaller than min of ${min}`, name);
          else if (value > max)
            error('value_bigger_than_max', `Value ${value} bigger than max of ${max}`, name);
        } else if (spec[0] === 'STRING' && typeof value !== 'string')
          error('invalid_input_type', 'Not a string', name);
      }
      if (fake.fault?.kind === 'node-errors' && node.class_type === 'CheckpointLoaderSimple')
        errors.push({
          type: 'value_not_in_list',
          message: 'Value not in list',
          details: `ckpt_name: '${String(node.inputs.ckpt_name)}' not in (list of length 0)`,
          extra_info: { input_name: 'ckpt_name' },
        });
      if (errors.length > 0)
        nodeErrors[id] = { errors, dependent_outputs: outputs, class_type: node.class_type };
    }
    if (Object.keys(nodeErrors).length > 0)
      return {
        status: 400,
        body: {
          error: {
            type: 'prompt_outputs_failed_validation',
            message: 'Prompt outputs failed validation',
            details: '',
            extra_info: {},
          },
          node_errors: nodeErrors,
        },
      };
    return { outputs };
  }

  function enqueue(graph: Graph, id: string, clientId: string | undefined, outputs: string[]): Item {
    let finish!: () => void;
    const finished = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const item: Item = {
      number: number++,
      id,
      graph,
      extra: clientId === undefined ? {} : { client_id: clientId },
      outputs,
      finished,
      finish,
    };
    queue.push(item);
    status();
    return item;
  }

  function pump() {
    if (running || queue.length === 0) return;
    const item = queue.shift()!;
    running = item;
    execute(item)
      .catch(() => {})
      .finally(() => {
        running = undefined;
        item.finish();
        send('executing', { node: null, prompt_id: item.id }, item.extra.client_id);
        status();
        pump();
      });
  }

  /** Runs the nodes the output needs, in dependency order, as main.py's prompt worker would. */
  async function execute(item: Item): Promise<void> {
    interrupted = false;
    const sid = item.extra.client_id;
    // Faults hit the prompts of clients, not the foreign ones queued by `interleaveForeign`.
    const fault = sid === undefined ? undefined : fake.fault;
    const { id: promptId, graph } = item;
    const messages: [string, unknown][] = [];
    const record = (type: string, data: unknown) => {
      messages.push([type, data]);
      send(type, data, sid);
    };
    const finish = (statusStr: 'success' | 'error', outputs: Record<string, unknown>) =>
      history.set(promptId, {
        prompt: [item.number, promptId, graph, item.extra, item.outputs],
        outputs,
        status: { status_str: statusStr, completed: statusStr === 'success', messages },
        meta: {},
      });
    if (fault?.kind === 'wrong-seed')
      for (const node of Object.values(graph))
        if (node.class_type === 'KSampler') node.inputs.seed = Number(node.inputs.seed) + 1;
    record('execution_start', { prompt_id: promptId, timestamp: Date.now() });
    record('execution_cached', { nodes: [], prompt_id: promptId, timestamp: Date.now() });
    const order: string[] = [];
    const visit = (id: string) => {
      if (order.includes(id)) return;
      for (const value of Object.values(graph[id]!.inputs)) if (Array.isArray(value)) visit(String(value[0]));
      order.push(id);
    };
    for (const output of item.outputs) visit(output);
    const values: Record<string, unknown> = {};
    const outputs: Record<string, { images: ImageRef[] }> = {};
    const input = (id: string, name: string) => {
      const v = graph[id]!.inputs[name];
      return Array.isArray(v) ? values[String(v[0])] : v;
    };
    for (const id of order) {
      const node = graph[id]!;
      send('executing', { node: id, display_node: id, prompt_id: promptId }, sid);
      const stop = () => {
        const data = {
          prompt_id: promptId,
          node_id: id,
          node_type: node.class_type,
          executed: order.slice(0, order.indexOf(id)),
        };
        record('execution_interrupted', data);
        finish('error', {});
      };
      switch (node.class_type) {
        case 'CheckpointLoaderSimple':
          values[id] = node.inputs.ckpt_name;
          break;
        case 'CLIPTextEncode':
          values[id] = { text: node.inputs.text, ckpt: input(id, 'clip') };
          break;
        case 'EmptyLatentImage':
          values[id] = {
            width: node.inputs.width,
            height: node.inputs.height,
            batch: node.inputs.batch_size,
          };
          break;
        case 'KSampler': {
          const steps = Number(node.inputs.steps);
          for (let step = 1; step <= steps; step++) {
            if (interrupted) return stop();
            send('progress', { value: step, max: steps, prompt_id: promptId, node: id }, sid);
            if (fake.previews) {
              const header = Buffer.alloc(8);
              header.writeUInt32BE(1, 0);
              header.writeUInt32BE(2, 4);
              const preview = await fakeImagePng(8, 8, ['preview', promptId, step]);
              sendBinary(Buffer.concat([header, preview]), sid);
            }
            if (fault?.kind === 'execution-error' && fault.atStep === step) {
              record('execution_error', {
                prompt_id: promptId,
                node_id: id,
                node_type: 'KSampler',
                executed: order.slice(0, order.indexOf(id)),
                exception_message: 'CUDA out of memory. Tried to allocate 2.00 GiB',
                exception_type: 'torch.OutOfMemoryError',
                traceback: ['  File "execution.py", line 1, in execute\n'],
                current_inputs: {},
                current_outputs: {},
              });
              finish('error', {});
              return;
            }
            if (fault?.kind === 'drop-socket' && fault.atStep === step)
              for (const ws of sockets.values()) ws.terminate();
            if (fake.holdAtStep === step)
              await new Promise<void>((resolve) => {
                held = resolve;
              });
            held = undefined;
            await tick();
          }
          if (interrupted) return stop();
          values[id] = {
            model: input(id, 'model'),
            positive: input(id, 'positive'),
            negative: input(id, 'negative'),
            latent: input(id, 'latent_image'),
            seed: node.inputs.seed,
            steps,
            cfg: node.inputs.cfg,
            sampler: node.inputs.sampler_name,
            scheduler: node.inputs.scheduler,
            denoise: node.inputs.denoise,
          };
          break;
        }
        case 'VAEDecode':
          if (fake.vaeProgress) send('progress', { value: 1, max: 1, prompt_id: promptId, node: id }, sid);
          values[id] = { samples: input(id, 'samples'), vae: input(id, 'vae') };
          break;
        case 'SaveImage':
        case 'PreviewImage': {
          const decoded = input(id, 'images') as {
            samples: { latent: { width: number; height: number; batch: number } };
          };
          const { width, height, batch } = decoded.samples.latent;
          const images: ImageRef[] = [];
          for (let b = 0; b < batch; b++) {
            const png = await fakeImagePng(width + (fault?.kind === 'wrong-size' ? 8 : 0), height, [
              decoded,
              b,
            ]);
            const prefix = String(node.inputs.filename_prefix ?? 'ComfyUI');
            const filename = `${prefix}_${String(++fileCounter).padStart(5, '0')}_.png`;
            files.set(filename, png);
            images.push({ filename, subfolder: '', type: 'output' });
          }
          outputs[id] = { images };
          send('executed', { node: id, display_node: id, output: { images }, prompt_id: promptId }, sid);
          break;
        }
      }
    }
    record('execution_success', { prompt_id: promptId, timestamp: Date.now() });
    finish('success', outputs);
    fake.completed.push(promptId);
  }

  const json = (res: ServerResponse, status: number, value: unknown) =>
    res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' }).end(JSON.stringify(value));

  async function handle(req: IncomingMessage, res: ServerResponse, raw: string) {
    const address = new URL(req.url ?? '/', 'http://localhost');
    const path = address.pathname;
    fake.requests.push(`${req.method} ${path}`);
    const fault = fake.fault;
    if (fault?.kind === 'http-500' && (path === fault.path || path.startsWith(`${fault.path}/`)))
      return res
        .writeHead(500, { 'content-type': 'text/plain; charset=utf-8' })
        .end('500 Internal Server Error\n\nServer got itself in trouble');
    let body: Record<string, unknown> = {};
    if (raw.length > 0)
      try {
        body = JSON.parse(raw);
      } catch {
        return json(res, 400, { error: 'invalid JSON' });
      }
    if (req.method === 'GET' && path === '/object_info') return json(res, 200, objectInfo);
    if (req.method === 'POST' && path === '/prompt') {
      fake.prompts.push(body as FakeComfyUi['prompts'][number]);
      const checked = validate(body.prompt);
      if ('status' in checked) return json(res, checked.status, checked.body);
      const id = !fake.legacyIds && typeof body.prompt_id === 'string' ? body.prompt_id : randomUUID();
      const clientId = typeof body.client_id === 'string' ? body.client_id : undefined;
      const item = enqueue(structuredClone(body.prompt as Graph), id, clientId, checked.outputs);
      queuedCount += 1;
      for (const w of queuedWaiters.filter((w) => queuedCount >= w.count)) {
        queuedWaiters.splice(queuedWaiters.indexOf(w), 1);
        w.resolve();
      }
      if (fake.interleaveForeign) {
        const foreign = structuredClone(body.prompt as Graph);
        for (const node of Object.values(foreign))
          if (node.class_type === 'KSampler') node.inputs.seed = Number(node.inputs.seed) + 1000;
        enqueue(foreign, randomUUID(), undefined, checked.outputs);
      }
      pump();
      // An older server: its own id, and (its executor is another thread) the run may end first.
      if (fake.legacyIds) await item.finished;
      return json(res, 200, { prompt_id: id, number: item.number, node_errors: {} });
    }
    if (req.method === 'GET' && path.startsWith('/history/')) {
      const id = decodeURIComponent(path.slice('/history/'.length));
      const entry = history.get(id);
      return json(res, 200, entry ? { [id]: entry } : {});
    }
    if (req.method === 'GET' && path === '/view') {
      const png = files.get(address.searchParams.get('filename') ?? '');
      if (!png || address.searchParams.get('type') !== 'output') return res.writeHead(404).end();
      return res.writeHead(200, { 'content-type': 'image/png' }).end(png);
    }
    const entry = (i: Item) => [i.number, i.id, i.graph, i.extra, i.outputs];
    if (req.method === 'GET' && path === '/queue')
      return json(res, 200, {
        queue_running: running ? [entry(running)] : [],
        queue_pending: queue.map(entry),
      });
    if (req.method === 'POST' && path === '/queue') {
      if (body.clear === true) queue.length = 0;
      for (const id of (body.delete as string[] | undefined) ?? []) {
        const i = queue.findIndex((q) => q.id === id);
        if (i >= 0) {
          queue.splice(i, 1);
          fake.deleted.push(id);
        }
      }
      return res.writeHead(200).end();
    }
    if (req.method === 'POST' && path === '/interrupt') {
      fake.interrupts.push({ body, running: running?.id });
      const target = body.prompt_id;
      if (running && (target === undefined || target === running.id)) {
        interrupted = true;
        held?.();
      }
      return res.writeHead(200).end();
    }
    res.writeHead(404, { 'content-type': 'text/plain' }).end('404: Not Found');
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
  const wss = new WebSocketServer({ noServer: true });
  server.on('upgrade', (req, socket, head) => {
    const address = new URL(req.url ?? '/', 'http://localhost');
    if (address.pathname !== '/ws') {
      socket.end('HTTP/1.1 404 Not Found\r\n\r\n');
      return;
    }
    const sid = address.searchParams.get('clientId') ?? randomUUID();
    wss.handleUpgrade(req, socket, head, (ws) => {
      sockets.set(sid, ws);
      ws.on('close', () => {
        if (sockets.get(sid) === ws) sockets.delete(sid);
      });
      ws.send(
        JSON.stringify({
          type: 'status',
          data: { status: { exec_info: { queue_remaining: queueRemaining() } }, sid },
        }),
      );
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  fake.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  fake.close = async () => {
    interrupted = true;
    held?.();
    for (const ws of sockets.values()) ws.terminate();
    await new Promise<void>((resolve) => wss.close(() => resolve()));
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return fake;
}
