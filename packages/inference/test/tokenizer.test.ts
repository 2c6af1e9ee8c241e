import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, test } from 'vitest';
import { applyChatTemplate, createTokenizer, MODEL_PRESETS, makeGguf, type Tokenizer } from '../src/index.ts';
import { tinyModel } from './helpers.ts';

let tokenizer: Tokenizer & { close(): Promise<void> };
let dir: string;
beforeAll(async () => {
  tokenizer = await createTokenizer({ modelPath: (await tinyModel()).path });
  dir = await mkdtemp(join(tmpdir(), 'aipg-tokenizer-'));
});
afterAll(async () => {
  await tokenizer?.close();
  await rm(dir, { recursive: true, force: true });
});

const messages = [
  { role: 'system', content: 'Be brief.' },
  { role: 'user', content: 'What is the grid?' },
] as const;

test('a vocabulary-only load tokenizes like the engine contract says', () => {
  expect(tokenizer.vocabSize).toBe(520);
  expect(tokenizer.chatPromptText(messages)).toBe(applyChatTemplate(messages));
  expect(tokenizer.chatPromptTokenIds(messages)).toEqual([
    tokenizer.bosTokenId,
    ...tokenizer.tokenize(applyChatTemplate(messages)),
  ]);
  expect(tokenizer.isEndToken(tokenizer.eosTokenId)).toBe(true);
  expect(() => tokenizer.checkIds([0, 519])).not.toThrow();
  expect(() => tokenizer.checkIds([520])).toThrow(expect.objectContaining({ code: 'INVALID_TOKEN' }));
});

test('token bytes: pieces with their leading space, byte tokens as raw bytes', () => {
  const decode = (id: number) => new TextDecoder().decode(tokenizer.tokenBytes(id));
  const ids = tokenizer.tokenize('€');
  const euro = ids.filter((id) => tokenizer.isByteToken(id));
  expect(euro.map((id) => tokenizer.tokenBytes(id)[0])).toEqual([0xe2, 0x82, 0xac]);
  const word = [...Array(tokenizer.vocabSize).keys()].find((id) => decode(id) === ' node');
  expect(word).toBeDefined();
  expect(tokenizer.detokenize([word!, word!])).toBe('node node');
});

test("another model's Jinja template is rendered, BOS left to the tokenizer", async () => {
  const chatml =
    "{{ bos_token }}{% for m in messages %}{{ '<|' + m['role'] + '|>' + m['content'] + '\\n' }}{% endfor %}{% if add_generation_prompt %}{{ '<|assistant|>' }}{% endif %}";
  const path = join(dir, 'chatml.gguf');
  await writeFile(path, makeGguf({ ...MODEL_PRESETS.tiny.config, chatTemplate: chatml }).bytes);
  const other = await createTokenizer({ modelPath: path });
  try {
    expect(other.chatTemplate).toBe(chatml);
    expect(other.chatPromptText(messages)).toBe(
      '<|system|>Be brief.\n<|user|>What is the grid?\n<|assistant|>',
    );
    expect(other.chatPromptTokenIds(messages)[0]).toBe(other.bosTokenId);
    expect(other.chatPromptTokenIds(messages).filter((t) => t === other.bosTokenId)).toHaveLength(1);
  } finally {
    await other.close();
  }
});

test('a missing file is a ModelFileError', async () => {
  await expect(createTokenizer({ modelPath: join(dir, 'missing.gguf') })).rejects.toMatchObject({
    code: 'MODEL_FILE',
  });
});
