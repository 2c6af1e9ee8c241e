import { describe, expect, test } from 'vitest';
import { OutputText, type TokenDelta } from '../src/index.ts';

// A byte-level tokenizer: token id = one UTF-8 byte (ids ≥ 256 are end tokens).
const decoder = new TextDecoder();
const detokenize = (ids: readonly number[]) => decoder.decode(Uint8Array.from(ids.filter((i) => i < 256)));
const bytes = (s: string) => [...new TextEncoder().encode(s)];

function run(text: string, stop: string[], end = false) {
  const out = new OutputText(detokenize, stop, true);
  const deltas: TokenDelta[] = [];
  let stopped = false;
  for (const id of [...bytes(text), ...(end ? [256] : [])]) {
    stopped = out.push(id, id >= 256);
    if (stopped) break;
    const d = out.delta();
    if (d) deltas.push(d);
  }
  const last = out.finalDelta();
  if (last) deltas.push(last);
  return { out, deltas, stopped };
}

describe('OutputText', () => {
  test('holds back split UTF-8 characters; deltas concatenate to the text and the ids', () => {
    const { out, deltas } = run('5 € ok 🙂', [], true);
    expect(out.text()).toBe('5 € ok 🙂');
    expect(deltas.map((d) => d.text).join('')).toBe(out.text());
    expect(deltas.flatMap((d) => d.tokenIds)).toEqual(out.ids);
    expect(deltas.some((d) => d.text.includes('\uFFFD'))).toBe(false);
    expect(deltas.find((d) => d.text.includes('€'))?.tokenIds).toEqual([0xe2, 0x82, 0xac]);
    expect(deltas.at(-1)).toEqual({ text: '', tokenIds: [256] });
  });

  test('cuts the text before a stop string but keeps its tokens', () => {
    const { out, deltas, stopped } = run('one two\n\nthree', ['\n\n']);
    expect(stopped).toBe(true);
    expect(out.text()).toBe('one two');
    expect(out.ids).toEqual(bytes('one two\n\n'));
    expect(deltas.map((d) => d.text).join('')).toBe('one two');
    expect(deltas.flatMap((d) => d.tokenIds)).toEqual(out.ids);
  });

  test('releases held-back text that did not become a stop string', () => {
    const { out, deltas } = run('ab abc abd', ['abx']);
    expect(out.text()).toBe('ab abc abd');
    expect(deltas.map((d) => d.text).join('')).toBe('ab abc abd');
    // "a", then "ab" are held back while they could still become "abx"
    expect(deltas[0]).toEqual({ text: 'ab ', tokenIds: bytes('ab ') });
  });

  test('the earliest of several stop strings wins', () => {
    const { out } = run('xx END yy STOP', ['STOP', 'END']);
    expect(out.text()).toBe('xx ');
  });
});
