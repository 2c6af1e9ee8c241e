/**
 * Calibrates the judge's thresholds (docs/DESIGN.md §5) on the project's `small` model:
 *
 *   npx tsx packages/validator/scripts/calibrate.ts [--honest 1200] [--dishonest 150] [--seed 1]
 *       [--threads 1] [--out packages/validator/calibration.json]
 *
 * 1. Honest: `--honest` generations through the worker's path (the engine with the canonical
 *    sampler: canonical prompt ids, every sampled id, receipts as the worker builds them) with
 *    varied prompts (chat and completion), max tokens 1–128, greedy, seeded (T 0.3–1.2, top-p
 *    0.8–1) and unseeded sampling, stop strings. Each is re-scored by the re-execute checker and
 *    judged; every threshold's honest statistic is summarised as a margin (threshold − worst
 *    value; negative = a false fail) and the false fails are counted (must be 0). The same jobs
 *    are judged again with every logit perturbed by ±`--noise` nats (default 0.01, 0.05, 0.1:
 *    at 0.01 a probability of 0.2 moves by ~2e-3, the largest drift measured between engine
 *    configurations; 0.1 is the judge's noise budget) to show numerical noise from other
 *    machines never fails an honest job.
 * 2. Dishonest: `--dishonest` jobs per kind (substitute, truncate, fabricate, inflate), with
 *    receipts that commit consistently to what the cheat claims; prints the catch rate of each,
 *    by sampling mode, and from the top-k a cross-check gets.
 * The JSON is written unformatted: `npx biome format --write` it before committing.
 */
import { writeFile } from 'node:fs/promises';
import { parseArgs } from 'node:util';
import { createLlamaEngine, type LlamaEngine } from '@aipg/inference';
import { createModelFiles } from '../src/checkers/models.ts';
import { createReexecuteChecker } from '../src/checkers/reexecute.ts';
import { type CheckResult, crosscheckTopK } from '../src/checkers/types.ts';
import { judge, type Verdict } from '../src/judge/judge.ts';
import { DEFAULT_THRESHOLDS } from '../src/judge/thresholds.ts';
import {
  type AuditCase,
  checkRequest,
  fabricateOther,
  fabricateRandom,
  inflatePad,
  inflatePromptUnits,
  inflateUnits,
  type JobInput,
  judgeJob,
  MODEL_DIR,
  presetModel,
  prng,
  runJob,
  truncateLength,
  truncateStop,
  truncateWithEnd,
  variantModel,
} from '../test/fixtures/jobs.ts';

const { values: flags } = parseArgs({
  options: {
    honest: { type: 'string', default: '1200' },
    dishonest: { type: 'string', default: '150' },
    seed: { type: 'string', default: '1' },
    threads: { type: 'string', default: '1' },
    noise: { type: 'string', default: '0.01,0.05,0.1' },
    out: { type: 'string', default: 'packages/validator/calibration.json' },
  },
});
const HONEST = Number(flags.honest);
const DISHONEST = Number(flags.dishonest);
const THREADS = Number(flags.threads);
const NOISE = flags.noise!.split(',').map(Number);
const rand = prng(Number(flags.seed));
const started = performance.now();

const WORDS =
  'the a this that some every no one two three I you we they it is are was be have has do make take give find know think see come go run build train pay stake earn prove check sign send serve hold read write model token network node worker validator chain block proof receipt price job key road river bridge garden city house music star stone sea sound idea book world system time day night red blue green small big new old early late strong clear open quiet random tiny and or but because while over under near from to into with without of on in at by for about'.split(
    ' ',
  );
const SYSTEM = [
  'You are a helpful assistant.',
  'Answer briefly.',
  'You are a poet of machines.',
  'Be precise.',
];
const STOPS = ['.', '!', ' the', ' and', '?', '€', ' is', ','];

const pick = <T>(xs: readonly T[]) => xs[Math.floor(rand() * xs.length)]!;
const int = (lo: number, hi: number) => lo + Math.floor(rand() * (hi - lo + 1));
const sentence = (n: number) => {
  const w = Array.from({ length: n }, () => pick(WORDS));
  const s = w.join(' ');
  return `${s[0]?.toUpperCase()}${s.slice(1)}${pick(['.', '?', '!', '', ' 5€.'])}`;
};

type Mode = 'greedy' | 'seeded' | 'unseeded';

function randomSpec(i: number): {
  input: JobInput;
  params: AuditCase['params'];
  mode: Mode;
  /** An unseeded job's private seed (drawn here so that runs are reproducible). */
  privateSeed: number;
} {
  const input: JobInput =
    rand() < 0.7
      ? {
          kind: 'chat',
          messages: [
            ...(rand() < 0.3 ? [{ role: 'system' as const, content: pick(SYSTEM) }] : []),
            ...(rand() < 0.2
              ? [
                  { role: 'user' as const, content: sentence(int(1, 12)) },
                  { role: 'assistant' as const, content: sentence(int(1, 12)) },
                ]
              : []),
            { role: 'user' as const, content: sentence(int(1, 40)) },
          ],
        }
      : { kind: 'completion', prompt: sentence(int(1, 60)) };
  // max tokens 1–128, skewed towards short answers like real traffic, with the ends covered.
  const maxTokens =
    i % 50 === 0 ? 1 : i % 50 === 1 ? 128 : Math.min(128, 1 + Math.floor(128 * rand() ** 1.5));
  const stop = rand() < 0.3 ? [pick(STOPS), ...(rand() < 0.3 ? [pick(STOPS)] : [])] : [];
  const r = rand();
  const mode: Mode = r < 0.35 ? 'greedy' : r < 0.85 ? 'seeded' : 'unseeded';
  if (mode === 'greedy')
    return { input, params: { maxTokens, temperature: 0, topP: 1, seed: null, stop }, mode, privateSeed: 0 };
  const temperature = Math.round((0.3 + 0.9 * rand()) * 100) / 100;
  const topP = rand() < 0.25 ? 1 : Math.round((0.8 + 0.2 * rand()) * 100) / 100;
  const seed = mode === 'seeded' ? int(0, 2 ** 31) : null;
  return { input, params: { maxTokens, temperature, topP, seed, stop }, mode, privateSeed: int(0, 2 ** 31) };
}

const modeOf = (c: AuditCase): Mode =>
  c.params.temperature === 0 ? 'greedy' : c.params.seed === null ? 'unseeded' : 'seeded';

/**
 * A checker whose scores carry numerical drift (another machine, another kernel): every logit
 * moves by up to ±`noise` (probabilities by ±noise relative, then renormalised). At 1e-2 a token of
 * p = 0.2 moves by ~2e-3, the largest drift measured between engine configurations (CPU flash
 * attention on vs off, inference README).
 */
function withNoise(res: CheckResult, noise: number, r: () => number): CheckResult {
  if (!res.scores) return res;
  const positions = res.scores.positions.map((p) => {
    const moved = p.top.map((t) => ({
      tokenId: t.tokenId,
      probability: t.probability * Math.exp((2 * r() - 1) * noise),
    }));
    const z = moved.reduce((a, t) => a + t.probability, 0);
    const top = moved
      .map((t) => ({ tokenId: t.tokenId, probability: t.probability / z }))
      .sort((a, b) => b.probability - a.probability || a.tokenId - b.tokenId);
    const at = top.findIndex((t) => t.tokenId === p.tokenId);
    return {
      ...p,
      probability: at >= 0 ? top[at]!.probability : p.probability,
      rank: at >= 0 ? at : p.rank,
      top,
    };
  });
  return { ...res, scores: { positions } };
}

function judgeResult(c: AuditCase, r: CheckResult): Verdict {
  return judge({
    job: judgeJob(c),
    scores: r.scores,
    expectedPromptTokenIds: r.expectedPromptTokenIds,
    modelInfo: r.modelInfo,
  });
}

// ── setup ────────────────────────────────────────────────────────────────────────────────────
const small = await presetModel('small');
const tiny = await presetModel('tiny');
const reseeded = await variantModel('small', { seed: 0x5eee });
const near = await variantModel('small', { blockStd: 0.012 });
const engine = (path: string) => createLlamaEngine({ modelPath: path, threads: THREADS, contextSize: 1024 });
const worker = await engine(small.path);
const substitutes: Record<string, LlamaEngine> = {
  'substitute: tiny preset': await engine(tiny.path),
  'substitute: small, other seed': await engine(reseeded.path),
  'substitute: small, block std 0.012': await engine(near.path),
};
const vocab = { vocabSize: worker.vocabSize, eosTokenId: worker.eosTokenId, isEndToken: worker.isEndToken };
const checker = createReexecuteChecker({
  models: createModelFiles({ dir: MODEL_DIR, files: [small.path] }),
  threads: THREADS,
  contextSize: 1024,
});

// ── honest ───────────────────────────────────────────────────────────────────────────────────
/** Each honest job is judged on the validator's own scores, then on scores with injected noise. */
const LEVELS = [0, ...NOISE] as const;
/** What a cross-check returns: each position's top-k cut to what a worker's score frame carries. */
function crosscheckView(r: CheckResult, outputs: number): CheckResult {
  if (!r.scores) return r;
  const k = crosscheckTopK(r.modelInfo.vocabSize, outputs);
  return { ...r, scores: { positions: r.scores.positions.map((p) => ({ ...p, top: p.top.slice(0, k) })) } };
}
type Row = { c: AuditCase; mode: Mode; verdicts: Verdict[]; crosscheck: Verdict };
const rows: Row[] = [];
const noiseRand = prng(Number(flags.seed) + 99);
for (let i = 0; i < HONEST; i++) {
  const spec = randomSpec(i);
  const c = await runJob(worker, small, spec.input, spec.params, spec.privateSeed);
  const checked = await checker.check(checkRequest(c));
  rows.push({
    c,
    mode: spec.mode,
    verdicts: LEVELS.map((noise) =>
      judgeResult(c, noise === 0 ? checked : withNoise(checked, noise, noiseRand)),
    ),
    crosscheck: judgeResult(c, crosscheckView(checked, c.outputTokenIds.length)),
  });
}
const honestSeconds = (performance.now() - started) / 1000;

const quantiles = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const q = (f: number) => (s.length === 0 ? null : s[Math.min(s.length - 1, Math.floor(f * s.length))]!);
  return { jobs: s.length, min: s[0] ?? null, p0_1: q(0.001), p1: q(0.01), median: q(0.5) };
};
const t = DEFAULT_THRESHOLDS;
/**
 * Per rule, the honest margin of every job: how far its worst token is from failing (in the
 * rule's unit; negative = failed). A job that failed the rule gets -Infinity.
 */
function margins(level: number) {
  const judged = rows.map((r) => ({ r, v: r.verdicts[level]! }));
  const failed = (v: Verdict, code: string) => v.reasons.some((x) => x.code === code);
  const sel = (mode: Mode | null, f: (v: Verdict, c: AuditCase) => number | null) =>
    judged
      .filter((x) => mode === null || x.r.mode === mode)
      .map((x) => f(x.v, x.r.c))
      .filter((x): x is number => x !== null);
  return {
    greedy: {
      threshold: `ln(p_argmax / p_token) ≤ 2 × ${t.logitNoise} nats`,
      unit: 'nats of logit noise to spare',
      ...quantiles(
        sel('greedy', (v) =>
          failed(v, 'GREEDY_MISMATCH')
            ? Number.NEGATIVE_INFINITY
            : t.logitNoise - (v.evidence.stats.maxRequiredNoise ?? 0),
        ),
      ),
    },
    seeded: {
      threshold: `replayed pick under ≤ ${t.logitNoise} nats of logit noise`,
      unit: 'nats of logit noise to spare',
      ...quantiles(
        sel('seeded', (v) =>
          failed(v, 'SEEDED_MISMATCH')
            ? Number.NEGATIVE_INFINITY
            : t.logitNoise - (v.evidence.stats.maxRequiredNoise ?? 0),
        ),
      ),
    },
    topP: {
      threshold: `mass surely ranked before the token < top_p + ${t.topPSlack}`,
      unit: 'top-p mass to spare',
      ...quantiles(
        sel(null, (v, c) =>
          v.evidence.stats.maxMassBefore === null
            ? null
            : c.params.topP + t.topPSlack - v.evidence.stats.maxMassBefore,
        ),
      ),
    },
    floor: {
      threshold: `< ${t.floorMinCount} tokens with ln(pick probability) < −(ln V + ${t.floorExcessNats})`,
      unit: 'nats above the floor (worst token)',
      ...quantiles(
        sel(null, (v) =>
          v.evidence.stats.minFloorExcess === null
            ? null
            : v.evidence.stats.minFloorExcess + t.floorExcessNats,
        ),
      ),
      maxTokensBelowFloor: Math.max(0, ...judged.map((x) => x.v.evidence.stats.belowFloor)),
    },
  };
}
const falseFails = (level: number) =>
  rows
    .filter((r) => r.verdicts[level]!.verdict === 'fail')
    .map((r) => ({ mode: r.mode, params: r.c.params, reasons: r.verdicts[level]!.reasons.slice(0, 3) }));
const count = (f: (r: Row) => boolean) => rows.filter(f).length;

// ── dishonest ────────────────────────────────────────────────────────────────────────────────
type Catch = {
  total: number;
  caught: number;
  /** Caught from the top-k a cross-check gets (MAX_SCORE_TOP_K per position). */
  caughtCrosscheck: number;
  /** Cheats whose claimed output is token for token what the honest worker would have sent. */
  identicalToHonest: number;
  byMode: Record<Mode, { total: number; caught: number }>;
  codes: Record<string, number>;
  missed: {
    mode: Mode;
    maxTokens: number;
    tokens: number;
    topP: number;
    temperature: number;
    soft: string[];
  }[];
};
const catches: Record<string, Catch> = {};
async function tryCase(kind: string, c: AuditCase | undefined, honestOutput?: readonly number[]) {
  if (!c) return;
  const checked = await checker.check(checkRequest(c));
  const v = judgeResult(c, checked);
  const vx = judgeResult(c, crosscheckView(checked, c.outputTokenIds.length));
  catches[kind] ??= {
    total: 0,
    caught: 0,
    caughtCrosscheck: 0,
    identicalToHonest: 0,
    byMode: {
      greedy: { total: 0, caught: 0 },
      seeded: { total: 0, caught: 0 },
      unseeded: { total: 0, caught: 0 },
    },
    codes: {},
    missed: [],
  };
  const entry = catches[kind];
  const m = modeOf(c);
  const same =
    honestOutput !== undefined &&
    c.params.seed !== null &&
    JSON.stringify(honestOutput) === JSON.stringify(c.outputTokenIds);
  if (
    same ||
    (honestOutput !== undefined &&
      m === 'greedy' &&
      JSON.stringify(honestOutput) === JSON.stringify(c.outputTokenIds))
  ) {
    // Nothing to catch: the cheap model produced exactly the claimed model's answer.
    entry.identicalToHonest++;
    return;
  }
  entry.total++;
  entry.byMode[m].total++;
  if (vx.verdict === 'fail') entry.caughtCrosscheck++;
  if (v.verdict === 'fail') {
    entry.caught++;
    entry.byMode[m].caught++;
    for (const code of new Set(v.reasons.map((r) => r.code)))
      entry.codes[code] = (entry.codes[code] ?? 0) + 1;
  } else if (entry.missed.length < 20) {
    entry.missed.push({
      mode: m,
      maxTokens: c.params.maxTokens,
      tokens: c.outputTokenIds.length,
      topP: c.params.topP,
      temperature: c.params.temperature,
      soft: [...new Set(v.soft.map((s) => s.code))],
    });
  }
}

const bases = rows.map((r) => r.c);
const basePick = (i: number, minLen = 1) => {
  for (let k = 0; k < bases.length; k++) {
    const c = bases[(i * 7919 + k) % bases.length]!;
    if (c.outputTokenIds.length >= minLen) return c;
  }
  return undefined;
};
for (let i = 0; i < DISHONEST; i++) {
  for (const [kind, sub] of Object.entries(substitutes)) {
    const spec = randomSpec(i + 1);
    // Generated by another model, claimed as `small`: prompt ids are the same (shared vocabulary).
    const cheat = await runJob(sub, small, spec.input, spec.params, spec.privateSeed);
    const reference =
      spec.mode === 'unseeded'
        ? undefined
        : await runJob(worker, small, spec.input, spec.params, spec.privateSeed);
    await tryCase(kind, cheat, reference?.outputTokenIds);
  }
  const b = basePick(i, 2);
  if (b) {
    const keep = Math.max(1, Math.floor(b.outputTokenIds.length / 2));
    await tryCase('truncate: cut, claim length', truncateLength(b, keep));
    await tryCase('truncate: cut, claim stop', truncateStop(b, keep));
    await tryCase('truncate: cut + end token', truncateWithEnd(b, keep, vocab));
  }
  const f = basePick(i + 1, 2);
  if (f) {
    await tryCase('fabricate: random tokens', fabricateRandom(f, rand, vocab));
    const other = basePick(i + 2, 2);
    if (other && other.jobId !== f.jobId)
      await tryCase("fabricate: another prompt's output", fabricateOther(f, other, vocab), f.outputTokenIds);
    await tryCase('inflate: output units', inflateUnits(f, 1 + Math.floor(rand() * 20)));
    await tryCase('inflate: prompt units', inflatePromptUnits(f, 1 + Math.floor(rand() * 20)));
    await tryCase('inflate: pad after the end', inflatePad(f, 1 + Math.floor(rand() * 8), rand, vocab));
  }
}

// ── report ───────────────────────────────────────────────────────────────────────────────────
const seconds = (performance.now() - started) / 1000;
const results = {
  command: `npx tsx packages/validator/scripts/calibrate.ts --honest ${HONEST} --dishonest ${DISHONEST} --seed ${flags.seed} --threads ${THREADS} --noise ${NOISE.join(',')}`,
  model: { name: small.name, weightsHash: small.weightsHash },
  thresholds: t,
  honest: {
    jobs: rows.length,
    byMode: {
      greedy: count((r) => r.mode === 'greedy'),
      seeded: count((r) => r.mode === 'seeded'),
      unseeded: count((r) => r.mode === 'unseeded'),
    },
    chat: count((r) => r.c.input.kind === 'chat'),
    withStopStrings: count((r) => r.c.params.stop.length > 0),
    finish: {
      stop: count((r) => r.c.finishReason === 'stop'),
      length: count((r) => r.c.finishReason === 'length'),
    },
    outputTokens: rows.reduce((a, r) => a + r.c.outputTokenIds.length, 0),
    withSoftSignals: count((r) => r.verdicts[0]!.soft.length > 0),
    byNoise: LEVELS.map((noise, level) => ({
      noise,
      falseFails: falseFails(level),
      margins: margins(level),
    })),
    crosscheckFalseFails: rows
      .filter((r) => r.crosscheck.verdict === 'fail')
      .map((r) => ({ mode: r.mode, params: r.c.params, reasons: r.crosscheck.reasons.slice(0, 3) })),
  },
  dishonest: Object.fromEntries(
    Object.entries(catches).map(([k, c]) => [k, { ...c, rate: c.total ? c.caught / c.total : null }]),
  ),
  seconds: { honest: honestSeconds, total: seconds },
};
await writeFile(flags.out!, `${JSON.stringify(results, null, 2)}\n`);

const pct = (a: number, b: number) => (b === 0 ? '–' : `${((100 * a) / b).toFixed(1)}%`);
const f4 = (x: number | null) =>
  x === null ? '–' : x === Number.NEGATIVE_INFINITY ? 'FAIL' : x.toPrecision(3);
console.log(
  `honest jobs: ${rows.length} (${JSON.stringify(results.honest.byMode)}), ${results.honest.outputTokens} output tokens`,
);
console.log(
  `false fails: ${results.honest.byNoise.map((b) => `${b.falseFails.length} at ±${b.noise} nats of logit noise`).join('; ')}; ${results.honest.crosscheckFalseFails.length} from a cross-check's top-${crosscheckTopK(worker.vocabSize, 128)}`,
);
console.log(
  `\n| rule | fails when | unit | jobs | min | p0.1 | p1 | median | ${NOISE.map((n) => `min, ±${n} noise`).join(' | ')} |`,
);
console.log(`| --- | --- | --- | --- | --- | --- | --- | --- | ${NOISE.map(() => '---').join(' | ')} |`);
const base = results.honest.byNoise[0]!.margins;
for (const key of Object.keys(base) as (keyof typeof base)[]) {
  const m = base[key];
  const noisy = results.honest.byNoise.slice(1).map((b) => f4(b.margins[key].min));
  console.log(
    `| ${key} | ${m.threshold} | ${m.unit} | ${m.jobs} | ${f4(m.min)} | ${f4(m.p0_1)} | ${f4(m.p1)} | ${f4(m.median)} | ${noisy.join(' | ')} |`,
  );
}
console.log(
  '\n| dishonest worker | caught | greedy | seeded | unseeded | caught from a cross-check top-k | identical to honest (not counted) | main reasons |',
);
console.log('| --- | --- | --- | --- | --- | --- | --- | --- |');
for (const [k, c] of Object.entries(catches)) {
  const codes = Object.entries(c.codes)
    .sort((a, b) => b[1] - a[1])
    .slice(0, 3)
    .map(([code, n]) => `${code} ${n}`)
    .join(', ');
  const bm = (m: Mode) => `${c.byMode[m].caught}/${c.byMode[m].total}`;
  console.log(
    `| ${k} | ${c.caught}/${c.total} (${pct(c.caught, c.total)}) | ${bm('greedy')} | ${bm('seeded')} | ${bm('unseeded')} | ${c.caughtCrosscheck}/${c.total} (${pct(c.caughtCrosscheck, c.total)}) | ${c.identicalToHonest} | ${codes} |`,
  );
}
console.log(`\n${seconds.toFixed(0)} s (honest ${honestSeconds.toFixed(0)} s); results in ${flags.out}`);

await checker.close();
await worker.close();
for (const e of Object.values(substitutes)) await e.close();
