import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import type { Address, Hex } from 'viem';
import { ChainError } from './errors.ts';

/**
 * PUBLIC TEST KEYS — anvil's (and Hardhat's) default accounts, derived from the well-known mnemonic
 * "test test test test test test test test test test test junk". Everyone on the internet has these
 * private keys: any funds sent to these addresses on a real network are stolen within seconds.
 * Use them only on a local anvil. NEVER for real funds.
 */
export const anvilTestAccounts = [
  {
    address: '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266',
    privateKey: '0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80',
  },
  {
    address: '0x70997970C51812dc3A010C7d01b50e0d17dc79C8',
    privateKey: '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d',
  },
  {
    address: '0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC',
    privateKey: '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a',
  },
  {
    address: '0x90F79bf6EB2c4f870365E785982E1f101E93b906',
    privateKey: '0x7c852118294e51e653712a81e05800f419141751be58f605c371e15141b007a6',
  },
  {
    address: '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65',
    privateKey: '0x47e179ec197488593b187f80a00eb0da91f1b9d0b13f8733639f19c30a34926a',
  },
  {
    address: '0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc',
    privateKey: '0x8b3a350cf5c34c9194ca85829a2df0ec3153be0318b5e2d3348e872092edffba',
  },
  {
    address: '0x976EA74026E726554dB657fA54763abd0C3a0aa9',
    privateKey: '0x92db14e403b83dfe3df233f83dfa3a0d7096f21ca9b0d6d6b8d88b2b4ec1564e',
  },
  {
    address: '0x14dC79964da2C08b23698B3D3cc7Ca32193d9955',
    privateKey: '0x4bbbf85ce3377467afe5d46f804f221813b2bb87f24d81f60f1fcdbf7cbf4356',
  },
  {
    address: '0x23618e81E3f5cdF7f54C3d65f7FBc0aBf5B21E8f',
    privateKey: '0xdbda1821b80551c9d65939329250298aa3472ba22feea921c0cf5d620ea67b97',
  },
  {
    address: '0xa0Ee7A142d267C1f36714E4a8F75612F20a79720',
    privateKey: '0x2a871d0798f97d79848a013d4936a73bf4cc922c825d33c1cf7073dff6d409c6',
  },
] as const satisfies readonly { address: Address; privateKey: Hex }[];

const SETPRIV = '/usr/bin/setpriv';

/** The mnemonic behind `anvilTestAccounts` (public, test only). */
export const ANVIL_TEST_MNEMONIC = 'test test test test test test test test test test test junk';

export type StartAnvilParameters = {
  /** 0 (the default) lets the OS pick a free port. */
  port?: number;
  chainId?: number;
  /** Seconds between blocks; unset means a block per transaction (automine). */
  blockTime?: number;
  /** How many test accounts anvil funds (at most 10 are in `anvilTestAccounts`). */
  accounts?: number;
  /** ETH per test account. */
  balanceEth?: number;
  /** Don't forward anvil's own output to stderr (default true). */
  silent?: boolean;
  /** Extra anvil flags. */
  args?: readonly string[];
  /** How long to wait for "Listening on" (default 15 s). */
  startTimeoutMs?: number;
};

export type StartAnvilReturnType = {
  rpcUrl: string;
  wsUrl: string;
  port: number;
  chainId: number;
  /** The anvil process id (to check it is gone after `stop`). */
  pid: number;
  /** SIGTERM, then SIGKILL if it has not exited after `timeoutMs` (default 3 s). Idempotent. */
  stop: (timeoutMs?: number) => Promise<void>;
};

/** Path of the native anvil binary shipped by `@foundry-rs/anvil-linux-amd64`. */
export function anvilBinaryPath(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve('@foundry-rs/anvil-linux-amd64/package.json');
  } catch (cause) {
    throw new ChainError('anvil is not installed', {
      code: 'ANVIL_NOT_FOUND',
      details: 'the @foundry-rs/anvil-linux-amd64 package is missing: run npm install',
      cause,
    });
  }
  const bin = join(dirname(pkg), 'bin', 'anvil');
  if (!existsSync(bin)) {
    throw new ChainError('anvil is not installed', {
      code: 'ANVIL_NOT_FOUND',
      details: `${bin} does not exist`,
    });
  }
  return bin;
}

/**
 * Starts a local anvil (the native binary, so that killing it really ends it) on an OS-chosen port
 * with the deterministic test mnemonic, and resolves once it listens. The child is killed when this
 * process exits, so no anvil outlives its parent.
 */
export async function startAnvil(parameters: StartAnvilParameters = {}): Promise<StartAnvilReturnType> {
  const {
    port = 0,
    chainId = 31337,
    blockTime,
    accounts = 10,
    balanceEth,
    silent = true,
    args = [],
    startTimeoutMs = 15_000,
  } = parameters;
  const argv = [
    '--host',
    '127.0.0.1',
    '--port',
    String(port),
    '--chain-id',
    String(chainId),
    '--accounts',
    String(accounts),
    '--mnemonic',
    ANVIL_TEST_MNEMONIC,
    ...(blockTime === undefined ? [] : ['--block-time', String(blockTime)]),
    ...(balanceEth === undefined ? [] : ['--balance', String(balanceEth)]),
    ...args,
  ];
  // `setpriv --pdeathsig` execs anvil (same pid, no wrapper left) with the kernel's parent-death
  // signal set, so anvil dies even when this process is SIGKILLed or ends on an unhandled signal,
  // where the 'exit' handler below never runs.
  const binary = anvilBinaryPath();
  const child = existsSync(SETPRIV)
    ? spawn(SETPRIV, ['--pdeathsig', 'SIGKILL', binary, ...argv], { stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(binary, argv, { stdio: ['ignore', 'pipe', 'pipe'] });
  const killOnExit = () => {
    child.kill('SIGKILL');
  };
  process.on('exit', killOnExit);

  const exited = new Promise<void>((resolve) => {
    if (child.exitCode !== null || child.signalCode !== null) resolve();
    else child.once('exit', () => resolve());
  });
  exited.then(() => process.off('exit', killOnExit));

  let listenPort: number;
  try {
    listenPort = await waitForListening(child, startTimeoutMs, silent);
  } catch (error) {
    child.kill('SIGKILL');
    await exited;
    throw error;
  }

  let stopping: Promise<void> | undefined;
  const stop = (timeoutMs = 3_000) => {
    stopping ??= (async () => {
      if (child.exitCode !== null || child.signalCode !== null) return;
      child.kill('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const timedOut = new Promise<'timeout'>((resolve) => {
        timer = setTimeout(() => resolve('timeout'), timeoutMs);
      });
      const result = await Promise.race([exited, timedOut]);
      clearTimeout(timer);
      if (result === 'timeout') {
        child.kill('SIGKILL');
        await exited;
      }
    })();
    return stopping;
  };

  return {
    rpcUrl: `http://127.0.0.1:${listenPort}`,
    wsUrl: `ws://127.0.0.1:${listenPort}`,
    port: listenPort,
    chainId,
    pid: child.pid ?? -1,
    stop,
  };
}

function waitForListening(child: ChildProcess, timeoutMs: number, silent: boolean): Promise<number> {
  return new Promise((resolve, reject) => {
    let buffered = '';
    let stderr = '';
    let settled = false;
    const finish = (error: ChainError | undefined, port?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve(port as number);
    };
    const timer = setTimeout(
      () =>
        finish(
          new ChainError(`anvil did not start within ${timeoutMs} ms`, {
            code: 'ANVIL_START',
            details: stderr.trim() || undefined,
          }),
        ),
      timeoutMs,
    );
    child.stdout?.setEncoding('utf8');
    child.stdout?.on('data', (chunk: string) => {
      if (!silent) process.stderr.write(chunk);
      if (settled) return; // keep draining so anvil never blocks on a full pipe
      buffered += chunk;
      const match = /Listening on [\d.]+:(\d+)/.exec(buffered);
      if (match?.[1]) finish(undefined, Number(match[1]));
      else if (buffered.length > 64_000) buffered = buffered.slice(-1_000);
    });
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (!silent) process.stderr.write(chunk);
      if (stderr.length < 4_000) stderr += chunk;
    });
    child.once('error', (cause) =>
      finish(new ChainError(`anvil could not be started: ${cause.message}`, { code: 'ANVIL_START', cause })),
    );
    child.once('exit', (code, signal) =>
      finish(
        new ChainError(`anvil exited before listening (${signal ?? `exit code ${code}`})`, {
          code: 'ANVIL_START',
          details: stderr.trim().split('\n').slice(-3).join(' ') || undefined,
        }),
      ),
    );
  });
}
