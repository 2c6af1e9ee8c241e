import { readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { ConfidentialError, confidentialFetch } from '@aipg/confidential';
import { PRODUCTION_ANCHORS, parseAnchors, type TrustAnchors } from '@aipg/tee';
import OpenAI from 'openai';
import { defineCommand } from '../command.ts';
import type { DevnetInfo } from '../devnet/start-devnet.ts';
import { CliError } from '../errors.ts';
import { aipg, formatTime } from '../output.ts';

/** The `grid` object the gateway puts on a completion's last plain event. */
type GridInfo = {
  job_id?: string;
  worker?: string | null;
  fee_wei?: string;
  confidential?: boolean;
};

/** Where the chat's defaults came from, for the error hints. */
type Target = {
  baseURL: string;
  apiKey: string;
  model: string;
  /** The local devnet's facts, when the gateway is the devnet's (then it supplied the defaults). */
  devnet: (DevnetInfo & { path: string }) | undefined;
};

/**
 * `devnet.json` next to the deployment file (`.aipg/` by default: what `aipg devnet` writes), or
 * undefined when there is none.
 */
async function readDevnetInfo(deploymentPath: string): Promise<(DevnetInfo & { path: string }) | undefined> {
  const path = join(dirname(deploymentPath), 'devnet.json');
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new CliError(`cannot read ${path}`, 'CONFIG', (error as Error).message);
  }
  try {
    const info = JSON.parse(text) as DevnetInfo;
    if (typeof info?.gatewayUrl !== 'string') throw new Error('no gatewayUrl');
    return { ...info, path };
  } catch (error) {
    throw new CliError(
      `${path} is not a devnet's facts file`,
      'CONFIG',
      `${(error as Error).message}; pass --gateway, --api-key and --model`,
    );
  }
}

/** `http://host:port[/v1]` as the API base URL `…/v1`. */
function apiBase(url: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    parsed = new URL('invalid:');
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:')
    throw new CliError(
      `invalid gateway URL "${url}"`,
      'USAGE',
      'expected http(s)://host[:port], the gateway’s HTTP API (not its worker WebSocket)',
    );
  const base = url.replace(/\/+$/, '');
  return base.endsWith('/v1') ? base : `${base}/v1`;
}

function sameGateway(a: string, b: string): boolean {
  try {
    return apiBase(a) === apiBase(b);
  } catch {
    return false;
  }
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(n) || n < 1)
    throw new CliError(`invalid --${name} "${value}"`, 'USAGE', 'expected a positive integer');
  return n;
}

function temperatureFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (value.trim() === '' || !Number.isFinite(n) || n < 0 || n > 2)
    throw new CliError(`invalid --temperature "${value}"`, 'USAGE', 'expected 0..2');
  return n;
}

async function readAnchorsFile(path: string): Promise<TrustAnchors> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    const missing = (error as NodeJS.ErrnoException).code === 'ENOENT';
    throw new CliError(
      missing ? `TEE anchors file ${path} not found` : `cannot read the TEE anchors file ${path}`,
      'CONFIG',
      missing ? 'a devnet started with --confidential writes <dir>/tee/anchors.json' : undefined,
    );
  }
  try {
    return parseAnchors(text);
  } catch (error) {
    throw new CliError(`invalid TEE anchors file ${path}`, 'CONFIG', (error as Error).message);
  }
}

/** The message: the argument, else all of stdin. */
async function readMessage(arg: string | undefined, stdin: AsyncIterable<string | Uint8Array> | undefined) {
  if (arg !== undefined) return arg;
  if (!stdin) throw new CliError('no message', 'USAGE', 'pass it as the argument: aipg chat "Hello, grid!"');
  const chunks: Buffer[] = [];
  for await (const chunk of stdin)
    chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : Buffer.from(chunk));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}

/**
 * One line for a failed chat (never the prompt or the answer). The `openai` client wraps what the
 * confidential fetch throws in an `APIConnectionError` whose `cause` is the `ConfidentialError`; in a
 * streamed answer it surfaces as is.
 */
function chatError(error: unknown, target: Target, anchorsSource: string | undefined): unknown {
  const cause = (error as { cause?: unknown })?.cause;
  const confidential =
    error instanceof ConfidentialError ? error : cause instanceof ConfidentialError ? cause : undefined;
  const devnetHint = target.devnet
    ? target.devnet.confidential
      ? `the devnet's workers verify only under ${target.devnet.confidential.anchorsFile}`
      : 'this devnet has no confidential tier: restart it with `aipg devnet --confidential`'
    : 'a devnet’s simulated workers verify only under its anchors: --tee-anchors <devnet dir>/tee/anchors.json';
  if (confidential) {
    switch (confidential.code) {
      case 'verification_failed':
        return new CliError(
          `confidential request NOT sent: no worker of ${target.model} presents TEE evidence that verifies under ${anchorsSource}: ${confidential.failures
            .map((f) => `${f.worker} ${f.code}`)
            .join(', ')}`,
          'CONFIDENTIAL',
          `nothing was sent; ${devnetHint}`,
        );
      case 'no_attested_worker':
        return new CliError(
          `confidential request NOT sent: the gateway lists no attested worker for ${target.model}`,
          'CONFIDENTIAL',
          target.devnet && !target.devnet.confidential
            ? 'this devnet has no confidential tier: restart it with `aipg devnet --confidential`'
            : 'no worker serving the model runs in a TEE the gateway verified',
        );
      default:
        return new CliError(
          `the confidential answer was refused (${confidential.code})`,
          'CONFIDENTIAL',
          confidential.message.replace(/^[a-z_]+: /, ''),
        );
    }
  }
  if (error instanceof OpenAI.APIConnectionError) {
    // undici: TypeError('fetch failed') caused by the socket error (ECONNREFUSED, ENOTFOUND…).
    const reason = (cause as { cause?: { code?: unknown } } | undefined)?.cause?.code;
    const why = typeof reason === 'string' ? reason : cause instanceof Error ? cause.message : undefined;
    return new CliError(
      `cannot reach the gateway at ${target.baseURL}${why ? ` (${why})` : ''}`,
      'GATEWAY',
      target.devnet ? `is \`aipg devnet\` still running? The URL came from ${target.devnet.path}` : undefined,
    );
  }
  if (error instanceof OpenAI.APIError) {
    const body = error.error as { message?: unknown; code?: unknown } | undefined;
    const message = typeof body?.message === 'string' ? body.message : error.message;
    const code = typeof body?.code === 'string' ? ` ${body.code}` : '';
    return new CliError(
      `the gateway refused the request (${error.status ?? 'error'}${code}): ${message}`,
      'GATEWAY',
    );
  }
  return error;
}

export const chat = defineCommand({
  path: ['chat'],
  usage: '[message]',
  summary:
    'send one chat message through a gateway and stream the answer (--confidential: encrypted to a TEE)',
  description: [
    'Sends one user message (the argument, or stdin when absent) to the gateway’s',
    '/v1/chat/completions with the official openai client and streams the answer to stdout. The fee,',
    'worker, token counts and job id from the answer’s `grid` object go to stderr.',
    '',
    '--confidential: the request is end to end encrypted (docs/confidential.md). Before sending, the',
    'client challenges the gateway for the model’s attested workers, verifies their TEE evidence itself',
    'under its trust anchors (default: Intel’s SGX root and NVIDIA NRAS; --tee-anchors <file> for',
    'others, e.g. a devnet’s simulated TEE) and encrypts to a worker that verifies. If none does, it',
    'sends nothing and exits 1 naming each worker’s failure. The gateway only relays ciphertext; the fee',
    'carries the on-chain confidential premium.',
    '',
    'Defaults: --gateway from env AIPG_GATEWAY_URL, --api-key from env AIPG_API_KEY. With a local',
    'devnet (devnet.json next to the deployment file, .aipg/ by default) whose gateway this is, the',
    'gateway, API key, model and (with --confidential) its simulated TEE anchors come from it.',
  ].join('\n'),
  options: {
    gateway: { type: 'string' },
    'api-key': { type: 'string' },
    model: { type: 'string' },
    confidential: { type: 'boolean' },
    'tee-anchors': { type: 'string' },
    'max-tokens': { type: 'string' },
    temperature: { type: 'string' },
  },
  optionsHelp: [
    [
      '--gateway <url>',
      'the gateway’s HTTP API, http(s)://host[:port] (env AIPG_GATEWAY_URL; default: the devnet’s)',
    ],
    ['--api-key <key>', 'API key (env AIPG_API_KEY; default: the devnet’s)'],
    ['--model <name>', 'the model (default: the devnet’s chat model)'],
    ['--confidential', 'end-to-end encrypted to a worker whose TEE evidence verifies (premium fee)'],
    [
      '--tee-anchors <file>',
      'trust anchors for --confidential (default: Intel + NVIDIA; the devnet’s <dir>/tee/anchors.json for its gateway)',
    ],
    ['--max-tokens <n>', 'most tokens to generate (default: the gateway’s)'],
    ['--temperature <t>', 'sampling temperature, 0..2 (default: the gateway’s)'],
  ],
  examples: [
    'aipg chat "Hello, grid!"                      # against the local devnet (.aipg/devnet.json)',
    'echo "Hello, grid!" | aipg chat --gateway http://127.0.0.1:8080 --api-key aipg-… --model aipg-tiny-llama',
    'aipg chat --confidential --tee-anchors .aipg/tee/anchors.json --max-tokens 64 "my secret question"',
  ],
  positionals: { min: 0, max: 1 },
  async run({ args, flags, config, io }) {
    const confidential = flags.confidential === true;
    const anchorsPath = flags['tee-anchors'] as string | undefined;
    if (anchorsPath !== undefined && !confidential)
      throw new CliError('--tee-anchors needs --confidential', 'USAGE', 'run aipg chat --help');
    const maxTokens = positiveInt('max-tokens', flags['max-tokens'] as string | undefined);
    const temperature = temperatureFlag(flags.temperature as string | undefined);

    const gatewayFlag = (flags.gateway as string | undefined) ?? config.gatewayUrl;
    const apiKeyFlag = (flags['api-key'] as string | undefined) ?? config.apiKey;
    const modelFlag = flags.model as string | undefined;
    // The devnet's facts fill in only what is missing, and only for the devnet's own gateway.
    const needsDefaults =
      gatewayFlag === undefined ||
      apiKeyFlag === undefined ||
      modelFlag === undefined ||
      (confidential && anchorsPath === undefined);
    const local = needsDefaults ? await readDevnetInfo(config.deploymentPath) : undefined;
    const devnet =
      local && (gatewayFlag === undefined || sameGateway(gatewayFlag, local.gatewayUrl)) ? local : undefined;
    const gateway = gatewayFlag ?? devnet?.gatewayUrl;
    if (gateway === undefined)
      throw new CliError(
        'no gateway',
        'USAGE',
        'pass --gateway <url> or set AIPG_GATEWAY_URL; or run `aipg devnet` in this folder: it writes .aipg/devnet.json',
      );
    const apiKey = apiKeyFlag ?? devnet?.apiKey;
    if (apiKey === undefined)
      throw new CliError('no API key', 'CONFIG', 'pass --api-key <key> or set AIPG_API_KEY');
    const model = modelFlag ?? devnet?.model.name;
    if (model === undefined)
      throw new CliError('no model', 'USAGE', 'pass --model <name> (GET /v1/models lists them)');
    const target: Target = { baseURL: apiBase(gateway), apiKey, model, devnet };

    let anchors: TrustAnchors | undefined;
    let anchorsSource: string | undefined;
    if (confidential) {
      if (anchorsPath !== undefined) {
        anchors = await readAnchorsFile(anchorsPath);
        anchorsSource = anchorsPath;
      } else if (devnet?.confidential) {
        anchors = await readAnchorsFile(devnet.confidential.anchorsFile);
        anchorsSource = devnet.confidential.anchorsFile;
        io.stderr.write(
          `⚠ trusting the devnet's SIMULATED TEE anchors ${anchorsSource}: nothing on it is actually confidential\n`,
        );
      } else {
        anchors = PRODUCTION_ANCHORS;
        anchorsSource = 'the production anchors (Intel SGX root, NVIDIA NRAS)';
      }
    }

    if (args[0] === undefined && io.stdin?.isTTY)
      io.stderr.write('Type the message, then Ctrl-D on an empty line:\n');
    const message = await readMessage(args[0], io.stdin);
    if (message.trim() === '')
      throw new CliError('empty message', 'USAGE', 'pass it as the argument or on stdin');

    // The confidential premium, as the gateway's attestation listing states it (for the fee line).
    let premiumBps: number | undefined;
    const listingFetch: typeof fetch = async (input, init) => {
      const response = await fetch(input, init);
      const url = input instanceof Request ? input.url : String(input);
      if (response.ok && new URL(url).pathname.endsWith('/attestation'))
        await response
          .clone()
          .json()
          .then((body: unknown) => {
            const bps = (body as { confidential_premium_bps?: unknown } | null)?.confidential_premium_bps;
            if (typeof bps === 'number') premiumBps = bps;
          })
          .catch(() => undefined);
      return response;
    };
    const client = new OpenAI({
      baseURL: target.baseURL,
      apiKey,
      maxRetries: 0,
      ...(anchors
        ? {
            fetch: confidentialFetch({
              anchors,
              fetch: listingFetch,
              onAttested: (v) =>
                io.stderr.write(
                  `verified the TEE evidence of worker ${v.worker} (TCB ${v.tcbStatus}${v.simulated ? ', labelled SIMULATED' : ''}, until ${formatTime(v.expiresAt)}): encrypting to it\n`,
                ),
            }),
          }
        : {}),
    });

    let printed = '';
    let grid: GridInfo | undefined;
    let usage: OpenAI.CompletionUsage | undefined;
    let finish: string | undefined;
    try {
      const stream = await client.chat.completions.create({
        model,
        messages: [{ role: 'user', content: message }],
        stream: true,
        ...(maxTokens !== undefined ? { max_tokens: maxTokens } : {}),
        ...(temperature !== undefined ? { temperature } : {}),
      });
      for await (const chunk of stream) {
        const text = chunk.choices[0]?.delta?.content;
        if (text) {
          io.stdout.write(text);
          printed += text;
        }
        finish = chunk.choices[0]?.finish_reason ?? finish;
        if (chunk.usage) usage = chunk.usage;
        grid = (chunk as unknown as { grid?: GridInfo }).grid ?? grid;
      }
    } catch (error) {
      if (printed && !printed.endsWith('\n')) io.stdout.write('\n');
      throw chatError(error, target, anchorsSource);
    }
    if (printed && !printed.endsWith('\n')) io.stdout.write('\n');

    const parts: string[] = [];
    if (grid?.fee_wei !== undefined) {
      const premium =
        grid.confidential === true
          ? premiumBps !== undefined
            ? `, confidential: includes the ${premiumBps / 100}% premium`
            : ', confidential: premium included'
          : '';
      parts.push(`fee ${aipg(BigInt(grid.fee_wei))} (${grid.fee_wei} wei${premium})`);
    }
    if (grid?.worker) parts.push(`worker ${grid.worker}`);
    if (usage) parts.push(`tokens ${usage.prompt_tokens} in, ${usage.completion_tokens} out`);
    if (finish) parts.push(`finish ${finish}`);
    if (grid?.job_id) parts.push(`job ${grid.job_id}`);
    io.stderr.write(`${parts.length ? parts.join(' · ') : 'no grid information in the answer'}\n`);
    return 0;
  },
});
