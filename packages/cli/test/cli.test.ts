import { spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  announceAuditConfig,
  anvilTestAccounts,
  createGridClients,
  encryptKeystore,
  getGridParams,
  readDeployment,
  type StartDevChainReturnType,
  serializeDeployment,
  startDevChain,
} from '@aipg/chain';
import { MODEL_PRESETS, makeGguf, sha256Hex } from '@aipg/inference';
import { createPublicClient, createTestClient, http } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';

const entry = fileURLToPath(new URL('../bin/aipg.js', import.meta.url));
const AIPG = 10n ** 18n;

let dev: StartDevChainReturnType;
let dir: string;

type Result = { code: number | null; stdout: string; stderr: string };

/** Runs the real CLI (the `npx aipg` launcher) with only the env given (nothing inherited but PATH/HOME). */
function aipg(args: string[], env: Record<string, string> = {}, cwd = dir): Promise<Result> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [entry, ...args], {
      cwd,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

const key = (i: number) => ({ AIPG_PRIVATE_KEY: anvilTestAccounts[i]!.privateKey });

async function ok(args: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await aipg(args, env);
  expect(result.stderr, `aipg ${args.join(' ')}`).toBe('');
  expect(result.code).toBe(0);
  return result.stdout;
}

/** Exit 1 and exactly one line on stderr, no stack frames, no private key. */
async function fails(args: string[], env: Record<string, string> = {}): Promise<string> {
  const result = await aipg(args, env);
  expect(result.code, `aipg ${args.join(' ')}: ${result.stderr}`).toBe(1);
  const lines = result.stderr.trimEnd().split('\n');
  expect(lines, result.stderr).toHaveLength(1);
  expect(lines[0]).toMatch(/^error: /);
  expect(result.stderr).not.toMatch(/\n\s+at /);
  if (env.AIPG_PRIVATE_KEY)
    expect(result.stderr + result.stdout).not.toContain(env.AIPG_PRIVATE_KEY.slice(2));
  return lines[0] as string;
}

async function advance(seconds: number) {
  const client = createTestClient({ mode: 'anvil', transport: http(dev.anvil.rpcUrl) });
  await client.increaseTime({ seconds });
  await client.mine({ blocks: 1 });
}

async function statusJson(address: string) {
  return JSON.parse(await ok(['status', address, '--json']));
}

beforeAll(async () => {
  dev = await startDevChain({ port: 0 });
  dir = await mkdtemp(join(tmpdir(), 'aipg-cli-'));
  await mkdir(join(dir, '.aipg'));
  await writeFile(
    join(dir, '.aipg', 'deployment.json'),
    serializeDeployment({ ...dev.deployment, rpcUrl: dev.anvil.rpcUrl }),
  );
});

afterAll(async () => {
  await dev?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('help', () => {
  test('lists every command and shows per-command usage', async () => {
    const list = await ok(['--help']);
    for (const c of ['chain up', 'stake <worker|validator> <amount>', 'unbond', 'withdraw', 'status']) {
      expect(list).toContain(c);
    }
    const stake = await ok(['stake', '--help']);
    expect(stake).toContain('Usage: aipg stake <worker|validator> <amount> [options]');
    expect(stake).toContain('--operator <address>');
    expect(stake).toContain('aipg stake worker 1000');
  });
});

describe('model tokenizer: what a gateway operator installs', () => {
  test('writes the tokenizer file of a GGUF and prints the two hashes to register', async () => {
    const gguf = join(dir, 'aipg-tiny-llama.gguf');
    await writeFile(gguf, makeGguf(MODEL_PRESETS.tiny.config).bytes);
    const out = join(dir, 'tokenizers');
    await mkdir(out, { recursive: true });
    const printed = await ok(['model', 'tokenizer', gguf, '--out', out]);
    expect(printed).toContain(`weights hash    ${MODEL_PRESETS.tiny.weightsHash}`);
    expect(printed).toContain(`tokenizer hash  ${MODEL_PRESETS.tiny.tokenizerHash}`);
    const file = readFileSync(join(out, 'aipg-tiny-llama.tokenizer.gguf'));
    expect(sha256Hex(file)).toBe(MODEL_PRESETS.tiny.tokenizerHash);
    // Not a GGUF, or no file: one line, exit 1.
    await writeFile(join(dir, 'bad.gguf'), 'not a model');
    expect(await fails(['model', 'tokenizer', join(dir, 'bad.gguf')])).toMatch(/Not a readable GGUF/);
    expect(await fails(['model', 'tokenizer', join(dir, 'missing.gguf')])).toMatch(/no such file/);
  });
});

describe('status: who governs the Grid and what is coming', () => {
  test('prints the owner and an announced rule change with its content and countdown, and nothing once it lapses', async () => {
    const before = await ok(['status', anvilTestAccounts[5].address]);
    expect(before).toMatch(new RegExp(`grid owner\\s+${anvilTestAccounts[0].address}`));
    expect(before).toMatch(/pending changes\s+none announced/);

    const { walletClient, publicClient } = createGridClients({
      rpcUrl: dev.anvil.rpcUrl,
      chainId: 31337,
      account: privateKeyToAccount(anvilTestAccounts[0].privateKey),
    });
    const grid = dev.deployment.grid;
    const { audit } = await getGridParams(publicClient, { grid });
    const config = { ...audit, auditRateBps: 2_500, commitWindow: 45 };
    const announced = await announceAuditConfig(walletClient!, { grid, config });

    const human = await ok(['status', anvilTestAccounts[5].address]);
    expect(human).toMatch(/pending changes\s+audit rules: rate 25%, k=\d+, quorum \d+, commit 45 s/);
    expect(human).toMatch(/executable in \d+ (s|min)/);
    expect(human).toContain(announced.id.slice(0, 10));
    const json = await statusJson(anvilTestAccounts[5].address);
    expect(json.governance.owner).toBe(anvilTestAccounts[0].address);
    expect(json.pendingChanges).toEqual([
      expect.objectContaining({
        kind: 'auditConfig',
        id: announced.id,
        executableAt: announced.executableAt,
        expiresAt: announced.expiresAt,
        status: 'waiting',
      }),
    ]);
    expect(json.pendingChanges[0].config.auditRateBps).toBe(2_500);

    // once it lapses it is no longer pending
    await advance(announced.expiresAt - announced.executableAt + 1_000);
    expect((await statusJson(anvilTestAccounts[5].address)).pendingChanges).toEqual([]);
  });
});

describe('stake, unbond, withdraw, status', () => {
  const worker = anvilTestAccounts[1];
  const operator = anvilTestAccounts[3];
  const validator = anvilTestAccounts[2];

  test('stakes as a worker with an operator, then adds to the bond', async () => {
    const first = await ok(['stake', 'worker', '1000', '--operator', operator.address], key(1));
    expect(first).toContain('approved the Grid to pull 1,000 AIPG');
    expect(first).toContain('bonded 1,000 AIPG as a worker');
    const second = await ok(['stake', 'worker', '500'], key(1));
    expect(second).toContain('added 500 AIPG to your worker bond: now 1,500 AIPG');

    const s = await statusJson(worker.address);
    expect(s.worker).toMatchObject({
      amount: (1500n * AIPG).toString(),
      unbonding: '0',
      operator: operator.address,
      active: true,
      slashed: '0',
    });
    expect(s.walletBalance).toBe(((1_000_000n - 1500n) * AIPG).toString());
    expect(s).toMatchObject({ earnings: '0', totalSlashed: '0', chainId: 31337, deposit: { balance: '0' } });
  });

  test('unbonds, refuses an early withdrawal, withdraws after the delay', async () => {
    expect(await ok(['unbond', 'worker', '500'], key(1))).toMatch(
      /unbonding 500 AIPG of your worker bond[\s\S]*withdrawable at .* \(in 30 s\)/,
    );
    expect(await fails(['withdraw', 'worker'], key(1))).toMatch(
      /^error: 500 AIPG is withdrawable in \d+ s \(at /,
    );

    const human = await ok(['status', worker.address]);
    expect(human).toMatch(/worker bond\s+1,000 AIPG active/);
    expect(human).toMatch(/unbonding\s+500 AIPG, withdrawable in \d+ s/);

    await advance(31);
    expect(await ok(['withdraw', 'worker'], key(1))).toContain('withdrew 500 AIPG from your worker bond');

    await ok(['unbond', 'worker'], key(1));
    const s = await statusJson(worker.address);
    expect(s.worker).toMatchObject({ amount: '0', unbonding: (1000n * AIPG).toString(), active: false });
    expect(s.worker.unbondSecondsLeft).toBeGreaterThan(20);
    expect(s.walletBalance).toBe(((1_000_000n - 1000n) * AIPG).toString());
  });

  test('stakes as a validator', async () => {
    expect(await ok(['stake', 'validator', '10000'], key(2))).toContain('bonded 10,000 AIPG as a validator');
    const s = await statusJson(validator.address);
    expect(s.validator).toMatchObject({ amount: (10_000n * AIPG).toString(), active: true });
  });

  test('signs with a V3 keystore', async () => {
    const path = join(dir, 'key.json');
    await writeFile(
      path,
      JSON.stringify(await encryptKeystore(anvilTestAccounts[4].privateKey, 'pw', { n: 2 ** 10 })),
    );
    const out = await ok(['status', '--keystore', path, '--json'], { AIPG_KEYSTORE_PASSWORD: 'pw' });
    expect(JSON.parse(out).account).toBe(anvilTestAccounts[4].address);
    expect(await fails(['status', '--keystore', path], { AIPG_KEYSTORE_PASSWORD: 'nope' })).toMatch(
      /^error: wrong keystore password/,
    );
    expect(await fails(['status', '--keystore', path])).toBe(
      'error: set AIPG_KEYSTORE_PASSWORD to decrypt the keystore',
    );
  });
});

describe('bad input: one line on stderr, exit code 1', () => {
  test('each case', async () => {
    const wrongChain = join(dir, 'wrong-chain.json');
    await writeFile(
      wrongChain,
      serializeDeployment({ ...dev.deployment, chainId: 1, rpcUrl: dev.anvil.rpcUrl }),
    );
    const stale = join(dir, 'stale.json');
    await writeFile(
      stale,
      serializeDeployment({
        ...dev.deployment,
        grid: '0x000000000000000000000000000000000000dEaD',
        rpcUrl: dev.anvil.rpcUrl,
      }),
    );
    const cases: [string[], Record<string, string>, RegExp][] = [
      [
        ['stake', 'worker', '500'],
        key(5),
        /a worker bond needs at least 1,000 AIPG: 500 AIPG is below the minimum/,
      ],
      [
        ['stake', 'worker', '1000'],
        { AIPG_PRIVATE_KEY: generatePrivateKey() },
        /not enough AIPG: 0x\w+ holds 0 AIPG/,
      ],
      [['stake', 'worker', '1000', '--no-approve'], key(6), /allowance too low: the Grid may pull 0 AIPG/],
      [
        ['status', anvilTestAccounts[0].address, '--deployment', wrongChain],
        {},
        /wrong chain: .* is chain 31337, but .* is for chain 1$/,
      ],
      [
        ['status', anvilTestAccounts[0].address, '--deployment', stale],
        {},
        /no Grid contract at 0x000000000000000000000000000000000000dEaD/,
      ],
      [['status', '0x123'], {}, /invalid address "0x123" for the account/],
      [['stake', 'worker', '1000', '--operator', 'bob'], key(7), /invalid address "bob" for --operator/],
      [['stake', 'worker', '1000'], { AIPG_PRIVATE_KEY: '0x1234' }, /AIPG_PRIVATE_KEY is malformed/],
      [['stake', 'worker', 'lots'], key(7), /invalid AIPG amount "lots"/],
      [['stake', 'miner', '1000'], key(7), /expected worker or validator, got "miner"/],
      [['stake', 'worker'], key(7), /missing arguments: aipg stake <worker\|validator> <amount>/],
      [['frobnicate'], {}, /unknown command "frobnicate"/],
      [['status', '--frob'], {}, /unknown option --frob/],
      [
        ['status', anvilTestAccounts[0].address, '--deployment', join(dir, 'nope.json')],
        {},
        /no deployment file at .*nope\.json/,
      ],
      [
        ['status', anvilTestAccounts[0].address, '--rpc-url', 'http://127.0.0.1:9'],
        {},
        /cannot reach the RPC endpoint http:\/\/127\.0\.0\.1:9/,
      ],
      [['status'], {}, /whose status\?/],
      // A revert decoded from the chain: account 8 names account 1's operator key.
      [
        ['stake', 'worker', '1000', '--operator', anvilTestAccounts[3].address],
        key(8),
        /^error: OperatorTaken\(operator: 0x90F79bf6EB2c4f870365E785982E1f101E93b906, owner: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8\)/,
      ],
    ];
    // Two at a time: the machine has two cores.
    for (let i = 0; i < cases.length; i += 2) {
      await Promise.all(
        cases.slice(i, i + 2).map(async ([args, env, expected]) => {
          expect(await fails(args, env)).toMatch(expected);
        }),
      );
    }
  }, 300_000); // 17 real CLI processes: ~35 s on a quiet machine, far more on a loaded one
});

/** Child processes of `pid` whose command line mentions anvil. */
function anvilChildren(pid: number): number[] {
  const found: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === pid && readFileSync(`/proc/${entry}/cmdline`, 'utf8').includes('anvil'))
        found.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return found;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

describe('chain up', () => {
  test('prints the chain, writes the deployment, and stops anvil on SIGINT', async () => {
    const out = join(dir, 'up', 'deployment.json');
    const child = spawn(process.execPath, [entry, 'chain', 'up', '--port', '0', '--out', out], {
      cwd: dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`chain up did not come up: ${stdout}${stderr}`)),
        40_000,
      );
      child.stdout.on('data', (d) => {
        stdout += d;
        if (stdout.includes('Press Ctrl-C to stop.')) {
          clearTimeout(timer);
          resolve();
        }
      });
    });
    try {
      const deployment = await readDeployment(out);
      expect(stdout).toContain(`RPC URL       ${deployment.rpcUrl}`);
      expect(stdout).toContain(`Grid          ${deployment.grid}`);
      expect(stdout).toContain('chain id      31337');
      expect(stdout).toContain("anvil's public test keys — never use them for real funds");
      for (const a of anvilTestAccounts) expect(stdout).toContain(`${a.address}  ${a.privateKey}`);
      const client = createPublicClient({ transport: http(deployment.rpcUrl) });
      expect(await client.getChainId()).toBe(31337);
      expect(await client.getCode({ address: deployment.grid })).toMatch(/^0x[0-9a-f]+$/);

      const anvils = anvilChildren(child.pid as number);
      expect(anvils).toHaveLength(1);
      child.kill('SIGINT');
      expect(await exited).toBe(0);
      expect(stdout).toContain('anvil stopped');
      expect(stderr).toBe('');
      expect(alive(anvils[0] as number)).toBe(false);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
