/**
 * Timings of the `tiny` preset: ms per denoising step (the UNet with classifier-free guidance, two
 * rows, plus the scheduler) and ms per image (steps, VAE decode, encoding), median of `--runs`.
 *
 *   npx tsx packages/diffusion/scripts/bench.ts [--threads 1] [--runs 5] [--dir /tmp/aipg-models]
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { type ImageFormat, imagePromptTokenIds } from '@aipg/core';
import { createDiffusionPipeline } from '../src/index.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    runs: { type: 'string', default: '5' },
    dir: { type: 'string', default: join(tmpdir(), 'aipg-bench-models') },
  },
});
const threads = Number(values.threads);
const runs = Number(values.runs);
const pipeline = await createDiffusionPipeline({ preset: 'tiny', dir: values.dir, threads });
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

const rows: string[] = [];
for (const [width, height, steps, format] of [
  [256, 256, 8, 'png'],
  [256, 256, 20, 'png'],
  [512, 512, 8, 'png'],
  [512, 512, 20, 'png'],
  [512, 512, 20, 'webp'],
  [512, 512, 20, 'jpeg'],
] as const) {
  const perStep: number[] = [];
  const total: number[] = [];
  for (let r = 0; r <= runs; r++) {
    let last = performance.now();
    const stepMs: number[] = [];
    const { totalMs } = await pipeline.generate({
      promptTokenIds: imagePromptTokenIds('a lighthouse at dusk, oil painting'),
      negativeTokenIds: imagePromptTokenIds('blurry'),
      params: {
        width,
        height,
        steps,
        guidance: 7.5,
        seed: r,
        n: 1,
        scheduler: 'ddim',
        format: format as ImageFormat,
      },
      onProgress: () => {
        const now = performance.now();
        stepMs.push(now - last);
        last = now;
      },
    });
    if (r === 0) continue; // warm-up
    perStep.push(median(stepMs.slice(1)));
    total.push(totalMs);
  }
  rows.push(
    `| ${width}×${height} | ${steps} | ${format} | ${median(perStep).toFixed(1)} | ${median(total).toFixed(0)} |`,
  );
}
await pipeline.close();
console.log(`threads ${threads}, median of ${runs} runs, guidance 7.5 (two UNet rows per step)`);
console.log('| size | steps | format | ms / step | ms / image |');
console.log('|---|---|---|---|---|');
for (const row of rows) console.log(row);
