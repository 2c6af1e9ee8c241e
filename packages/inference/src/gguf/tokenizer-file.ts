/**
 * A model's tokenizer file: its GGUF with every metadata key and no tensors. llama.cpp loads it
 * with `vocabOnly` exactly as it loads the vocabulary of the full file (same tokenizer, same chat
 * template, same special tokens), so a gateway renders and counts tokens the way the worker's
 * engine does without holding the weights. The file is a pure function of the weights file, and
 * its sha256 is registered on chain with the model (`tokenizerHash`), so anyone can derive it
 * from the weights and anyone can check a copy they were handed.
 */
import { ModelFileError } from '../errors.ts';

const MAGIC = 0x46554747; // "GGUF" read as a little-endian u32
/** Byte size of each fixed-size GGUF value type (by type id); 8 = string, 9 = array. */
const FIXED_SIZE: Readonly<Record<number, number>> = {
  0: 1, // u8
  1: 1, // i8
  2: 2, // u16
  3: 2, // i16
  4: 4, // u32
  5: 4, // i32
  6: 4, // f32
  7: 1, // bool
  10: 8, // u64
  11: 8, // i64
  12: 8, // f64
};
const TYPE_STRING = 8;
const TYPE_ARRAY = 9;

/**
 * The tokenizer file of a GGUF (v2 or v3): the same header and metadata bytes with a tensor count
 * of 0 and nothing after the metadata. Throws ModelFileError when the bytes are not a GGUF or the
 * metadata is cut short.
 */
export function extractTokenizerFile(gguf: Uint8Array, source = 'model'): Uint8Array {
  const view = new DataView(gguf.buffer, gguf.byteOffset, gguf.byteLength);
  const fail = (why: string): never => {
    throw new ModelFileError('Not a readable GGUF file', `${source}: ${why}`);
  };
  let at = 0;
  const need = (n: number) => {
    if (at + n > gguf.byteLength) fail(`metadata cut short at byte ${at}`);
  };
  const u32 = () => {
    need(4);
    const v = view.getUint32(at, true);
    at += 4;
    return v;
  };
  const u64 = () => {
    need(8);
    const v = view.getBigUint64(at, true);
    at += 8;
    if (v > BigInt(gguf.byteLength)) fail(`length ${v} at byte ${at - 8} exceeds the file`);
    return Number(v);
  };
  const skipValue = (type: number): void => {
    const fixed = FIXED_SIZE[type];
    if (fixed !== undefined) {
      need(fixed);
      at += fixed;
    } else if (type === TYPE_STRING) {
      const n = u64();
      need(n);
      at += n;
    } else if (type === TYPE_ARRAY) {
      const inner = u32();
      const n = u64();
      const innerFixed = FIXED_SIZE[inner];
      if (innerFixed !== undefined) {
        need(n * innerFixed);
        at += n * innerFixed;
      } else for (let i = 0; i < n; i++) skipValue(inner);
    } else fail(`unknown value type ${type} at byte ${at - 4}`);
  };

  if (u32() !== MAGIC) fail('no GGUF magic');
  const version = u32();
  if (version !== 2 && version !== 3) fail(`GGUF version ${version} is not supported`);
  const tensorCountAt = at;
  u64(); // tensor count: replaced by 0
  const kvCount = u64();
  for (let i = 0; i < kvCount; i++) {
    const keyLength = u64();
    need(keyLength);
    at += keyLength;
    skipValue(u32());
  }
  const out = gguf.slice(0, at);
  new DataView(out.buffer).setBigUint64(tensorCountAt, 0n, true);
  return out;
}
