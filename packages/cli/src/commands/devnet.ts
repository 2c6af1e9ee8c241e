import { ChainError } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import { MODEL_PRESETS, type ModelPresetName } from '@aipg/inference';
import { defineCommand } from '../command.ts';
import { ADVERSARY_FATES, DEVNET_ADVERSARY_KINDS, type DevnetAdversaryKind } from '../devnet/red-team.ts';
import { ADVERSARY_LIES, type DevnetInfo, maxDevnetValidators, startDevnet } from '../devnet/start-devnet.ts';
import { CliError } from '../errors.ts';
import { table } from '../output.ts';

function portFlag(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65_535)
    throw new CliError(`invalid --${name} "${value}"`, 'USAGE', 'expected 0..65535 (0: any free port)');
  return n;
}

function positiveInt(name: string, value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1 || n > 64)
    throw new CliError(`invalid --${name} "${value}"`, 'USAGE', 'expected 1..64');
  return n;
}

function validatorsFlag(value: string | undefined, adversary: boolean): number | undefined {
  if (value === undefined) return undefined;
  const max = maxDevnetValidators(adversary);
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > max)
    throw new CliError(
      `invalid --validators "${value}"`,
      'USAGE',
      `expected 0..${max}: validators take anvil test accounts 4…${3 + max}${adversary ? ' (9 is the adversary)' : ''}`,
    );
  return n;
}

/** A busy port is the commonest start-up failure: say which one and how to pick another. */
function portInUse(error: unknown, ports: { port: number; rpcPort: number }): CliError | undefined {
  const text = `${(error as { code?: string })?.code ?? ''} ${error instanceof Error ? error.message : ''} ${
    (error as { details?: string })?.details ?? ''
  }`;
  if (!/EADDRINUSE|address already in use|in use/i.test(text)) return undefined;
  const chain = error instanceof ChainError;
  return new CliError(
    `the ${chain ? 'chain RPC' : 'gateway'} port ${chain ? ports.rpcPort : ports.port} is already in use`,
    'USAGE',
    `choose another with ${chain ? '--rpc-port' : '--port'} <n>, 0 picks a free one: npm start -- ${chain ? '--rpc-port' : '--port'} 0`,
  );
}

/** `s` as one shell word (single-quoted unless it is plainly safe). */
export function shellQuote(s: string): string {
  return /^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`;
}

/** `s` as a single-quoted TypeScript string literal. */
function tsString(s: string): string {
  return `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

/**
 * What `aipg devnet --confidential` prints after the usual facts: a loud banner (the TEE is simulated,
 * nothing is confidential, the anchors file a client must pass), the `aipg chat --confidential` line
 * and a ready-to-paste client snippet. Empty without the confidential tier.
 */
export function confidentialLines(net: DevnetInfo): string[] {
  const c = net.confidential;
  if (!c) return [];
  const bar = '!'.repeat(100);
  const premium = `${c.confidentialPremiumBps / 100}%`;
  return [
    bar,
    '!! CONFIDENTIAL TIER ON A SIMULATED TEE: NOTHING ON THIS DEVNET IS ACTUALLY CONFIDENTIAL',
    '!! The worker runs in no enclave: its TDX quotes and NVIDIA tokens are minted by this devnet under a',
    "!! DEVELOPMENT root (not Intel's, not NVIDIA's). The machine it runs on can read every prompt and",
    '!! answer, and anyone holding the root file can mint "valid" evidence:',
    `!!   ${c.rootFile}`,
    '!! Use it to try the flow, never for real secrets. A client must trust this anchors file (on this',
    "!! devnet only; never in production, where the default anchors are Intel's and NVIDIA's):",
    `!!   ${c.anchorsFile}`,
    `!! Confidential fees: the ordinary fee + ${premium} (confidentialPremiumBps ${c.confidentialPremiumBps}).`,
    bar,
    '',
    'Confidential chat from the command line (verifies the worker’s evidence, then encrypts to it):',
    [
      '  npx aipg chat --confidential',
      `--gateway ${shellQuote(net.gatewayUrl)}`,
      `--api-key ${shellQuote(net.apiKey)}`,
      `--model ${shellQuote(net.model.name)}`,
      `--tee-anchors ${shellQuote(c.anchorsFile)}`,
      "'Hello, grid!'",
    ].join(' '),
    '',
    'From TypeScript (the official openai client; @aipg/confidential and @aipg/tee are in this repository):',
    "  import { readFileSync } from 'node:fs';",
    "  import { confidentialFetch } from '@aipg/confidential';",
    "  import { parseAnchors } from '@aipg/tee';",
    "  import OpenAI from 'openai';",
    '',
    '  const client = new OpenAI({',
    `    baseURL: ${tsString(`${net.gatewayUrl}/v1`)},`,
    `    apiKey: ${tsString(net.apiKey)},`,
    `    fetch: confidentialFetch({ anchors: parseAnchors(readFileSync(${tsString(c.anchorsFile)}, 'utf8')) }),`,
    '  });',
    '  const chat = await client.chat.completions.create({',
    `    model: ${tsString(net.model.name)},`,
    "    messages: [{ role: 'user', content: 'Hello, grid!' }],",
    '    max_tokens: 32,',
    '  });',
    '  console.log(chat.choices[0]?.message.content, (chat as unknown as { grid: { fee: string } }).grid.fee);',
  ];
}

const KIND_WIDTH = Math.max(...DEVNET_ADVERSARY_KINDS.map((k) => k.length));

export const devnet = defineCommand({
  path: ['devnet'],
  summary:
    'run the whole network locally: chain, contracts, gateway, a llama.cpp worker, validators and a funded user',
  description: [
    'Starts anvil and deploys the Grid, generates the project’s own GGUF model and registers it with',
    'its sha256, starts a gateway on embedded PGlite and one worker on the llama.cpp backend (bonded',
    'with 1,000 test AIPG), bonds and starts the validators (10,000 test AIPG each; they re-execute',
    'audited jobs on the same model), funds a user (deposit + gateway approval) and creates an API',
    'key. Prints the API base URL, the key and a curl line, and writes the same facts to',
    '.aipg/devnet.json. Ctrl-C stops everything it started.',
    '',
    'Red team: --adversary <kind> adds a second, dishonest worker (test account 9), audits every job',
    'and sends a few requests a minute (every other one pinned to the adversary). A slashed kind is',
    'failed by the validators: each slash is printed as it lands on chain (bond before → after, the',
    'validators paid). A refused kind never gets that far: the gateway rejects its receipts itself',
    '(HTTP 502 invalid_receipt, nothing charged, nothing to slash). A harmless kind signs honest',
    'tokens and users read only the text the gateway renders from them. An overruled kind lies in the',
    'scores it signs for cross-checking validators (they run in cross-check mode, with a second honest',
    'worker to outvote it). dishonest-gateway starts no worker: the validators read evidence through a',
    'front that alters it, abstain and report the gateway on chain. The devnet says which it saw.',
    '',
    'Confidential tier: --confidential makes a SIMULATED TEE (once per --dir, kept across restarts in',
    '<dir>/tee: simulated-root.json, mode 0600, and anchors.json), has the gateway trust its anchors and',
    'the worker attest under it, so the worker also takes confidential (end-to-end encrypted) chat jobs.',
    'Its root is a development one: nothing is actually confidential. Clients pass the anchors file',
    '(aipg chat --confidential --tee-anchors <dir>/tee/anchors.json, or confidentialFetch({ anchors })).',
    ...DEVNET_ADVERSARY_KINDS.map(
      (k) => `  ${k.padEnd(KIND_WIDTH)} ${`(${ADVERSARY_FATES[k]})`.padEnd(11)} ${ADVERSARY_LIES[k]}`,
    ),
  ].join('\n'),
  options: {
    port: { type: 'string' },
    'rpc-port': { type: 'string' },
    dir: { type: 'string' },
    model: { type: 'string' },
    threads: { type: 'string' },
    concurrency: { type: 'string' },
    deposit: { type: 'string' },
    validators: { type: 'string' },
    adversary: { type: 'string' },
    confidential: { type: 'boolean' },
  },
  optionsHelp: [
    ['--port <n>', 'gateway HTTP port (default 8080; 0 picks a free one)'],
    ['--rpc-port <n>', 'anvil RPC port (default 8545; 0 picks a free one)'],
    ['--dir <path>', 'state folder: model, gateway database, devnet.json (default .aipg)'],
    [
      '--model <preset>',
      `generated model to serve: ${Object.keys(MODEL_PRESETS).join(', ')} (default small)`,
    ],
    ['--threads <n>', 'llama.cpp CPU threads of the worker (default 1)'],
    ['--concurrency <n>', 'jobs the worker runs at once (default 2)'],
    ['--deposit <amount>', 'test AIPG the user deposits for requests (default 1000)'],
    ['--validators <n>', 'validator nodes, test accounts 4… (default 3; 0 for none)'],
    [
      '--adversary <kind>',
      `a dishonest worker (or gateway), caught: ${DEVNET_ADVERSARY_KINDS.join(', ')} (devnet only)`,
    ],
    [
      '--confidential',
      'the confidential tier on a SIMULATED TEE (development root: nothing is actually confidential)',
    ],
  ],
  examples: [
    'aipg devnet',
    'aipg devnet --port 0 --rpc-port 0',
    'aipg devnet --adversary substitute',
    'aipg devnet --adversary truncate',
    'aipg devnet --confidential',
  ],
  async run({ flags, io, waitForShutdown }) {
    const model = flags.model as string | undefined;
    if (model !== undefined && !(model in MODEL_PRESETS))
      throw new CliError(
        `unknown --model "${model}"`,
        'USAGE',
        `expected one of ${Object.keys(MODEL_PRESETS).join(', ')}`,
      );
    const adversary = flags.adversary as string | undefined;
    if (adversary !== undefined && !(DEVNET_ADVERSARY_KINDS as readonly string[]).includes(adversary))
      throw new CliError(
        `unknown --adversary "${adversary}"`,
        'USAGE',
        `expected one of ${DEVNET_ADVERSARY_KINDS.join(', ')}`,
      );
    const validators = validatorsFlag(flags.validators as string | undefined, adversary !== undefined);
    const shutdown = waitForShutdown();
    const rpcPort = portFlag('rpc-port', flags['rpc-port'] as string | undefined, 8545);
    const port = portFlag('port', flags.port as string | undefined, 8080);
    const net = await startDevnet({
      dir: flags.dir as string | undefined,
      port,
      rpcPort,
      model: model as ModelPresetName | undefined,
      threads: positiveInt('threads', flags.threads as string | undefined),
      maxConcurrency: positiveInt('concurrency', flags.concurrency as string | undefined),
      payerDeposit: flags.deposit === undefined ? undefined : parseAipg(flags.deposit as string),
      validators,
      adversary: adversary as DevnetAdversaryKind | undefined,
      confidential: flags.confidential === true,
      io,
    }).catch((error: unknown) => {
      throw portInUse(error, { port, rpcPort }) ?? error;
    });
    try {
      const w = (line = '') => io.stdout.write(`${line}\n`);
      const curl = [
        `curl ${net.gatewayUrl}/v1/chat/completions`,
        `  -H "Authorization: Bearer ${net.apiKey}"`,
        '  -H "Content-Type: application/json"',
        `  -d '{"model":"${net.model.name}","messages":[{"role":"user","content":"Hello, grid!"}],"max_tokens":32}'`,
      ].join(' \\\n');
      const imageCurl = [
        `curl ${net.gatewayUrl}/v1/images/generations`,
        `  -H "Authorization: Bearer ${net.apiKey}"`,
        '  -H "Content-Type: application/json"',
        `  -d '{"model":"${net.imageModel.name}","prompt":"a lighthouse at dawn","size":"256x256","steps":8,"response_format":"url"}'`,
      ].join(' \\\n');
      w();
      w('AIPG devnet is up');
      w(
        table([
          ['API base URL', `${net.gatewayUrl}/v1`],
          ['API key', net.apiKey],
          ['dashboard', net.dashboardUrl],
          ['model', `${net.model.name} (${net.model.parameterCount.toLocaleString('en-US')} parameters)`],
          ['image model', `${net.imageModel.name} (embedded ONNX pipeline, same worker)`],
          ['RPC URL', `${net.rpcUrl} (chain ${net.chainId})`],
          ['Grid', net.contracts.grid],
          ['worker', net.accounts.worker],
          ...net.validators.map((v, i) => [i === 0 ? 'validators' : '', v] as [string, string]),
          ...(net.adversary
            ? [['adversary', `${net.adversary.address} (${net.adversary.kind})`] as [string, string]]
            : []),
          ['user (payer)', net.accounts.payer],
          ...(net.confidential
            ? [
                ['TEE', 'SIMULATED (development root): NOTHING IS ACTUALLY CONFIDENTIAL'] as [string, string],
                ['TEE anchors', net.confidential.anchorsFile] as [string, string],
              ]
            : []),
          ['facts for scripts', net.infoPath],
        ]),
      );
      w("(accounts are anvil's public test keys: never use them for real funds)");
      w();
      w('Try it:');
      w(curl);
      w();
      w('An image (the link serves it for an hour):');
      w(imageCurl);
      w();
      const confidential = confidentialLines(net);
      if (confidential.length) {
        for (const line of confidential) w(line);
        w();
      }
      if (net.adversary) {
        const audit = net.auditConfig;
        w(
          `Red team: every job is audited (${audit.validatorsPerAudit} validators, ${audit.commitWindow} s to commit, ${audit.revealWindow} s to reveal); ` +
            (net.adversary.kind === 'dishonest-gateway'
              ? 'a few requests a minute go through the gateway to the honest worker.'
              : `a few requests a minute go through the gateway, every other one to the ${net.adversary.kind} adversary.`),
        );
        const { address, kind } = net.adversary;
        const fate = ADVERSARY_FATES[kind];
        if (fate === 'slashed') w(`Watch for "✗ slashed ${address} (${kind})" below (a minute or two).`);
        else if (fate === 'refused')
          w(
            `The gateway refuses its receipts itself (nothing charged, nothing reaches the chain, nothing to slash): watch for "✗ refused by the gateway: ${kind}" below.`,
          );
        else if (fate === 'overruled')
          w(
            'Its own jobs are honest; it lies in the scores it signs for the cross-checking validators. One scorer never fails a worker: a second drawn scorer disagrees and the validator abstains, so no "✗ slashed" line ever names the honest worker.',
          );
        else if (fate === 'reported')
          w(
            `The validators fetch every job's evidence through the dishonest gateway, altered after the worker signed it: watch for "⚠ gateway … reported" below (they abstain and report it on chain; the worker is never slashed).`,
          );
        else
          w(
            `Its receipts are honest (audits pass) and users read only what the gateway renders from the signed token ids: watch for "✓ ${kind}" below.`,
          );
        w();
      }
      w('Press Ctrl-C to stop.');
      const signal = await shutdown;
      w(`${signal}: stopping the workers, validators, gateway and chain…`);
    } finally {
      await net.stop();
    }
    io.stdout.write('devnet stopped\n');
    return 0;
  },
});
