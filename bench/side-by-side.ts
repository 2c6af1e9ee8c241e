/**
 * 7. Side by side with Portkey's open-source gateway, one run, one machine: the same fake vLLM-shaped
 * backend (bench/fake-vllm.ts, its own process) called directly, through Portkey (`@portkey-ai/gateway`,
 * its own process) and through our stack (gateway → WebSocket → worker: the gateway its own process,
 * started by `aipg-gateway` on the devnet's chain as an operator starts it; the worker's `openai` backend
 * in another). Load comes from another process (bench/load.ts), whose CPU is counted too. CPU per request
 * of each process from /proc (user + system). Each run is measured in rounds that interleave the paths,
 * so a drift of the machine's speed is shared.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join, resolve } from 'node:path';
import {
  anvilTestAccounts,
  approveToken,
  bond,
  createGridClients,
  increaseGatewayCap,
  registerModel,
} from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import { MODEL_PRESETS } from '@aipg/inference';
import { type Hex, keccak256, maxUint256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import {
  createApiKey,
  DEVNET_ROLES,
  type StartDevnetReturnType,
} from '../packages/cli/src/devnet/start-devnet.ts';

const ROOT = resolve(import.meta.dirname, '..');
/** The measured gateway's key: an anvil test account no devnet role uses (the bench's worker is 6). */
const BENCH_GATEWAY_ACCOUNT = 7;
const TICK_MS = 10; // /proc stat clock ticks (USER_HZ = 100 on Linux)
/** Rounds each run is cut into, every path measured once per round (below). */
const ROUNDS = 3;

type Pct = (values: number[], p: number) => number;
type Table = (title: string, rows: (string | number)[][]) => void;

/** Write syscalls the process made so far (`syscw` of /proc/<pid>/io: socket writes, WAL writes…). */
function writesOf(pid: number): number {
  return Number(/syscw: (\d+)/.exec(readFileSync(`/proc/${pid}/io`, 'utf8'))?.[1] ?? Number.NaN);
}

function cpuMsOf(pid: number): number {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) * TICK_MS;
}

/** Each PostgreSQL server process's CPU ms at the last reading, and their sum over readings. */
let postgresSeen = new Map<number, number>();
let postgresTotal = 0;

/**
 * CPU ms of the PostgreSQL server's processes on this machine (the bench's server is local), as a
 * running total: each reading adds what every process used since the one before (all of it for a
 * process started since). What a process used between its last reading and its exit is lost (the
 * gateway's pool closes idle connections, at c=1 during the run), so a difference is a lower bound,
 * never negative: a plain sum over the live processes went below zero when one exited.
 */
function postgresCpuMs(): number {
  const now = new Map<number, number>();
  for (const pid of readdirSync('/proc')) {
    if (!/^\d+$/.test(pid)) continue;
    try {
      if (readFileSync(`/proc/${pid}/comm`, 'utf8').startsWith('postgres'))
        now.set(Number(pid), cpuMsOf(Number(pid)));
    } catch {
      // gone meanwhile
    }
  }
  for (const [pid, ms] of now) postgresTotal += ms - (postgresSeen.get(pid) ?? 0);
  postgresSeen = now;
  return postgresTotal;
}

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const port = (s.address() as { port: number }).port;
  await new Promise((r) => s.close(r));
  return port;
}

function child(args: string[], env: Record<string, string> = {}): { proc: ChildProcess; out: () => string } {
  // BENCH_CPU_PROF=<dir>: every child (the gateway, Portkey, the worker, the load…) writes a V8 CPU profile there.
  const proc = spawn(process.execPath, [...(prof ? ['--cpu-prof', `--cpu-prof-dir=${prof}`] : []), ...args], {
    cwd: ROOT,
    env: { ...process.env, ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  proc.stdout!.on('data', (d) => {
    out += d;
  });
  proc.stderr!.on('data', (d) => {
    out += d;
  });
  return { proc, out: () => out };
}

async function until(what: string, check: () => boolean | Promise<boolean>, ms = 60_000) {
  const deadline = Date.now() + ms;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`bench: timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

const prof = process.env.BENCH_CPU_PROF;

/** What bench/load.ts is asked to send. */
export type LoadSpec = {
  url: string;
  headers: Record<string, string>;
  body: unknown;
  count: number;
  concurrency: number;
  stream?: boolean;
};

/** What is measured per process around each load, as a sum over the run and then per request. */
const MEASURES = ['cpu', 'writes'] as const;
type Measure = (typeof MEASURES)[number];

/** One path's figures in one run (latencies in ms; CPU ms and write syscalls per request, by process). */
type PathFigures = {
  p50: number;
  p99: number;
  rps: number;
  ttft: number;
  cpu: Record<string, number>;
  writes: Record<string, number>;
  failures: number;
};

type Load = {
  latencies: number[];
  ttfts: number[];
  failures: number;
  firstError?: string;
  wallMs: number;
  /** Untimed requests sent first (one per connection): their CPU is in the processes' figures. */
  warmups: number;
  /** The load generator's own CPU over its requests (ms). */
  cpuMs: number;
};

async function load(spec: LoadSpec): Promise<Load> {
  const c = child(['--import', 'tsx', 'bench/load.ts', JSON.stringify(spec)]);
  const code = await new Promise<number | null>((r) => c.proc.on('exit', r));
  if (code !== 0) throw new Error(`bench: the load generator failed: ${c.out()}`);
  return JSON.parse(c.out().trim().split('\n').at(-1)!) as Load;
}

export async function sideBySide(
  net: StartDevnetReturnType,
  {
    pct,
    printTable,
    quick,
    dir,
    database,
  }: {
    pct: Pct;
    printTable: Table;
    quick: boolean;
    /** The devnet's folder (its tokenizer files; the measured gateway's embedded database goes there). */
    dir: string;
    /** The measured gateway's database: its name for the titles; a PostgreSQL server's URL and schema, or embedded PGlite. */
    database: { name: string; url?: string | undefined; schema: string };
  },
) {
  const children: ChildProcess[] = [];
  try {
    // The backend everyone calls.
    const fake = child(['--import', 'tsx', 'bench/fake-vllm.ts']);
    children.push(fake.proc);
    await until('the fake backend', () => /PORT \d+/.test(fake.out()));
    const backend = `http://127.0.0.1:${/PORT (\d+)/.exec(fake.out())![1]}/v1`;

    // Our stack: a model served only by an `openai` worker in front of that backend (its own process).
    const weightsHash = keccak256(toHex('bench-echo weights'));
    /** A wallet on the devnet's chain for one of anvil's test keys. */
    const walletOf = (key: Hex) =>
      createGridClients({ rpcUrl: net.rpcUrl, chainId: net.chainId, account: privateKeyToAccount(key) })
        .walletClient!;
    const owner = walletOf(anvilTestAccounts[0]!.privateKey as Hex);
    await registerModel(owner, {
      grid: net.contracts.grid,
      name: 'bench-echo',
      kind: 'text',
      weightsHash,
      tokenizerHash: MODEL_PRESETS.tiny.tokenizerHash,
      parameterCount: 1n,
      minVramMb: 0,
      rates: { inputPerMTokens: parseAipg('0.5'), outputPerMTokens: parseAipg('1.5'), perMegapixelStep: 0n },
    });
    // Our gateway, its own process started as an operator starts it (`aipg-gateway`), as Portkey's is:
    // its CPU is the gateway's alone (not the devnet's around it) and nothing else shares its event loop.
    const gatewayKey = anvilTestAccounts[BENCH_GATEWAY_ACCOUNT]!.privateKey as Hex;
    const gatewayAddress = privateKeyToAccount(gatewayKey).address;
    const payerKey = anvilTestAccounts[DEVNET_ROLES.payer]!.privateKey as Hex;
    const payer = walletOf(payerKey);
    // The devnet's payer lets this gateway charge it too.
    await increaseGatewayCap(payer, {
      grid: net.contracts.grid,
      gateway: gatewayAddress,
      amount: maxUint256,
    });
    const gatewayPort = await freePort();
    const gatewayUrl = `http://127.0.0.1:${gatewayPort}`;
    const gateway = child(
      [
        '--import',
        'tsx',
        'packages/gateway/src/bin/gateway.ts',
        '--rpc-url',
        net.rpcUrl,
        '--grid',
        net.contracts.grid,
        '--port',
        String(gatewayPort),
        '--log-level',
        'warn',
        '--tokenizers-dir',
        join(dir, 'devnet', 'tokenizers'),
        ...(database.url
          ? ['--database-url', database.url, '--database-schema', database.schema]
          : ['--database-dir', join(dir, 'bench-gateway-db')]),
        // The load is one payer's: no rate limit may shape it; settlement waits for the end.
        ...[
          'rateLimit.requestsPerMinute=10000000',
          'rateLimit.burst=1000000',
          'rateLimit.payerRequestsPerMinute=10000000',
          'rateLimit.payerBurst=1000000',
          'settlement.intervalMs=3600000',
          'settlement.minReceipts=10000',
          // BENCH_GATEWAY_SET='database.journal=false …': options of the gateway to compare against.
          ...(process.env.BENCH_GATEWAY_SET?.split(/\s+/).filter(Boolean) ?? []),
        ].flatMap((x) => ['--set', x]),
      ],
      // Only what the flags say: not a database URL or key of this shell's environment.
      { AIPG_OPERATOR_KEY: gatewayKey, DATABASE_URL: '' },
    );
    children.push(gateway.proc);
    await until('the gateway', () => {
      if (gateway.proc.exitCode !== null) throw new Error(`bench: the gateway exited: ${gateway.out()}`);
      return fetch(`${gatewayUrl}/healthz`).then(
        (r) => r.ok,
        () => false,
      );
    });
    const apiKey = await createApiKey(gatewayUrl, gatewayAddress, net.chainId, payerKey);

    const workerKey = anvilTestAccounts[6]!.privateKey as Hex;
    const w = walletOf(workerKey);
    await approveToken(w, {
      token: net.contracts.token,
      spender: net.contracts.grid,
      amount: parseAipg('1000'),
    });
    await bond(w, { grid: net.contracts.grid, role: 'worker', amount: parseAipg('1000') });
    const worker = child(
      [
        '--import',
        'tsx',
        'packages/cli/src/bin/aipg.ts',
        'worker',
        'start',
        '--network',
        'devnet',
        '--gateway',
        `${gatewayUrl.replace(/^http/, 'ws')}/v1/workers/connect`,
        '--rpc-url',
        net.rpcUrl,
        '--grid',
        net.contracts.grid,
        '--model',
        'bench-echo',
        '--backend',
        'openai',
        '--backend-url',
        backend,
        '--weights-hash',
        weightsHash,
        '--max-concurrency',
        '64',
        // Like Portkey in production mode and the gateway here: no log line per request.
        '--log-level',
        'warn',
      ],
      { AIPG_OPERATOR_KEY: workerKey },
    );
    children.push(worker.proc);
    await until('the openai worker online', async () => {
      if (worker.proc.exitCode !== null) throw new Error(`bench: the worker exited: ${worker.out()}`);
      const models = (await fetch(`${gatewayUrl}/v1/models`).then((r) => r.json())) as {
        data: { id: string; grid: { workers_online: number } }[];
      };
      return models.data.some((m) => m.id === 'bench-echo' && m.grid.workers_online > 0);
    });

    // Portkey's gateway, its own process, production mode (no per-request console log).
    const pkPort = await freePort();
    const portkey = child(
      [
        // Node 20 only: without it Portkey answers every streamed request with HTTP 500 (see the file).
        '--import',
        './bench/portkey-node20.mjs',
        'node_modules/@portkey-ai/gateway/build/start-server.js',
        `--port=${pkPort}`,
        '--headless',
      ],
      {
        NODE_ENV: 'production',
      },
    );
    children.push(portkey.proc);
    await until('Portkey', () =>
      fetch(`http://127.0.0.1:${pkPort}/`).then(
        () => true,
        () => false,
      ),
    );

    const messages = [{ role: 'user', content: 'Hello, grid!' }];
    const targets = {
      direct: {
        url: `${backend}/chat/completions`,
        headers: {},
        body: { model: 'bench-echo', messages, max_tokens: 8 },
      },
      portkey: {
        url: `http://127.0.0.1:${pkPort}/v1/chat/completions`,
        headers: {
          authorization: 'Bearer sk-bench',
          'x-portkey-provider': 'openai',
          'x-portkey-custom-host': backend,
        },
        body: { model: 'bench-echo', messages, max_tokens: 8 },
      },
      grid: {
        url: `${gatewayUrl}/v1/chat/completions`,
        headers: { authorization: `Bearer ${apiKey}` },
        body: { model: 'bench-echo', messages, max_tokens: 8 },
      },
    } as const;
    const runs = [
      { name: 'c=1', concurrency: 1, count: quick ? 50 : 300, stream: false },
      { name: 'c=64', concurrency: 64, count: quick ? 400 : 3_000, stream: false },
      { name: 'stream c=1', concurrency: 1, count: quick ? 50 : 300, stream: true },
      // Between the two: not run unless named (BENCH_RUNS='c=8').
      { name: 'c=8', concurrency: 8, count: quick ? 200 : 1_200, stream: false, optional: true },
      // BENCH_RUNS='c=1' (comma-separated): only those runs, e.g. to compare gateway options quickly.
    ].filter((r) =>
      process.env.BENCH_RUNS ? process.env.BENCH_RUNS.split(',').includes(r.name) : !r.optional,
    );
    // Warm every path alike (connections, caches, and the JIT: a few hundred requests leave the first
    // runs measuring V8's optimisation of each process, not its steady state).
    for (const t of Object.values(targets)) await load({ ...t, count: quick ? 200 : 2_000, concurrency: 8 });

    /** By run, then by path. */
    const results: Record<string, Record<string, PathFigures>> = {};
    // The machine's speed drifts (other tenants, frequency): measured one after the other, the paths
    // would each get a different machine. So each run is cut into rounds, and every round measures
    // every path, in a rotated order; a path's figures pool its rounds (latencies together, req/s as
    // all its requests over all its time, CPU as all its CPU over all its requests).
    const rounds = quick ? 1 : ROUNDS;
    for (const run of runs) {
      const pooled: Record<
        string,
        {
          latencies: number[];
          ttfts: number[];
          wallMs: number;
          failures: number;
          firstError: string | undefined;
          /** Requests sent, the untimed first ones included: what the CPU figures divide by. */
          requests: number;
          cpu: Record<string, number>;
          writes: Record<string, number>;
        }
      > = {};
      const names = Object.keys(targets) as (keyof typeof targets)[];
      for (const name of names)
        pooled[name] = {
          latencies: [],
          ttfts: [],
          wallMs: 0,
          failures: 0,
          firstError: undefined,
          requests: 0,
          cpu: {},
          writes: {},
        };
      for (let round = 0; round < rounds; round++) {
        for (let i = 0; i < names.length; i++) {
          const name = names[(i + round) % names.length]!;
          const t = targets[name];
          const count = Math.ceil(run.count / rounds);
          // What is read before and after the load, per process: CPU ms of each process on the path, and
          // our two processes' write syscalls (what the gateway ↔ worker frames cost the kernel).
          const meters: Record<Measure, Record<string, () => number>> = {
            cpu: {
              backend: () => cpuMsOf(fake.proc.pid!),
              ...(name === 'portkey' ? { portkey: () => cpuMsOf(portkey.proc.pid!) } : {}),
              ...(name === 'grid'
                ? {
                    gateway: () => cpuMsOf(gateway.proc.pid!),
                    worker: () => cpuMsOf(worker.proc.pid!),
                    // The gateway's database server shares the cores too: its processes' CPU, all of them.
                    ...(database.url ? { postgres: postgresCpuMs } : {}),
                  }
                : {}),
            },
            writes:
              name === 'grid'
                ? { gateway: () => writesOf(gateway.proc.pid!), worker: () => writesOf(worker.proc.pid!) }
                : {},
          };
          const read = () =>
            Object.fromEntries(
              MEASURES.map((m) => [
                m,
                Object.fromEntries(Object.entries(meters[m]).map(([k, f]) => [k, f()])),
              ]),
            ) as Record<Measure, Record<string, number>>;
          const before = read();
          const r = await load({
            ...t,
            body: { ...t.body, ...(run.stream ? { stream: true } : {}) },
            count,
            concurrency: run.concurrency,
            stream: run.stream,
          });
          const p = pooled[name]!;
          p.requests += r.latencies.length + r.warmups;
          p.latencies.push(...r.latencies);
          p.ttfts.push(...r.ttfts);
          p.wallMs += r.wallMs;
          p.failures += r.failures;
          p.firstError ??= r.firstError;
          const after = read();
          for (const m of MEASURES)
            for (const [k, v] of Object.entries(after[m])) p[m][k] = (p[m][k] ?? 0) + v - before[m][k]!;
          p.cpu.load = (p.cpu.load ?? 0) + r.cpuMs;
        }
      }
      results[run.name] = {};
      for (const [name, p] of Object.entries(pooled)) {
        if (p.failures > 0)
          console.log(`  (${name} ${run.name}: ${p.failures} failed, first: ${p.firstError})`);
        const n = p.latencies.length;
        results[run.name]![name] = {
          p50: pct(p.latencies, 50),
          p99: pct(p.latencies, 99),
          rps: n / (p.wallMs / 1000),
          ttft: p.ttfts.length > 0 ? pct(p.ttfts, 50) : Number.NaN,
          ...(Object.fromEntries(
            MEASURES.map((m) => [
              m,
              Object.fromEntries(Object.entries(p[m]).map(([k, v]) => [k, v / p.requests])),
            ]),
          ) as Record<Measure, Record<string, number>>),
          failures: p.failures,
        };
      }
    }
    const f = (v: number) => (Number.isFinite(v) ? v.toFixed(2) : '–');
    const rows: (string | number)[][] = [
      ['run', 'path', 'p50 ms', 'p99 ms', 'added p50 ms', 'req/s', 'TTFT p50 ms', 'CPU ms/req (process)'],
    ];
    for (const run of runs) {
      const d = results[run.name]!.direct!;
      for (const name of ['direct', 'portkey', 'grid']) {
        const x = results[run.name]![name]!;
        rows.push([
          run.name,
          name === 'grid' ? 'grid (gateway → worker)' : name,
          f(x.p50),
          f(x.p99),
          name === 'direct' ? '' : f(x.p50 - d.p50),
          x.rps.toFixed(0),
          run.stream ? f(x.ttft) : '',
          Object.entries(x.cpu)
            .map(([k, v]) => `${k} ${v.toFixed(2)}`)
            .join(', '),
        ]);
      }
    }
    printTable(
      `7. Side by side with Portkey (same fake vLLM-shaped backend, 8 tokens; 2 cores shared by every process; the grid's gateway on ${database.name})`,
      rows,
    );
    const c64 = results['c=64'];
    const c1 = results['c=1'];
    const st = results['stream c=1'];
    // The ratios need all three runs.
    if (c64 && c1 && st)
      printTable(`   ratios (grid on ${database.name} / Portkey)`, [
        ['figure', 'grid', 'Portkey', 'grid / Portkey', 'goal'],
        [
          'req/s at c=64',
          c64.grid!.rps.toFixed(0),
          c64.portkey!.rps.toFixed(0),
          (c64.grid!.rps / c64.portkey!.rps).toFixed(2),
          '≥ 1',
        ],
        [
          'added p50 at c=1 (ms)',
          f(c1.grid!.p50 - c1.direct!.p50),
          f(c1.portkey!.p50 - c1.direct!.p50),
          ((c1.grid!.p50 - c1.direct!.p50) / Math.max(0.01, c1.portkey!.p50 - c1.direct!.p50)).toFixed(1),
          'grid ≤ 5 ms',
        ],
        [
          'streaming TTFT p50 (ms)',
          f(st.grid!.ttft),
          f(st.portkey!.ttft),
          (st.grid!.ttft / st.portkey!.ttft).toFixed(2),
          '≤ 1',
        ],
        [
          'gateway capacity, req/s per core at c=64 (1000 / CPU ms per request)',
          (1000 / c64.grid!.cpu.gateway!).toFixed(0),
          (1000 / c64.portkey!.cpu.portkey!).toFixed(0),
          (c64.portkey!.cpu.portkey! / c64.grid!.cpu.gateway!).toFixed(2),
          '≥ 1',
        ],
        [
          'gateway CPU ms/req at c=64',
          f(c64.grid!.cpu.gateway!),
          f(c64.portkey!.cpu.portkey!),
          (c64.grid!.cpu.gateway! / c64.portkey!.cpu.portkey!).toFixed(1),
          'grid ≤ 2 ms',
        ],
        [
          'write syscalls per request at c=64, gateway + worker (c=1)',
          `${f(c64.grid!.writes.gateway!)} + ${f(c64.grid!.writes.worker!)} (${f(c1.grid!.writes.gateway!)} + ${f(c1.grid!.writes.worker!)})`,
          '',
          '',
          '',
        ],
      ]);
  } finally {
    // Stopped and gone before the devnet's folder (the gateway's database) is removed.
    await Promise.all(children.map((c) => stopChild(c)));
  }
}

/** SIGTERM, then SIGKILL if it has not exited 10 s later; resolves once it has. */
async function stopChild(c: ChildProcess): Promise<void> {
  if (c.exitCode !== null || c.signalCode !== null) return;
  const exited = new Promise<void>((r) => c.once('exit', () => r()));
  c.kill('SIGTERM');
  const timer = setTimeout(() => c.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}
