import { runWorkerStart, type WorkerFlags } from '@aipg/worker';
import { defineCommand } from '../command.ts';

/** Worker flags as `--kebab-case` strings; each maps to the camelCase key of `WorkerFlags`. */
const WORKER_FLAGS = [
  'config',
  'network',
  'gateway',
  'model',
  'backend',
  'gguf',
  'model-dir',
  'weights-hash',
  'backend-url',
  'backend-model',
  'max-concurrency',
  'threads',
  'gpu-layers',
  'context-size',
  'password-file',
  'metrics-port',
  'metrics-host',
  'log-level',
  'drain-timeout',
  'data-dir',
  'tee-simulated',
] as const;

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export const workerStart = defineCommand({
  path: ['worker', 'start'],
  summary: 'run a worker node: prove the bond, serve models, sign a receipt for every job',
  description: [
    'Connects to a gateway with the operator key (env AIPG_OPERATOR_KEY, or --keystore), proves the',
    'bond behind it on chain, checks each model against the ModelRegistry, and serves jobs until',
    'SIGTERM / Ctrl-C, which lets running jobs finish first (a second signal exits at once).',
    'Backends: llama-cpp (embedded, a GGUF file), ollama, openai (vLLM and other OpenAI-compatible',
    'servers). On public networks a GPU with at least 4 GB VRAM is required. See packages/worker/README.md.',
  ].join('\n'),
  options: Object.fromEntries(WORKER_FLAGS.map((f) => [f, { type: 'string' as const }])),
  optionsHelp: [
    ['--model <name> --gguf <file>', 'serve one model on the embedded llama.cpp backend'],
    ['--backend ollama|openai', 'serve it from a local Ollama / OpenAI-compatible server (--backend-url)'],
    ['--backend diffusion --model-dir <dir>', 'serve an image model on the embedded ONNX diffusion pipeline'],
    [
      '--backend comfyui|a1111',
      'serve an image model from ComfyUI / Automatic1111 (--backend-url, --backend-model <checkpoint>, --weights-hash)',
    ],
    ['--config <file>', 'JSON config: several models, each with its backend and concurrency'],
    ['--gateway <url>', 'the gateway (default ws://127.0.0.1:8080/v1/workers/connect)'],
    ['--network devnet|base|base-sepolia', 'which chain (default: from the deployment file)'],
    ['--max-concurrency <n>', 'jobs of the model at once (default 1)'],
    ['--threads <n>', 'llama.cpp CPU threads (always set it on small machines)'],
    ['--metrics-port <n>', 'Prometheus /metrics (0: any free port)'],
    ['--drain-timeout <s>', 'how long a shutdown waits for running jobs (default 600)'],
    [
      '--tee-simulated <file>',
      'devnet only: take confidential jobs in a SIMULATED TEE (a root `aipg devnet --confidential` writes)',
    ],
    ['--data-dir <dir>', 'keeps the highest receipt number signed per gateway across restarts'],
  ],
  examples: [
    'AIPG_OPERATOR_KEY=0x… aipg worker start --model aipg-small-llama --gguf .aipg/models/aipg-small-llama.gguf --threads 2',
    'AIPG_OPERATOR_KEY=0x… aipg worker start --config worker.json --network base --rpc-url https://mainnet.base.org',
  ],
  async run({ flags, io }) {
    const workerFlags: WorkerFlags = {
      rpcUrl: flags['rpc-url'] as string | undefined,
      deployment: flags.deployment as string | undefined,
      grid: flags.grid as string | undefined,
      keystore: flags.keystore as string | undefined,
    };
    for (const f of WORKER_FLAGS) {
      const v = flags[f];
      if (typeof v === 'string') (workerFlags as Record<string, unknown>)[camel(f)] = v;
    }
    return runWorkerStart(workerFlags, { stderr: io.stderr });
  },
});
