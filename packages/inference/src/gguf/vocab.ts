/**
 * The vocabulary of the generated models and the word classes the generator plants in the random
 * weights, so that sampled text reads like (nonsense) sentences that end: determiners before
 * nouns, verbs after nouns, a full stop then `</s>`. Changing anything here changes every
 * generated file and therefore the weights hashes pinned in presets.ts.
 */

/** SentencePiece token types (llama.cpp `llama_token_type`). */
export const TokenType = { normal: 1, unknown: 2, control: 3, byte: 6 } as const;

/** Word classes; `junk` tokens (bytes, single characters, role markers) are never generated. */
export const WORD_CLASSES = [
  'start',
  'det',
  'adj',
  'noun',
  'verb',
  'prep',
  'conj',
  'pron',
  'num',
  'comma',
  'punct',
  'end',
  'euro1',
  'euro2',
  'euro3',
  'junk',
] as const;
export type WordClass = (typeof WORD_CLASSES)[number];

const WORDS: Partial<Record<WordClass, readonly string[]>> = {
  det: [
    'the',
    'a',
    'an',
    'this',
    'that',
    'every',
    'some',
    'each',
    'no',
    'our',
    'your',
    'its',
    'their',
    'one',
  ],
  adj: [
    'new',
    'old',
    'big',
    'small',
    'fast',
    'slow',
    'good',
    'open',
    'fair',
    'local',
    'public',
    'honest',
    'secure',
    'bright',
    'quiet',
    'simple',
    'strong',
    'green',
    'blue',
    'red',
    'warm',
    'cold',
    'early',
    'late',
    'free',
    'true',
    'random',
    'tiny',
    'great',
    'clear',
  ],
  noun: [
    'node',
    'model',
    'chain',
    'token',
    'block',
    'proof',
    'work',
    'network',
    'worker',
    'validator',
    'stake',
    'job',
    'grid',
    'power',
    'user',
    'gateway',
    'receipt',
    'answer',
    'question',
    'world',
    'time',
    'day',
    'way',
    'system',
    'machine',
    'river',
    'city',
    'garden',
    'light',
    'sound',
    'story',
    'price',
    'market',
    'tree',
    'house',
    'road',
    'music',
    'idea',
    'game',
    'book',
    'cat',
    'dog',
    'sun',
    'moon',
    'star',
    'sea',
    'fire',
    'stone',
    'bridge',
    'key',
  ],
  verb: [
    'is',
    'runs',
    'makes',
    'sees',
    'finds',
    'holds',
    'needs',
    'sends',
    'builds',
    'keeps',
    'moves',
    'signs',
    'checks',
    'pays',
    'earns',
    'grows',
    'shows',
    'brings',
    'writes',
    'reads',
    'knows',
    'likes',
    'opens',
    'follows',
    'starts',
    'gives',
    'takes',
    'joins',
    'trusts',
    'serves',
  ],
  prep: ['of', 'to', 'in', 'on', 'with', 'for', 'from', 'by', 'at', 'over', 'under', 'near', 'into', 'after'],
  conj: ['and', 'but', 'or', 'so', 'while', 'because'],
  pron: ['it', 'we', 'they', 'he', 'she', 'you', 'I', 'someone', 'everyone'],
  num: ['1', '2', '3', '5', '7', '10', '12', '20', '42', '100'],
};

/**
 * Class-to-class log weights (nats) of the planted grammar: `GRAMMAR[from][to]`. Anything not
 * listed is very unlikely; `junk` is never generated. A token's logit is its class weight minus the
 * log of its class size plus per-token and per-context noise, so these are roughly class-level log
 * probabilities.
 */
export const GRAMMAR: Partial<Record<WordClass, Partial<Record<WordClass, number>>>> = {
  start: { det: 0.6, pron: 0.6, adj: -1, num: -2 },
  det: { adj: 0, noun: 1.2, num: -1.5 },
  adj: { noun: 1, adj: -1.5, conj: -2 },
  noun: { verb: 0.8, prep: 0.2, punct: 0, comma: -1.2, conj: -0.8 },
  verb: { det: 0.8, prep: -0.3, adj: -0.6, pron: -1, num: -1 },
  prep: { det: 1, noun: -0.5, pron: -1, num: -1.5 },
  conj: { det: 0.5, pron: 0.5, verb: -0.5 },
  pron: { verb: 1.5, conj: -2 },
  num: { noun: 0.6, euro1: 0, punct: -1.2 },
  euro1: { euro2: 6 },
  euro2: { euro3: 6 },
  euro3: { punct: 0, prep: -0.5, conj: -0.5 },
  comma: { conj: 0.5, det: 0.3, pron: 0.3 },
  punct: { end: 1.5, det: -1, pron: -1 },
  end: { det: 0.6, pron: 0.6 },
};
export const UNLISTED_WEIGHT = -8;
export const JUNK_WEIGHT = -16;

export type VocabEntry = { piece: string; type: number; score: number; cls: WordClass };

export const UNK_ID = 0;
export const BOS_ID = 1;
export const EOS_ID = 2;

/** The euro sign has no piece of its own: it is generated as three byte tokens (UTF-8 E2 82 AC). */
const EURO_BYTES: Partial<Record<number, WordClass>> = { 226: 'euro1', 130: 'euro2', 172: 'euro3' };

export function buildVocab(): VocabEntry[] {
  const v: VocabEntry[] = [
    { piece: '<unk>', type: TokenType.unknown, score: 0, cls: 'junk' },
    { piece: '<s>', type: TokenType.control, score: 0, cls: 'junk' },
    { piece: '</s>', type: TokenType.control, score: 0, cls: 'end' },
    { piece: '<|system|>', type: TokenType.control, score: 0, cls: 'junk' },
    { piece: '<|user|>', type: TokenType.control, score: 0, cls: 'junk' },
    { piece: '<|assistant|>', type: TokenType.control, score: 0, cls: 'junk' },
  ];
  for (let b = 0; b < 256; b++) {
    const piece = `<0x${b.toString(16).toUpperCase().padStart(2, '0')}>`;
    v.push({ piece, type: TokenType.byte, score: 0, cls: EURO_BYTES[b] ?? 'junk' });
  }
  // Single characters let prompts tokenize without byte fallback; they are never generated.
  v.push({ piece: '▁', type: TokenType.normal, score: -1000, cls: 'junk' });
  for (let c = 33; c < 127; c++) {
    const ch = String.fromCharCode(c);
    const cls: WordClass = ch === ',' ? 'comma' : ch === '.' || ch === '!' || ch === '?' ? 'punct' : 'junk';
    v.push({ piece: ch, type: TokenType.normal, score: -1000 - c, cls });
  }
  let score = -1;
  for (const cls of WORD_CLASSES) {
    for (const w of WORDS[cls] ?? []) v.push({ piece: `▁${w}`, type: TokenType.normal, score: score--, cls });
  }
  return v;
}

/**
 * Class of a token when it is the *previous* token (the context the next token is predicted
 * from): role markers, BOS and byte/character tokens of a prompt behave like a sentence start.
 */
export function contextClass(e: VocabEntry): WordClass {
  return e.cls === 'junk' ? 'start' : e.cls;
}
