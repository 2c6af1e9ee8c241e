import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Hex } from 'viem';
import { ModelFileError } from '../errors.ts';
import { makeGguf } from './make-gguf.ts';
import { MODEL_PRESETS, type ModelPresetName } from './presets.ts';

export type EnsureModelParameters = { dir: string; preset: ModelPresetName };

export type EnsureModelReturnType = {
  path: string;
  /** Registry name, `general.name` in the file. */
  name: string;
  /** sha256 of the file, 0x-hex: the ModelRegistry's weights hash. */
  weightsHash: Hex;
  parameterCount: number;
  bytes: number;
};

/**
 * Writes `<dir>/<name>.gguf` for a preset unless a file with the pinned hash is already there.
 * The file is written to a temporary name and renamed, so a crash never leaves a half model
 * behind under the real name. Throws ModelFileError if this machine generates different bytes
 * than the pinned hash (which would register a different model id).
 */
export async function ensureModel({ dir, preset }: EnsureModelParameters): Promise<EnsureModelReturnType> {
  const { config, weightsHash, parameterCount } = MODEL_PRESETS[preset];
  const path = join(dir, `${config.name}.gguf`);
  const existing = await readFile(path).catch(() => undefined);
  if (existing && sha256Hex(existing) === weightsHash) {
    return { path, name: config.name, weightsHash, parameterCount, bytes: existing.length };
  }
  const model = makeGguf(config);
  const hash = sha256Hex(model.bytes);
  if (hash !== weightsHash || model.parameterCount !== parameterCount)
    throw new ModelFileError(
      'Generated model does not match its pinned hash',
      `${preset}: generated ${hash} (${model.parameterCount} parameters), pinned ${weightsHash} (${parameterCount})`,
    );
  await mkdir(dir, { recursive: true });
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  try {
    const file = await open(tmp, 'w');
    try {
      await file.writeFile(model.bytes);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw new ModelFileError('Could not write the model file', path, cause);
  }
  return { path, name: config.name, weightsHash, parameterCount, bytes: model.bytes.length };
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
