/**
 * `aipg devnet --confidential` and `aipg chat [--confidential]`: a devnet (in-process, as devnet.test.ts
 * starts it) whose one worker attests under a simulated TEE the devnet keeps in `<dir>/tee`, and the real
 * CLI spawned as a user runs it (as cli.test.ts does). The answer is decrypted by the CLI only; a client
 * with other anchors sends nothing.
 */
import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { confidentialFetch } from '@aipg/confidential';
import { computeTextFee, parseAipg } from '@aipg/core';
import { parseAnchors, SimulatedTee, serializeAnchors } from '@aipg/tee';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { confidentialLines } from '../src/commands/devnet.ts';
import { ensureDevnetTee } from '../src/devnet/simulated-tee.ts';
import { type StartDevnetReturnType, startDevnet } from '../src/devnet/start-devnet.ts';

const entry = fileURLToPath(new URL('../bin/aipg.js', import.meta.url));
/** The devnet's rates (start-devnet.ts). */
const RATES = { inputPerMTokens: parseAipg('0.5'), outputPerMTokens: parseAipg('1.5'), perMegapixelStep: 0n };
/** A prompt no other test sends: found in the CLI's diagnostics, it leaked. */
const SECRET = 'walrus-onyx-4417 is my locker code';

let root: string;
let dir: string;
let net: StartDevnetReturnType;

type Result = { code: number | null; stdout: string; stderr: string };

/** Runs the real CLI (the `npx aipg` launcher) in `cwd` with only PATH and HOME from the environment. */
function aipg(args: string[], { cwd = root, input }: { cwd?: string; input?: string } = {}): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: [input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout!.on('data', (d) => (stdout += d));
    child.stderr!.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    if (input !== undefined) child.stdin!.end(input);
  });
}

const jobs = async () =>
  (await net.gateway.db.query<{ n: number }>('SELECT count(*)::int AS n FROM jobs'))[0]!.n;

/** `fee … (<wei> wei…)` and `tokens <in> in, <out> out` of the CLI's summary line. */
function summary(stderr: string) {
  const wei = /fee [\d.,]+ AIPG \((\d+) wei/.exec(stderr)?.[1];
  const tokens = /tokens (\d+) in, (\d+) out/.exec(stderr);
  expect(wei, stderr).toBeDefined();
  expect(tokens, stderr).not.toBeNull();
  return { fee: BigInt(wei!), inputTokens: Number(tokens![1]), outputTokens: Number(tokens![2]) };
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'aipg-chat-'));
  // `.aipg` in the CLI's working directory: where `aipg chat` finds the devnet's facts by default.
  dir = join(root, '.aipg');
  net = await startDevnet({
    dir,
    port: 0,
    rpcPort: 0,
    model: 'tiny',
    validators: 0,
    confidential: true,
    settleIntervalMs: 60_000,
    logLevel: 'silent',
  });
});

afterAll(async () => {
  await net?.stop();
  if (root) await rm(root, { recursive: true, force: true });
});

describe('aipg devnet --confidential', () => {
  test('keeps a simulated TEE in <dir>/tee (root 0600, kept across restarts) and labels it loudly', async () => {
    const c = net.confidential!;
    expect(c).toMatchObject({
      simulated: true,
      anchorsFile: join(dir, 'tee', 'anchors.json'),
      rootFile: join(dir, 'tee', 'simulated-root.json'),
      confidentialPremiumBps: 2_500,
    });
    expect((await stat(c.rootFile)).mode & 0o777).toBe(0o600);
    const info = JSON.parse(await readFile(join(dir, 'devnet.json'), 'utf8'));
    expect(info.confidential).toMatchObject({ simulated: true, anchorsFile: c.anchorsFile });
    expect(info.confidential.note).toMatch(/SIMULATED.*nothing is actually confidential/);

    // A restart loads the same root, so a client's anchors file stays good.
    const root1 = await readFile(c.rootFile, 'utf8');
    const anchors1 = await readFile(c.anchorsFile, 'utf8');
    expect(await ensureDevnetTee(dir)).toMatchObject({ created: false });
    expect(await readFile(c.rootFile, 'utf8')).toBe(root1);
    expect(await readFile(c.anchorsFile, 'utf8')).toBe(anchors1);
    expect(parseAnchors(anchors1).nvidiaIssuer).toBe(
      (await SimulatedTee.deserialize(root1)).anchors.nvidiaIssuer,
    );

    const banner = confidentialLines(net).join('\n');
    expect(banner).toContain('SIMULATED TEE: NOTHING ON THIS DEVNET IS ACTUALLY CONFIDENTIAL');
    expect(banner).toContain('DEVELOPMENT root');
    expect(banner).toContain(`!!   ${c.anchorsFile}`);
    expect(banner).toContain(`npx aipg chat --confidential --gateway ${net.gatewayUrl}`);
    expect(banner).toContain(`--tee-anchors ${c.anchorsFile}`);
    expect(banner).toContain(
      `fetch: confidentialFetch({ anchors: parseAnchors(readFileSync('${c.anchorsFile}', 'utf8')) }),`,
    );
    expect(banner).toContain(`apiKey: '${net.apiKey}',`);
  });

  test('renews a root whose collateral is about to expire', async () => {
    const other = await mkdtemp(join(tmpdir(), 'aipg-tee-'));
    try {
      const first = await ensureDevnetTee(other);
      expect(first.created).toBe(true);
      const before = await readFile(first.anchorsFile, 'utf8');
      expect((await ensureDevnetTee(other)).created).toBe(false);
      const later = await ensureDevnetTee(other, Date.now() / 1000 + 400 * 86_400);
      expect(later.created).toBe(true);
      expect(await readFile(later.anchorsFile, 'utf8')).not.toBe(before);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});

describe('aipg chat', () => {
  test('--confidential with the devnet defaults: the decrypted answer on stdout, the premium in the fee', async () => {
    const r = await aipg(['chat', '--confidential', '--max-tokens', '12', '--temperature', '0', SECRET]);
    expect(r.code, r.stderr).toBe(0);
    const answer = r.stdout.replace(/\n$/, '');
    expect(answer.trim().length).toBeGreaterThan(0);
    expect(r.stderr).toContain(
      `⚠ trusting the devnet's SIMULATED TEE anchors ${net.confidential!.anchorsFile}`,
    );
    expect(r.stderr).toContain(`verified the TEE evidence of worker ${net.accounts.worker}`);
    expect(r.stderr).toContain(`worker ${net.accounts.worker}`);
    expect(r.stderr).toContain('confidential: includes the 25% premium');

    // The same request through the client helper in-process (greedy: the same text).
    const client = new OpenAI({
      baseURL: `${net.gatewayUrl}/v1`,
      apiKey: net.apiKey,
      maxRetries: 0,
      fetch: confidentialFetch({
        anchors: parseAnchors(await readFile(net.confidential!.anchorsFile, 'utf8')),
      }),
    });
    const direct = await client.chat.completions.create({
      model: net.model.name,
      messages: [{ role: 'user', content: SECRET }],
      max_tokens: 12,
      temperature: 0,
    });
    expect(answer).toBe(direct.choices[0]!.message.content);

    const { fee, inputTokens, outputTokens } = summary(r.stderr);
    expect(outputTokens).toBeGreaterThan(0);
    const withPremium = computeTextFee({
      inputTokens,
      outputTokens,
      rates: RATES,
      confidential: true,
      confidentialPremiumBps: 2_500,
    });
    expect(fee).toBe(withPremium);
    expect(fee).toBeGreaterThan(computeTextFee({ inputTokens, outputTokens, rates: RATES }));
    // Diagnostics never hold the prompt or the answer.
    expect(r.stderr).not.toContain('walrus-onyx');
    expect(r.stderr).not.toContain(answer.trim());
  });

  test('--confidential with another root’s anchors: exit 1, each worker’s failure named, nothing sent', async () => {
    const other = await SimulatedTee.create();
    const wrong = join(root, 'other-anchors.json');
    await writeFile(wrong, serializeAnchors(other.anchors));
    const before = await jobs();
    const r = await aipg([
      'chat',
      '--confidential',
      '--gateway',
      net.gatewayUrl,
      '--api-key',
      net.apiKey,
      '--model',
      net.model.name,
      '--tee-anchors',
      wrong,
      SECRET,
    ]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines, r.stderr).toHaveLength(1);
    expect(lines[0]).toMatch(
      new RegExp(
        `^error: confidential request NOT sent: no worker of ${net.model.name} presents TEE evidence that verifies under ${wrong}: ${net.accounts.worker} [a-z_]+ \\(nothing was sent; `,
      ),
    );
    expect(r.stderr).not.toContain('walrus-onyx');
    // The gateway never got a chat job: the request did not leave the client.
    expect(await jobs()).toBe(before);

    // Away from the devnet's folder the default anchors are Intel's and NVIDIA's: refused as well.
    const elsewhere = join(root, 'elsewhere');
    await mkdir(elsewhere);
    const r2 = await aipg(
      [
        'chat',
        '--confidential',
        '--gateway',
        net.gatewayUrl,
        '--api-key',
        net.apiKey,
        '--model',
        net.model.name,
        SECRET,
      ],
      { cwd: elsewhere },
    );
    expect(r2.code).toBe(1);
    expect(r2.stderr).toMatch(
      new RegExp(
        `^error: confidential request NOT sent: .* under the production anchors \\(Intel SGX root, NVIDIA NRAS\\): ${net.accounts.worker} [a-z_]+ `,
      ),
    );
    expect(await jobs()).toBe(before);
  });

  test('plain chat reads the message from stdin and prints the fee without a premium', async () => {
    const r = await aipg(['chat', '--max-tokens', '6'], { input: 'Hello, grid!\n' });
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.trim().length).toBeGreaterThan(0);
    const { fee, inputTokens, outputTokens } = summary(r.stderr);
    expect(fee).toBe(computeTextFee({ inputTokens, outputTokens, rates: RATES }));
    expect(r.stderr).not.toContain('confidential');
    expect(r.stderr).toMatch(
      /^fee .* · worker 0x[0-9a-fA-F]{40} · tokens \d+ in, \d+ out · finish \w+ · job 0x/,
    );
  });
});
