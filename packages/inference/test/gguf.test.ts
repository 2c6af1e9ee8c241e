import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Template } from '@huggingface/jinja';
import { readGgufFileInfo } from 'node-llama-cpp';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  applyChatTemplate,
  CHAT_TEMPLATE,
  createLlamaEngine,
  createTokenizer,
  ensureModel,
  extractTokenizerFile,
  MODEL_PRESETS,
  ModelFileError,
  makeGguf,
} from '../src/index.ts';
import { addLlamaLogSink } from '../src/llama.ts';

const sha256 = (b: Uint8Array) => `0x${createHash('sha256').update(b).digest('hex')}`;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-gguf-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('makeGguf', () => {
  test('is deterministic and matches the pinned hashes', () => {
    for (const preset of Object.values(MODEL_PRESETS)) {
      const a = makeGguf(preset.config);
      const b = makeGguf(preset.config);
      expect(sha256(a.bytes)).toBe(sha256(b.bytes));
      expect(sha256(a.bytes)).toBe(preset.weightsHash);
      expect(a.parameterCount).toBe(preset.parameterCount);
    }
  });

  test('tiny is ~100k parameters, context half a million and small a few million', () => {
    expect(MODEL_PRESETS.tiny.parameterCount).toBeGreaterThan(50_000);
    expect(MODEL_PRESETS.tiny.parameterCount).toBeLessThan(200_000);
    expect(MODEL_PRESETS.context.parameterCount).toBeLessThan(1_000_000);
    expect(MODEL_PRESETS.small.parameterCount).toBeGreaterThan(1_000_000);
    expect(MODEL_PRESETS.small.parameterCount).toBeLessThan(10_000_000);
  });

  test('another seed gives other weights', () => {
    const a = makeGguf(MODEL_PRESETS.tiny.config);
    const b = makeGguf({ ...MODEL_PRESETS.tiny.config, seed: 1 });
    expect(sha256(a.bytes)).not.toBe(sha256(b.bytes));
    expect(a.bytes.length).toBe(b.bytes.length);
  });

  test('rejects an impossible shape', () => {
    expect(() => makeGguf({ ...MODEL_PRESETS.tiny.config, headCount: 5 })).toThrow(RangeError);
    const context = MODEL_PRESETS.context.config.context;
    // More topics than a head holds, or a model whose heads do not share key/value heads.
    expect(() => makeGguf({ ...MODEL_PRESETS.context.config, context: { ...context, topics: 40 } })).toThrow(
      RangeError,
    );
    expect(() => makeGguf({ ...MODEL_PRESETS.context.config, headCountKv: 4 })).toThrow(RangeError);
  });

  test('editWeights: the weights as stored; unchanged they write the same bytes, fewer levels a coarser Q8_0 grid', () => {
    const config = MODEL_PRESETS.small.config;
    const seen: string[] = [];
    const same = makeGguf(config, {
      editWeights: (tensors) => {
        for (const t of tensors) seen.push(`${t.name}:${t.type}:${t.levels}`);
      },
    });
    expect(sha256(same.bytes)).toBe(MODEL_PRESETS.small.weightsHash);
    expect(seen).toContain('output.weight:q8_0:127');
    expect(seen).toContain('blk.0.attn_norm.weight:f32:127');

    // 6 bits: every stored int8 of a re-quantized block is a multiple of ⌊127 / 31⌋ = 4.
    const coarse = makeGguf(config, {
      editWeights: (tensors) => {
        for (const t of tensors) if (t.type === 'q8_0') t.levels = 31;
      },
    });
    expect(coarse.bytes.length).toBe(same.bytes.length);
    expect(sha256(coarse.bytes)).not.toBe(MODEL_PRESETS.small.weightsHash);
    const tail = coarse.bytes.subarray(coarse.bytes.length - 34 * 64);
    for (let b = 0; b < 64; b++)
      for (let j = 0; j < 32; j++) expect(Math.abs(((tail[b * 34 + 2 + j]! << 24) >> 24) % 4)).toBe(0);

    expect(() =>
      makeGguf(config, {
        editWeights: (tensors) => {
          tensors[0]!.data = new Float32Array(3);
        },
      }),
    ).toThrow(RangeError);
  });
});

describe('the context preset', () => {
  test("its outputs depend on the prompt: dropping the system message moves a token's log-probability by nats, not hundredths", async () => {
    const shift = async (preset: 'small' | 'context') => {
      const { path } = await ensureModel({ dir, preset });
      const engine = await createLlamaEngine({ modelPath: path, threads: 1, contextSize: 512 });
      try {
        const messages = [
          { role: 'system' as const, content: 'You write about rivers, bridges and the sea.' },
          { role: 'user' as const, content: 'Tell me 3 things about the world today' },
        ];
        const withSystem = engine.chatPromptTokenIds(messages);
        const without = engine.chatPromptTokenIds(messages.slice(1));
        const { outputTokenIds } = await engine.generate({
          promptTokenIds: withSystem,
          params: { maxTokens: 32, temperature: 0.9, topP: 1, seed: 5, stop: [] },
        });
        const a = await engine.score({ promptTokenIds: withSystem, outputTokenIds, topK: 1 });
        const b = await engine.score({ promptTokenIds: without, outputTokenIds, topK: 1 });
        const d = a.positions.map((p, i) => Math.abs(Math.log(p.probability / b.positions[i]!.probability)));
        return { max: Math.max(...d), mean: d.reduce((x, y) => x + y, 0) / d.length };
      } finally {
        await engine.close();
      }
    };
    const context = await shift('context');
    const small = await shift('small');
    expect(context.mean).toBeGreaterThan(0.3);
    expect(context.max).toBeGreaterThan(1.5);
    expect(small.max).toBeLessThan(0.3);
    expect(context.mean).toBeGreaterThan(10 * small.mean);
  });
});

describe('chat template', () => {
  const conversations = [
    [{ role: 'user', content: 'hi' }],
    [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'What is the grid?' },
      { role: 'assistant', content: 'A network.' },
      { role: 'user', content: 'Ünïcode ✓ and\nnew lines' },
    ],
  ] as const;

  test('the Jinja template renders exactly BOS + applyChatTemplate', () => {
    const template = new Template(CHAT_TEMPLATE);
    for (const messages of conversations) {
      const rendered = template.render({
        messages,
        bos_token: '<s>',
        eos_token: '</s>',
        add_generation_prompt: true,
      });
      expect(rendered).toBe(`<s>${applyChatTemplate(messages)}`);
    }
    expect(applyChatTemplate(conversations[0])).toBe('<|user|>hi</s><|assistant|>');
  });

  test('the GGUF carries the template and the tokenizer settings', async () => {
    const { path } = await ensureModel({ dir, preset: 'tiny' });
    const info = await readGgufFileInfo(path);
    const md = info.metadata as unknown as {
      tokenizer: { chat_template: string; ggml: Record<string, unknown> };
    };
    expect(md.tokenizer.chat_template).toBe(CHAT_TEMPLATE);
    expect(md.tokenizer.ggml.bos_token_id).toBe(1);
    expect(md.tokenizer.ggml.eos_token_id).toBe(2);
    expect(md.tokenizer.ggml.add_bos_token).toBe(true);
  });
});

describe('ensureModel', () => {
  test('writes once, reuses a good file and replaces a wrong one', async () => {
    const sub = join(dir, 'models');
    const first = await ensureModel({ dir: sub, preset: 'tiny' });
    expect(first).toMatchObject({
      path: join(sub, 'aipg-tiny-llama.gguf'),
      name: 'aipg-tiny-llama',
      weightsHash: MODEL_PRESETS.tiny.weightsHash,
      parameterCount: MODEL_PRESETS.tiny.parameterCount,
    });
    expect(sha256(await readFile(first.path))).toBe(first.weightsHash);
    expect((await stat(first.path)).size).toBe(first.bytes);

    const mtime = (await stat(first.path)).mtimeMs;
    await ensureModel({ dir: sub, preset: 'tiny' });
    expect((await stat(first.path)).mtimeMs).toBe(mtime);

    await writeFile(first.path, 'not a model');
    const again = await ensureModel({ dir: sub, preset: 'tiny' });
    expect(sha256(await readFile(again.path))).toBe(MODEL_PRESETS.tiny.weightsHash);
  });
});

describe('tokenizer files', () => {
  test('are the GGUF without tensors: pinned, vocabulary-only loadable, tokenizing as the full model', async () => {
    const { path, tokenizerPath, tokenizerHash } = await ensureModel({ dir, preset: 'tiny' });
    expect(tokenizerHash).toBe(MODEL_PRESETS.tiny.tokenizerHash);
    const bytes = await readFile(tokenizerPath);
    expect(sha256(bytes)).toBe(tokenizerHash);
    expect(bytes.length).toBeLessThan((await stat(path)).size / 10);
    const info = await readGgufFileInfo(tokenizerPath);
    expect(info.tensorInfo ?? []).toHaveLength(0);
    for (const preset of Object.values(MODEL_PRESETS))
      expect(sha256(extractTokenizerFile(makeGguf(preset.config).bytes))).toBe(preset.tokenizerHash);

    const full = await createTokenizer({ modelPath: path });
    // llama.cpp's failed memory estimate of a tensorless file is expected and kept out of the logs.
    const logged: string[] = [];
    const removeSink = addLlamaLogSink((_, message) => logged.push(message));
    const vocabOnly = await createTokenizer({ modelPath: tokenizerPath }).finally(removeSink);
    expect(logged).toEqual([]);
    try {
      const messages = [
        { role: 'system' as const, content: 'Be brief.' },
        { role: 'user' as const, content: 'Hello wörld 🚀 </s> the grid' },
      ];
      expect(vocabOnly.chatPromptTokenIds(messages)).toEqual(full.chatPromptTokenIds(messages));
      expect(vocabOnly.vocabSize).toBe(full.vocabSize);
      const ids = full.tokenize('the grid serves you.');
      expect(vocabOnly.detokenize(ids)).toBe(full.detokenize(ids));
    } finally {
      await full.close();
      await vocabOnly.close();
    }
  });

  test('a file that is not a GGUF, or is cut short, is refused with ModelFileError', () => {
    const gguf = makeGguf(MODEL_PRESETS.tiny.config).bytes;
    expect(() => extractTokenizerFile(new TextEncoder().encode('not a model'))).toThrow(ModelFileError);
    expect(() => extractTokenizerFile(gguf.slice(0, 200))).toThrow(ModelFileError);
  });

  test('ensureModel rewrites a tokenizer file that was altered', async () => {
    const sub = join(dir, 'tok');
    const first = await ensureModel({ dir: sub, preset: 'tiny' });
    await writeFile(first.tokenizerPath, 'tampered');
    const again = await ensureModel({ dir: sub, preset: 'tiny' });
    expect(sha256(await readFile(again.tokenizerPath))).toBe(MODEL_PRESETS.tiny.tokenizerHash);
  });
});
