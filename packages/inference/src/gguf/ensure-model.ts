import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hex } from 'viem';
import { ModelFileError } from '../errors.ts';
import { makeGguf } from './make-gguf.ts';
import { MODEL_PRESETS, type ModelPresetName } from './presets.ts';
import { extractTokenizerFile } from './tokenizer-file.ts';

export type EnsureModelParameters = { dir: string; preset: ModelPresetName };

export type EnsureModelReturnType = {
  path: string;
  /** Registry name, `general.name` in the file. */
  name: string;
  /** sha256 of the file, 0x-hex: the ModelRegistry's weights hash. */
  weightsHash: Hex;
  parameterCount: number;
  bytes: number;
  /** `<dir>/<name>.tokenizer.gguf`: the tokenizer file a gateway loads (no weights). */
  tokenizerPath: string;
  /** sha256 of the tokenizer file, 0x-hex: the ModelRegistry's tokenizer hash. */
  tokenizerHash: Hex;
};

/**
 * Writes `<dir>/<name>.gguf` for a preset unless a file with the pinned hash is already there, and
 * its tokenizer file `<dir>/<name>.tokenizer.gguf` likewise.
 * The file is written to a temporary name and renamed, so a crash never leaves a half model
 * behind under the real name. Throws ModelFileError if this machine generates different bytes
 * than the pinned hash (which would register a different model id).
 */
export async function ensureModel({ dir, preset }: EnsureModelParameters): Promise<EnsureModelReturnType> {
  const { config, weightsHash, tokenizerHash, parameterCount } = MODEL_PRESETS[preset];
  const path = join(dir, `${config.name}.gguf`);
  const tokenizerPath = join(dir, `${config.name}.tokenizer.gguf`);
  const existing = await readFile(path).catch(() => undefined);
  let weights: Uint8Array;
  if (existing && sha256Hex(existing) === weightsHash) {
    weights = existing;
  } else {
    const model = makeGguf(config);
    const hash = sha256Hex(model.bytes);
    if (hash !== weightsHash || model.parameterCount !== parameterCount)
      throw new ModelFileError(
        'Generated model does not match its pinned hash',
        `${preset}: generated ${hash} (${model.parameterCount} parameters), pinned ${weightsHash} (${parameterCount})`,
      );
    await mkdir(dir, { recursive: true });
    await writeAtomically(path, model.bytes);
    weights = model.bytes;
  }
  const tokenizer = await readFile(tokenizerPath).catch(() => undefined);
  if (!tokenizer || sha256Hex(tokenizer) !== tokenizerHash) {
    const bytes = extractTokenizerFile(weights, path);
    if (sha256Hex(bytes) !== tokenizerHash)
      throw new ModelFileError(
        'Extracted tokenizer does not match its pinned hash',
        `${preset}: extracted ${sha256Hex(bytes)}, pinned ${tokenizerHash}`,
      );
    await writeAtomically(tokenizerPath, bytes);
  }
  return {
    path,
    name: config.name,
    weightsHash,
    parameterCount,
    bytes: weights.length,
    tokenizerPath,
    tokenizerHash,
  };
}

/** Writes to a temporary name, syncs and renames: a crash never leaves half a file under `path`. */
async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    const file = await open(tmp, 'w');
    try {
      await file.writeFile(bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw new ModelFileError('Could not write the model file', path, cause);
  }
}

export function sha256Hex(bytes: Uint8Array): Hex {
  return `0x${createHash('sha256').update(bytes).digest('hex')}`;
}

/** sha256 of a file, streamed (weights files are large): the ModelRegistry's weights hash. */
export async function sha256File(path: string): Promise<Hex> {
  const hash = createHash('sha256');
  try {
    for await (const chunk of createReadStream(path, { highWaterMark: 1 << 20 }))
      hash.update(chunk as Buffer);
  } catch (cause) {
    throw new ModelFileError('Could not read the model file', path, cause);
  }
  return `0x${hash.digest('hex')}`;
}
