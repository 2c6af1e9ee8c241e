/**
 * 8–10. Images, on the devnet's image model `aipg-tiny-ldm` (`@aipg/diffusion`'s embedded ONNX pipeline
 * on CPU, 1 thread), guidance 7.5 (two UNet rows per step, the gateway's default), DDIM, PNG, one image
 * per job, at 256×256 / 8 steps and 512×512 / 20 steps:
 *  8. images per minute and ms per step with the pipeline called directly, in this process;
 *  9. what a validator spends to check one image job, as a share of that job's generation: k randomly
 *     chosen committed steps re-run (`pipeline.step`, each compared with the committed next latent),
 *     the step-0 seed check (`pipeline.initialLatent`) and the final latent decoded and encoded
 *     (`pipeline.decode`) and hashed to compare with the delivered image, for k = 1, 2, 4 (the Merkle
 *     proofs of the opened latents, `verifyTrajectoryStep`, timed apart);
 * 10. what the grid adds to an image job: the same jobs (same prompt, parameters and seed: the bytes are
 *     checked equal) through the devnet with the official `openai` client's `images.generate`
 *     (b64_json) against the pipeline directly, interleaved, sequential.
 * Tables 8 and 9 run before the devnet starts (nothing else in the process); table 10 with it running.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  hashImage,
  type ImageParams,
  imagePromptTokenIds,
  trajectoryTree,
  verifyTrajectoryStep,
} from '@aipg/core';
import {
  createDiffusionPipeline,
  type DiffusionPipeline,
  ensureImageModel,
  relativeL2,
} from '@aipg/diffusion';
import OpenAI from 'openai';
import { startDevnet } from '../packages/cli/src/devnet/start-devnet.ts';

type Pct = (values: number[], p: number) => number;
type Table = (title: string, rows: (string | number)[][]) => void;

const PROMPT = 'a lighthouse at dusk, oil painting';
const NEGATIVE = 'blurry';
const GUIDANCE = 7.5;
const KS = [1, 2, 4] as const;

const SIZES = [
  { width: 256, height: 256, steps: 8 },
  { width: 512, height: 512, steps: 20 },
] as const;
type Size = (typeof SIZES)[number];

const params = (s: Size, seed: number): ImageParams => ({
  width: s.width,
  height: s.height,
  steps: s.steps,
  guidance: GUIDANCE,
  seed,
  n: 1,
  scheduler: 'ddim',
  format: 'png',
});

const cpuMs = () => {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
};
const f1 = (v: number) => v.toFixed(1);
const share = (v: number) => `${(100 * v).toFixed(1)} %`;
const label = (s: Size) => `${s.width}×${s.height}`;

/** k distinct steps of 0…steps−1, from a seeded xorshift32 (the same picks on every run). */
function pickSteps(k: number, steps: number, seed: number): number[] {
  let x = (seed * 0x9e3779b1 + 1) >>> 0 || 1;
  const picked = new Set<number>();
  while (picked.size < Math.min(k, steps)) {
    x ^= x << 13;
    x >>>= 0;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    picked.add(x % steps);
  }
  return [...picked].sort((a, b) => a - b);
}

export async function images({ pct, printTable, quick }: { pct: Pct; printTable: Table; quick: boolean }) {
  const command = `npm run bench -- --only images${quick ? ' --quick' : ''}`;
  const dir = await mkdtemp(join(tmpdir(), 'aipg-bench-images-'));
  const promptTokenIds = imagePromptTokenIds(PROMPT);
  const negativeTokenIds = imagePromptTokenIds(NEGATIVE);
  let pipeline: DiffusionPipeline | undefined;
  let failedChecks = 0;
  try {
    // The devnet's model folder, written here first: the devnet finds it and the direct pipeline reads it.
    const model = await ensureImageModel('tiny', { dir: join(dir, 'models') });
    pipeline = await createDiffusionPipeline({ modelDir: model.dir, threads: 1 });
    const p = pipeline;

    // 8 and 9: generation, then the audits of that job, per job.
    const throughputRows: (string | number)[][] = [
      ['size', 'steps', 'images', 'ms / image p50', 'ms / image p90', 'ms / step p50', 'images / min'],
    ];
    const auditRows: (string | number)[][] = [
      [
        'size',
        'steps',
        'k',
        'generation p50',
        'k re-steps',
        'seed check',
        'decode + hash',
        'audit p50',
        'audit / generation',
        'CPU: audit / generation',
        '+ Merkle proofs',
      ],
    ];
    for (const size of SIZES) {
      const jobs = quick ? (size.width === 256 ? 6 : 3) : size.width === 256 ? 30 : 12;
      for (let w = 0; w < 2; w++)
        await p.generate({ promptTokenIds, negativeTokenIds, params: params(size, w) });
      const gen: number[] = [];
      const genCpu: number[] = [];
      const stepMs: number[] = [];
      const audits = new Map(
        KS.map((k) => [
          k,
          {
            total: [] as number[],
            steps: [] as number[],
            seed: [] as number[],
            decode: [] as number[],
            proofs: [] as number[],
            ratio: [] as number[],
            cpuRatio: [] as number[],
          },
        ]),
      );
      for (let j = 0; j < jobs; j++) {
        const job = { promptTokenIds, negativeTokenIds, params: params(size, 1000 + j) };
        const c0 = cpuMs();
        const t0 = performance.now();
        let last = t0;
        const { images: out } = await p.generate({
          ...job,
          onProgress: ({ step }) => {
            const now = performance.now();
            // The first interval also holds the text encoding.
            if (step > 1) stepMs.push(now - last);
            last = now;
          },
        });
        const genMs = performance.now() - t0;
        const genCpuMs = cpuMs() - c0;
        gen.push(genMs);
        genCpu.push(genCpuMs);
        const { latents, bytes, trajectoryRoot } = out[0]!;
        // What the validator holds from the receipt and the evidence, before it starts.
        const deliveredHash = hashImage(bytes);
        const tree = trajectoryTree(latents);

        for (const k of KS) {
          const a = audits.get(k)!;
          const picks = pickSteps(k, size.steps, j * 31 + k);
          const c1 = cpuMs();
          const t1 = performance.now();
          const initial = p.initialLatent(job.params, 0);
          if (relativeL2(initial, latents[0]!) !== 0) failedChecks++;
          const t2 = performance.now();
          for (const from of picks) {
            const next = await p.step({ ...job, image: 0, from, latent: latents[from]! });
            if (relativeL2(next, latents[from + 1]!) !== 0) failedChecks++;
          }
          const t3 = performance.now();
          const decoded = await p.decode(latents[size.steps]!, 'png', size);
          if (hashImage(decoded) !== deliveredHash) failedChecks++;
          const t4 = performance.now();
          const auditCpu = cpuMs() - c1;
          const opened = [...new Set([0, ...picks.flatMap((s) => [s, s + 1]), size.steps])];
          for (const s of opened)
            if (!verifyTrajectoryStep(trajectoryRoot, s, latents[s]!, tree.proof(s))) failedChecks++;
          const t5 = performance.now();
          a.seed.push(t2 - t1);
          a.steps.push(t3 - t2);
          a.decode.push(t4 - t3);
          a.total.push(t4 - t1);
          a.proofs.push(t5 - t4);
          a.ratio.push((t4 - t1) / genMs);
          a.cpuRatio.push(auditCpu / genCpuMs);
        }
      }
      const sum = gen.reduce((x, y) => x + y, 0);
      throughputRows.push([
        label(size),
        size.steps,
        jobs,
        f1(pct(gen, 50)),
        f1(pct(gen, 90)),
        f1(pct(stepMs, 50)),
        ((60_000 * jobs) / sum).toFixed(0),
      ]);
      for (const k of KS) {
        const a = audits.get(k)!;
        auditRows.push([
          label(size),
          size.steps,
          k,
          `${f1(pct(gen, 50))} ms`,
          `${f1(pct(a.steps, 50))} ms`,
          `${pct(a.seed, 50).toFixed(2)} ms`,
          `${f1(pct(a.decode, 50))} ms`,
          `${f1(pct(a.total, 50))} ms`,
          share(pct(a.ratio, 50)),
          share(pct(a.cpuRatio, 50)),
          `${pct(a.proofs, 50).toFixed(2)} ms`,
        ]);
      }
    }
    printTable(
      `8. Images, the embedded pipeline called directly (aipg-tiny-ldm, 1 thread, guidance 7.5, DDIM, PNG; images/min = 60,000 / mean ms per image; ${command})`,
      throughputRows,
    );
    printTable(
      `9. Image audit cost as a share of generation (per job: k re-run committed steps + step-0 seed check + decode and hash of the final latent; medians of per-job ratios; Merkle proofs of the opened latents timed apart; ${command})`,
      auditRows,
    );
    if (failedChecks > 0) console.log(`  (warning: ${failedChecks} audit checks failed on honest jobs)`);

    // 10: the same jobs through the devnet (its worker runs its own pipeline, 1 thread, in this process).
    const net = await startDevnet({
      dir,
      port: 0,
      rpcPort: 0,
      model: 'tiny',
      validators: 0,
      logLevel: 'silent',
      settleIntervalMs: 3_600_000,
      gatewayOptions: {
        'rateLimit.requestsPerMinute': 1_000_000,
        'rateLimit.burst': 100_000,
        'rateLimit.payerRequestsPerMinute': 1_000_000,
        'rateLimit.payerBurst': 100_000,
      },
    });
    try {
      const client = new OpenAI({ baseURL: `${net.gatewayUrl}/v1`, apiKey: net.apiKey, maxRetries: 0 });
      const rows: (string | number)[][] = [
        [
          'size',
          'steps',
          'path',
          'images',
          'p50 ms',
          'p90 ms',
          'added p50 ms',
          'median paired diff ms',
          'ratio p50',
          'CPU ms / image',
          'added CPU ms',
        ],
      ];
      let mismatches = 0;
      for (const size of SIZES) {
        const n = quick ? (size.width === 256 ? 8 : 3) : size.width === 256 ? 30 : 15;
        const warmups = 2;
        const direct: number[] = [];
        const grid: number[] = [];
        const diffs: number[] = [];
        const directCpu: number[] = [];
        const gridCpu: number[] = [];
        for (let i = -warmups; i < n; i++) {
          const seed = 5000 + warmups + i;
          let c = cpuMs();
          let t = performance.now();
          const d = await p.generate({ promptTokenIds, negativeTokenIds, params: params(size, seed) });
          const directMs = performance.now() - t;
          const directCpuMs = cpuMs() - c;
          c = cpuMs();
          t = performance.now();
          const res = await client.images.generate({
            model: net.imageModel.name,
            prompt: PROMPT,
            size: `${size.width}x${size.height}` as '256x256' | '512x512',
            response_format: 'b64_json',
            output_format: 'png',
            // grid extensions
            ...({
              steps: size.steps,
              seed,
              negative_prompt: NEGATIVE,
              guidance: GUIDANCE,
              scheduler: 'ddim',
            } as object),
          });
          const gridMs = performance.now() - t;
          const gridCpuMs = cpuMs() - c;
          const bytes = Buffer.from(res.data![0]!.b64_json!, 'base64');
          if (!bytes.equals(d.images[0]!.bytes)) mismatches++;
          if (i < 0) continue; // warm-up
          direct.push(directMs);
          grid.push(gridMs);
          diffs.push(gridMs - directMs);
          directCpu.push(directCpuMs);
          gridCpu.push(gridCpuMs);
        }
        const d50 = pct(direct, 50);
        const g50 = pct(grid, 50);
        const dc50 = pct(directCpu, 50);
        const gc50 = pct(gridCpu, 50);
        rows.push([
          label(size),
          size.steps,
          'pipeline called directly',
          n,
          f1(d50),
          f1(pct(direct, 90)),
          '',
          '',
          '',
          f1(dc50),
          '',
        ]);
        rows.push([
          label(size),
          size.steps,
          'openai images.generate → gateway → worker',
          n,
          f1(g50),
          f1(pct(grid, 90)),
          f1(g50 - d50),
          f1(pct(diffs, 50)),
          `${(g50 / d50).toFixed(2)}×`,
          f1(gc50),
          f1(gc50 - dc50),
        ]);
      }
      printTable(
        `10. What the grid adds to an image job (same jobs, b64_json PNG, sequential, direct and grid interleaved; CPU = this process's, which holds the gateway, the worker and its pipeline; devnet, 2 cores shared; ${command})`,
        rows,
      );
      if (mismatches > 0)
        console.log(`  (warning: ${mismatches} grid images differ from the same job run directly)`);
    } finally {
      await net.stop();
    }
  } finally {
    await pipeline?.close();
    await rm(dir, { recursive: true, force: true });
  }
}
