/**
 * Tokens per second of each preset on one CPU thread:
 *   npx tsx packages/inference/scripts/bench.ts [--threads 1] [--tokens 2000] [--dir /tmp/aipg-models]
 * Decode speed is measured over many jobs (sampled at temperature 1, and greedy) until `--tokens`
 * tokens were generated; scoring is one teacher-forced pass over a 200-token output.
 */
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { createLlamaEngine, ensureModel, MODEL_PRESETS, type ModelPresetName } from '../src/index.ts';

const { values } = parseArgs({
  options: {
    threads: { type: 'string', default: '1' },
    tokens: { type: 'string', default: '2000' },
    dir: { type: 'string', default: join(tmpdir(), 'aipg-models') },
  },
});
const threads = Number(values.threads);
const target = Number(values.tokens);

console.log(`threads ${threads}, ${target} generated tokens per preset`);
console.log(
  'preset | parameters | file | load ms (first includes llama.cpp init) | sampled tok/s | greedy tok/s | score 200 tokens ms',
);
for (const preset of Object.keys(MODEL_PRESETS) as ModelPresetName[]) {
  const model = await ensureModel({ dir: values.dir, preset });
  let t = performance.now();
  const engine = await createLlamaEngine({ modelPath: model.path, threads, contextSize: 1024 });
  const loadMs = performance.now() - t;
  const prompt = engine.chatPromptTokenIds([{ role: 'user', content: 'Tell me a story about the grid.' }]);

  // Decode rate over many short jobs (each prompt different, so greedy runs differ too).
  const rate = async (temperature: number) => {
    let tokens = 0;
    let ms = 0;
    for (let i = 0; tokens < target; i++) {
      const g = await engine.generate({
        promptTokenIds: engine.chatPromptTokenIds([
          { role: 'user', content: `Tell me story ${i} about the grid.` },
        ]),
        params: { maxTokens: 256, temperature, topP: 1, seed: i, stop: [] },
      });
      tokens += g.outputTokenIds.length - 1; // the first token's time is the prefill's
      ms += g.totalMs - g.ttftMs;
    }
    return (tokens / ms) * 1000;
  };
  const decode = await rate(1);
  const greedy = await rate(0);

  // A 200-token output to score: sampled sentences strung together (their end tokens dropped).
  const output: number[] = [];
  for (let seed = 0; output.length < 200; seed++) {
    const g = await engine.generate({
      promptTokenIds: [...prompt, ...output],
      params: { maxTokens: 200 - output.length, temperature: 1, topP: 1, seed, stop: [] },
    });
    output.push(...g.outputTokenIds.filter((id) => !engine.isEndToken(id)));
  }
  t = performance.now();
  await engine.score({ promptTokenIds: prompt, outputTokenIds: output, topK: 5 });
  const scoreMs = performance.now() - t;
  console.log(
    [
      preset,
      model.parameterCount.toLocaleString('en'),
      `${(model.bytes / 1e6).toFixed(2)} MB`,
      loadMs.toFixed(0),
      decode.toFixed(0),
      greedy.toFixed(0),
      scoreMs.toFixed(1),
    ].join(' | '),
  );
  await engine.close();
}
