import { runValidatorStart, type ValidatorFlags } from '@aipg/validator';
import { defineCommand } from '../command.ts';

/** Validator flags as `--kebab-case` strings; each maps to the camelCase key of `ValidatorFlags`. */
const VALIDATOR_FLAGS = [
  'network',
  'gateway',
  'mode',
  'gguf',
  'model-dir',
  'presets',
  'threads',
  'gpu-layers',
  'context-size',
  'data-dir',
  'poll-interval',
  'log-range',
  'confirmations',
  'finalize',
  'withdraw-min',
  'password-file',
  'metrics-port',
  'metrics-host',
  'log-level',
  'tee-anchors',
] as const;

const camel = (s: string) => s.replace(/-([a-z])/g, (_, c: string) => c.toUpperCase());

export const validatorStart = defineCommand({
  path: ['validator', 'start'],
  summary:
    'run a validator node: audit settled jobs, commit and reveal votes on chain, earn for catching dishonest workers',
  description: [
    'Proves the validator bond behind the operator key (env AIPG_OPERATOR_KEY, or --keystore), follows',
    'settled batches, fixes their audit randomness, and for every receipt it is assigned fetches the job',
    'from the gateway, re-scores it in one teacher-forced pass and commits a hidden PASS or FAIL (its salt',
    'saved first), reveals it after the commit deadline (also after a restart: a commitment never revealed',
    'is slashed); it finalizes audits past their reveal window and withdraws its rewards. --mode reexecute',
    '(default: the model runs here) or crosscheck (another bonded worker re-scores it through the gateway). See packages/validator/README.md.',
  ].join('\n'),
  options: Object.fromEntries(VALIDATOR_FLAGS.map((f) => [f, { type: 'string' as const }])),
  optionsHelp: [
    ['--gateway <url>', 'the gateway whose batches to audit (several: comma-separated)'],
    ['--mode reexecute|crosscheck', 're-score on this machine, or through another worker (no GPU needed)'],
    ['--gguf <file>', 'reexecute: the model file(s); the sha256 must match the registry'],
    ['--data-dir <path>', 'where progress is kept across restarts'],
    ['--threads <n>', 'llama.cpp CPU threads (always set it on small machines)'],
    ['--metrics-port <n>', 'Prometheus /metrics (0: any free port)'],
    [
      '--tee-anchors <file>',
      "roots confidential receipts' TEE evidence must verify under (default: Intel's and NVIDIA's)",
    ],
  ],
  examples: [
    'AIPG_OPERATOR_KEY=0x… aipg validator start --gateway http://127.0.0.1:8080 --gguf .aipg/models/aipg-small-llama.gguf',
    'AIPG_OPERATOR_KEY=0x… aipg validator start --gateway https://gw.example --mode crosscheck --network base',
  ],
  async run({ flags, io }) {
    const validatorFlags: ValidatorFlags = {
      rpcUrl: flags['rpc-url'] as string | undefined,
      deployment: flags.deployment as string | undefined,
      grid: flags.grid as string | undefined,
      keystore: flags.keystore as string | undefined,
    };
    for (const f of VALIDATOR_FLAGS) {
      const v = flags[f];
      if (typeof v === 'string') (validatorFlags as Record<string, unknown>)[camel(f)] = v;
    }
    return runValidatorStart(validatorFlags, { stderr: io.stderr });
  },
});
