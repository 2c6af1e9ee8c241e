/**
 * `npm run bench`: figures, not pass/fail tests. Prints one table per section:
 *  1. added latency of gateway + worker over calling the same backend directly (p50, p99)
 *  2. time-to-first-token overhead when streaming
 *  3. requests per second through one gateway (an instant backend, so the gateway is what's measured)
 *  4. gas per settled job at batch sizes 1, 100 and 1,000
 *  5. audit cost as a share of generation cost, for outputs of 16, 128 and 512 tokens
 *  6. gas of fixRandomness, commitVote, revealVote and finalize (the audit rows GasActions.t.sol prints)
 *  7. side by side with Portkey's gateway: the same fake backend direct, through Portkey and through the
 *     grid; latency, req/s at c=1 and c=64, streaming TTFT, CPU per request of every process, ratios
 *  8. images per minute and ms per step of the embedded image pipeline called directly (bench/images.ts)
 *  9. an image audit's cost (k re-run steps, seed check, decode) as a share of the job's generation
 * 10. what the gateway adds to an image job (openai images.generate through the devnet vs the pipeline)
 * 11. the gateway's database work per job as its history grows, and its timed passes (bench/history.ts)
 * 12. embedded PGlite's work per request by how many requests share a statement (bench/db-groups.ts)
 * Usage: npm run bench [-- --quick] [-- --only SECTION]
 *   --quick: fewer iterations, for a smoke run
 *   --only latency|gas|audit-cost|audit-gas|portkey|images|history|db-groups: run one section (latency prints
 *     tables 1–3, images tables 8–10)
 * Section 7 (portkey) also reads BENCH_RUNS (`c=1,c=64,stream c=1`: only those runs; `c=8`, a run between
 * them, only when named) and BENCH_GATEWAY_SET
 * (gateway options, `database.journal=false`), to compare one option against the default quickly, and
 * BENCH_BACKEND_TOKENS=each (the fake backend streams each token in its own event, a turn apart, as vLLM
 * does; by default the whole answer in one).
 */
import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import {
  anvilTestAccounts,
  approveToken,
  bond,
  createGridClients,
  deposit,
  increaseGatewayCap,
  registerModel,
  settleBatch,
  startDevChain,
} from '@aipg/chain';
import {
  buildReceiptTree,
  CANONICAL_SAMPLER,
  computeOutputHash,
  computeRequestHash,
  parseAipg,
  type Receipt,
} from '@aipg/core';
import { createLlamaEngine, createTokenizer, ensureModel, MODEL_PRESETS } from '@aipg/inference';
import { createLlamaCppBackend, createWorkerOptions, startWorker } from '@aipg/worker';
import { getLlama, type Token } from 'node-llama-cpp';
import OpenAI from 'openai';
import pg from 'pg';
import { type Address, type Hex, keccak256, maxUint256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { startDevnet } from '../packages/cli/src/devnet/start-devnet.ts';
import { dbGroups } from './db-groups.ts';
import { createEchoBackend } from './echo-backend.ts';
import { history } from './history.ts';
import { images } from './images.ts';
import { sideBySide } from './side-by-side.ts';

const quick = process.argv.includes('--quick');
const N = quick ? 30 : 200;

function pct(values: number[], p: number): number {
  const s = [...values].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))]!;
}
const ms = (v: number) => `${v.toFixed(2)} ms`;

function printTable(title: string, rows: (string | number)[][]) {
  console.log(`\n${title}`);
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => String(r[i]).length)));
  for (const [i, r] of rows.entries()) {
    console.log(`  ${r.map((c, j) => String(c).padEnd(widths[j]!)).join('  ')}`);
    if (i === 0) console.log(`  ${widths.map((w) => '-'.repeat(w)).join('  ')}`);
  }
}

const key = (i: number) => anvilTestAccounts[i]!.privateKey as Hex;

async function latency() {
  const dir = await mkdtemp(join(tmpdir(), 'aipg-bench-'));
  const net = await startDevnet({
    dir,
    port: 0,
    rpcPort: 0,
    model: 'tiny',
    logLevel: 'silent',
    settleIntervalMs: 3_600_000,
    gatewayOptions: {
      'chain.registryCacheMs': 200,
      'rateLimit.requestsPerMinute': 1_000_000,
      'rateLimit.burst': 100_000,
      'rateLimit.payerRequestsPerMinute': 1_000_000,
      'rateLimit.payerBurst': 100_000,
    },
  });
  try {
    const client = new OpenAI({ baseURL: `${net.gatewayUrl}/v1`, apiKey: net.apiKey, maxRetries: 0 });
    const direct = createLlamaCppBackend({ name: net.model.name, gguf: net.model.path, threads: 1 });
    await direct.load();
    const messages = [{ role: 'user' as const, content: 'Hello, grid!' }];
    // Called directly, the backend runs the prompt ids a gateway would send (its tokenizer, BOS, template).
    const tokenizer = await createTokenizer({ modelPath: net.model.path });
    const promptTokenIds = tokenizer.chatPromptTokenIds(messages);
    await tokenizer.close();
    const params = { maxTokens: 8, temperature: 0, topP: 1, seed: null, stop: [] as string[] };
    const directMs: number[] = [];
    const gridMs: number[] = [];
    const directTtft: number[] = [];
    const gridTtft: number[] = [];
    const signal = new AbortController().signal;
    for (let i = 0; i < 5; i++) {
      await direct.generate({ input: { messages }, promptTokenIds, params, signal });
      await client.chat.completions.create({
        model: net.model.name,
        messages,
        max_tokens: 8,
        temperature: 0,
      });
    }
    for (let i = 0; i < N; i++) {
      let t = performance.now();
      await direct.generate({ input: { messages }, promptTokenIds, params, signal });
      directMs.push(performance.now() - t);
      t = performance.now();
      await client.chat.completions.create({
        model: net.model.name,
        messages,
        max_tokens: 8,
        temperature: 0,
      });
      gridMs.push(performance.now() - t);

      t = performance.now();
      let first = 0;
      await direct.generate({
        input: { messages },
        promptTokenIds,
        params,
        signal,
        onToken: () => {
          first ||= performance.now() - t;
        },
      });
      directTtft.push(first);
      t = performance.now();
      first = 0;
      const stream = await client.chat.completions.create({
        model: net.model.name,
        messages,
        max_tokens: 8,
        temperature: 0,
        stream: true,
      });
      for await (const chunk of stream)
        if (!first && chunk.choices[0]?.delta.content) first = performance.now() - t;
      gridTtft.push(first);
    }
    await direct.close();
    printTable(`1. Latency, chat completion of 8 tokens on the tiny model, ${N} sequential requests`, [
      ['path', 'p50', 'p99'],
      ['backend called directly', ms(pct(directMs, 50)), ms(pct(directMs, 99))],
      ['openai client → gateway → worker', ms(pct(gridMs, 50)), ms(pct(gridMs, 99))],
      ['added by the grid', ms(pct(gridMs, 50) - pct(directMs, 50)), ms(pct(gridMs, 99) - pct(directMs, 99))],
    ]);
    printTable('2. Time to first token, streaming', [
      ['path', 'p50', 'p99'],
      ['backend called directly', ms(pct(directTtft, 50)), ms(pct(directTtft, 99))],
      ['openai client → gateway → worker (SSE)', ms(pct(gridTtft, 50)), ms(pct(gridTtft, 99))],
      [
        'added by the grid',
        ms(pct(gridTtft, 50) - pct(directTtft, 50)),
        ms(pct(gridTtft, 99) - pct(directTtft, 99)),
      ],
    ]);

    // 3. Throughput: a second worker with an instant backend, many clients at once.
    const echo = createEchoBackend();
    const owner = createGridClients({
      rpcUrl: net.rpcUrl,
      chainId: net.chainId,
      account: privateKeyToAccount(key(0)),
    }).walletClient!;
    await registerModel(owner, {
      grid: net.contracts.grid,
      name: echo.model.name,
      kind: 'text',
      weightsHash: echo.model.weightsHash,
      // The devnet's tiny model's tokenizer: the echo worker serves its GGUF, the gateway renders with it.
      tokenizerHash: MODEL_PRESETS.tiny.tokenizerHash,
      parameterCount: 1n,
      minVramMb: 0,
      rates: { inputPerMTokens: parseAipg('0.5'), outputPerMTokens: parseAipg('1.5'), perMegapixelStep: 0n },
    });
    const w5 = createGridClients({
      rpcUrl: net.rpcUrl,
      chainId: net.chainId,
      account: privateKeyToAccount(key(5)),
    }).walletClient!;
    await approveToken(w5, {
      token: net.contracts.token,
      spender: net.contracts.grid,
      amount: parseAipg('1000'),
    });
    await bond(w5, { grid: net.contracts.grid, role: 'worker', amount: parseAipg('1000') });
    const options = await createWorkerOptions(
      {
        network: 'devnet',
        gateway: net.workerUrl,
        rpcUrl: net.rpcUrl,
        grid: net.contracts.grid,
        model: echo.model.name,
        backend: 'llama-cpp',
        gguf: net.model.path,
        weightsHash: echo.model.weightsHash,
        maxConcurrency: 64,
        logLevel: 'silent',
      },
      { AIPG_OPERATOR_KEY: key(5) },
    );
    const worker = await startWorker(options, { backends: [{ backend: echo, maxConcurrency: 64 }] });
    await worker.ready();
    for (let i = 0; i < 50; i++) {
      const models = (await fetch(`${net.gatewayUrl}/v1/models`).then((r) => r.json())) as {
        data: { id: string; grid: { workers_online: number } }[];
      };
      if (models.data.some((m) => m.id === echo.model.name && m.grid.workers_online > 0)) break;
      await new Promise((r) => setTimeout(r, 100));
    }
    const rows: (string | number)[][] = [['clients at once', 'requests', 'req/s', 'p50', 'p99']];
    for (const concurrency of [1, 8, 32]) {
      const total = quick ? 60 : 400;
      let next = 0;
      const lat: number[] = [];
      const started = performance.now();
      await Promise.all(
        Array.from({ length: concurrency }, async () => {
          while (next < total) {
            next++;
            const t = performance.now();
            await client.chat.completions.create({ model: echo.model.name, messages, max_tokens: 8 });
            lat.push(performance.now() - t);
          }
        }),
      );
      const secs = (performance.now() - started) / 1000;
      rows.push([concurrency, total, (total / secs).toFixed(0), ms(pct(lat, 50)), ms(pct(lat, 99))]);
    }
    printTable(
      '3. Requests per second through one gateway (instant backend, 8 output tokens, 2 cores shared by all)',
      rows,
    );
    await worker.stop();
  } finally {
    await net.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

async function gas() {
  const dev = await startDevChain({ port: 0, silent: true });
  try {
    const { deployment } = dev;
    const wallet = (i: number) =>
      createGridClients({
        rpcUrl: dev.anvil.rpcUrl,
        chainId: deployment.chainId,
        account: privateKeyToAccount(key(i)),
      }).walletClient!;
    const gateway = wallet(1);
    const gatewayAddress = privateKeyToAccount(key(1)).address;
    const payerKeys = [3, 4, 5];
    const workerKeys = [6, 7, 8];
    const payerAddresses = payerKeys.map((i) => privateKeyToAccount(key(i)).address);
    const workerAddresses = workerKeys.map((i) => privateKeyToAccount(key(i)).address);
    for (const p of payerKeys.map(wallet)) {
      await approveToken(p, {
        token: deployment.token,
        spender: deployment.grid,
        amount: parseAipg('100000'),
      });
      await deposit(p, { grid: deployment.grid, amount: parseAipg('100000') });
      await increaseGatewayCap(p, { grid: deployment.grid, gateway: gatewayAddress, amount: maxUint256 });
    }
    for (const w of workerKeys.map(wallet)) {
      await approveToken(w, { token: deployment.token, spender: deployment.grid, amount: parseAipg('1000') });
      await bond(w, { grid: deployment.grid, role: 'worker', amount: parseAipg('1000') });
    }
    const rows: (string | number)[][] = [
      ['receipts in batch', 'payers', 'workers', 'settle gas', 'gas per job'],
    ];
    let nonce = 0;
    let firstSeq = 0n;
    for (const size of [1, 100, 1_000]) {
      const receipts: Receipt[] = Array.from({ length: size }, (_, i) => {
        const payer = payerAddresses[i % payerAddresses.length]!;
        const worker = workerAddresses[i % workerAddresses.length]!;
        return {
          jobId: keccak256(toHex(`bench-${nonce++}`)),
          gateway: gatewayAddress,
          payer,
          worker,
          modelId: keccak256(toHex('model')),
          requestHash: computeRequestHash(
            [1, 2, 3],
            { maxTokens: 8, temperature: 0, topP: 1, seed: null, stop: [] },
            CANONICAL_SAMPLER,
          ),
          outputHash: computeOutputHash([4, 5], 'stop'),
          inputUnits: 3n,
          outputUnits: 2n,
          fee: 1_000_000_000_000n + BigInt(i),
          completedAt: BigInt(Math.floor(Date.now() / 1000)),
          confidential: false,
          seq: firstSeq + BigInt(i),
        };
      });
      const tree = buildReceiptTree(receipts);
      const debits = new Map<Address, bigint>();
      const credits = new Map<Address, bigint>();
      for (const r of receipts) {
        debits.set(r.payer, (debits.get(r.payer) ?? 0n) + r.fee);
        credits.set(r.worker, (credits.get(r.worker) ?? 0n) + r.fee);
      }
      const { hash } = await settleBatch(gateway, {
        grid: deployment.grid,
        root: tree.root as Hex,
        firstSeq,
        receiptCount: size,
        debits: [...debits].map(([payer, amount]) => ({ payer, amount })),
        credits: [...credits].map(([worker, gross]) => ({ worker, gross })),
      });
      firstSeq += BigInt(size);
      const { publicClient } = createGridClients({ rpcUrl: dev.anvil.rpcUrl, chainId: deployment.chainId });
      const receipt = await publicClient.getTransactionReceipt({ hash });
      rows.push([
        size,
        debits.size,
        credits.size,
        receipt.gasUsed.toString(),
        (Number(receipt.gasUsed) / size).toFixed(0),
      ]);
    }
    printTable(
      '4. Gas per settled job (one settle transaction; receipts summed per payer and per worker)',
      rows,
    );
  } finally {
    await dev.stop();
  }
}

/**
 * 5. What an audit costs next to the job it checks: the worker's generation of N tokens against the
 * validator's one teacher-forced pass over prompt + output (the judge's arithmetic on top is
 * negligible), on the devnet's `small` model, one thread each. Wall-clock medians, and the process's
 * CPU time (all threads) over the same calls: on a shared machine the CPU figures move much less
 * with the other load than the wall-clock ones. "Forward pass alone" is the floor of any audit:
 * the same tokens through the same model in one batch (node-llama-cpp's plain evaluation, same
 * threads, flash attention off as in the engine) without reading a single distribution; what the
 * audit costs above it is the reading of each position's distribution and the judge's arithmetic.
 */
async function auditCost() {
  const dir = await mkdtemp(join(tmpdir(), 'aipg-bench-model-'));
  try {
    const model = await ensureModel({ dir, preset: 'small' });
    const engine = await createLlamaEngine({ modelPath: model.path, threads: 1, contextSize: 1024 });
    const llama = await getLlama({ gpu: false, build: 'never', progressLogs: false });
    const plain = await llama.loadModel({ modelPath: model.path });
    const plainContext = await plain.createContext({ contextSize: 1024, threads: 1, flashAttention: false });
    const plainSeq = plainContext.getSequence();
    // A different prompt each round, so no round reuses another's cached state.
    const prompt = (i: number) =>
      engine.chatPromptTokenIds([
        { role: 'user', content: `Tell me about the grid and its workers, part ${i}.` },
      ]);
    const rows: (string | number)[][] = [
      [
        'max tokens',
        'generated',
        'generation',
        'audit re-score',
        'audit / generation',
        'CPU: generation',
        'CPU: audit',
        'CPU: audit / generation',
        'forward pass alone',
        'forward pass / generation',
      ],
    ];
    const cpuMs = () => {
      const { user, system } = process.cpuUsage();
      return (user + system) / 1000;
    };
    const share = (a: number, b: number) => `${((100 * a) / b).toFixed(1)} %`;
    for (const n of [16, 128, 512]) {
      const gen: number[] = [];
      const score: number[] = [];
      const genCpu: number[] = [];
      const scoreCpu: number[] = [];
      const floor: number[] = [];
      let produced = 0;
      for (let i = 0; i < (quick ? 2 : 5); i++) {
        let t = performance.now();
        let c = cpuMs();
        const g = await engine.generate({
          promptTokenIds: prompt(i),
          params: { maxTokens: n, temperature: 0, topP: 1, seed: null, stop: [] },
        });
        gen.push(performance.now() - t);
        genCpu.push(cpuMs() - c);
        produced = g.outputTokenIds.length;
        t = performance.now();
        c = cpuMs();
        await engine.score({
          promptTokenIds: prompt(i),
          outputTokenIds: g.outputTokenIds,
          topK: 64,
          params: { temperature: 0, topP: 1, seed: null },
        });
        score.push(performance.now() - t);
        scoreCpu.push(cpuMs() - c);
        await plainSeq.clearHistory();
        t = performance.now();
        await plainSeq.evaluateWithoutGeneratingNewTokens([...prompt(i), ...g.outputTokenIds] as Token[]);
        floor.push(performance.now() - t);
      }
      const [g50, s50, gc50, sc50, f50] = [gen, score, genCpu, scoreCpu, floor].map((v) => pct(v, 50)) as [
        number,
        number,
        number,
        number,
        number,
      ];
      rows.push([
        n,
        produced,
        ms(g50),
        ms(s50),
        share(s50, g50),
        ms(gc50),
        ms(sc50),
        share(sc50, gc50),
        ms(f50),
        share(f50, g50),
      ]);
    }
    await engine.close();
    await plainContext.dispose();
    await plain.dispose();
    printTable(
      '5. Audit cost as a share of generation cost (small model, greedy so every output runs to max tokens, medians)',
      rows,
    );
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * 6. Gas of the audit transactions, from the Foundry gas test (the same rows as contracts/README.md): the
 * markdown rows `forge test --match-path test/gas/GasActions.t.sol -vv` prints whose label starts with
 * `fixRandomness`, `commitVote: …`, `revealVote: …` or `finalize: …`.
 */
async function auditGas() {
  const contracts = resolve(import.meta.dirname, '../contracts');
  const forge = resolve(import.meta.dirname, '../node_modules/.bin/forge');
  const { stdout } = await promisify(execFile)(
    forge,
    ['test', '--match-path', 'test/gas/GasActions.t.sol', '-vv'],
    {
      cwd: contracts,
      maxBuffer: 16 * 1024 * 1024,
    },
  );
  const rows = stdout
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => /^\| (fixRandomness|commitVote|revealVote|finalize)\b/.test(l))
    .map((l) =>
      l
        .split('|')
        .slice(1, -1)
        .map((c) => c.trim()),
    );
  printTable('6. Gas of audit transactions (1,024-receipt batch, 4 active validators, k = 3)', [
    ['action', 'gas (tx)', 'execution', 'refund'],
    ...rows,
  ]);
}

/** 7. Side by side with Portkey (bench/side-by-side.ts), on a devnet of its own. */
/**
 * Section 7 on the embedded default (PGlite), then again with the gateway on the PostgreSQL server of
 * `DATABASE_URL` when it is set (a fresh schema, dropped after): the issue's two configurations.
 */
async function portkey() {
  const databases: { name: string; url?: string }[] = [{ name: 'embedded PGlite' }];
  if (process.env.DATABASE_URL) databases.push({ name: 'PostgreSQL', url: process.env.DATABASE_URL });
  for (const database of databases) {
    const dir = await mkdtemp(join(tmpdir(), 'aipg-bench-portkey-'));
    const schema = `bench_${Date.now().toString(36)}`;
    const net = await startDevnet({
      dir,
      port: 0,
      rpcPort: 0,
      model: 'tiny',
      validators: 0,
      logLevel: 'silent',
      // The devnet gives the chain, the payer and the tokenizer; its own gateway takes no load here
      // (the measured one is started by sideBySide, with its settings), so it settles nothing meanwhile.
      settleIntervalMs: 3_600_000,
      payerDeposit: parseAipg('100000'),
    });
    try {
      await sideBySide(net, {
        pct,
        printTable,
        quick,
        dir,
        database: { name: database.name, url: database.url, schema },
      });
    } finally {
      await net.stop();
      await rm(dir, { recursive: true, force: true });
      if (database.url) {
        const admin = new pg.Client({ connectionString: database.url });
        await admin.connect();
        await admin.query(`DROP SCHEMA IF EXISTS ${schema} CASCADE`).finally(() => admin.end());
      }
    }
  }
}

const sections = {
  latency,
  gas,
  'audit-cost': auditCost,
  'audit-gas': auditGas,
  portkey,
  images: () => images({ pct, printTable, quick }),
  history: () => history({ printTable, quick }),
  'db-groups': () => dbGroups({ printTable, quick }),
} as const;
const onlyAt = process.argv.indexOf('--only');
const only = onlyAt >= 0 ? process.argv[onlyAt + 1] : undefined;
if (onlyAt >= 0 && (only === undefined || !Object.hasOwn(sections, only))) {
  console.error(`--only: expected one of ${Object.keys(sections).join(', ')}, got ${only ?? 'nothing'}`);
  process.exit(2);
}
const started = performance.now();
console.log(
  `AIPG grid benchmarks${quick ? ' (quick)' : ''}${only ? ` (${only} only)` : ''} — ${new Date().toISOString()}`,
);
for (const [name, run] of Object.entries(sections)) if (!only || name === only) await run();
console.log(`\ndone in ${((performance.now() - started) / 1000).toFixed(1)} s`);
process.exit(0);
