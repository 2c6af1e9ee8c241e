/**
 * Where the validator finds the weights a receipt names: GGUF files it was given (`--gguf`), or the
 * project's generated presets, which `ensureModel` regenerates byte-for-byte into the model
 * directory. A file is used only when its sha256 is the weights hash registered on chain.
 */
import { stat } from 'node:fs/promises';
import { resolve } from 'node:path';
import { ensureModel, MODEL_PRESETS, type ModelPresetName, sha256File } from '@aipg/inference';
import type { Hex } from 'viem';
import { ValidatorError, ValidatorErrorCode } from '../errors.ts';
import type { AuditModel } from './types.ts';

export type ModelFilesOptions = {
  /** Where presets are generated. */
  dir: string;
  /** GGUF files this validator holds. */
  files?: readonly string[] | undefined;
  /** Regenerate the project's presets when a registered model is one of them. Default true. */
  presets?: boolean | undefined;
};

export type ModelFiles = {
  /** The path of a file whose sha256 is `model.weightsHash`; throws VALIDATOR_MODEL_UNAVAILABLE. */
  locate(model: AuditModel): Promise<string>;
};

export function createModelFiles(options: ModelFilesOptions): ModelFiles {
  const files = (options.files ?? []).map((f) => resolve(f));
  const presets = options.presets ?? true;
  // sha256 per path, keyed by size and mtime so a replaced file is hashed again.
  const hashes = new Map<string, { key: string; hash: Promise<Hex> }>();

  async function hashOf(path: string): Promise<Hex | undefined> {
    const s = await stat(path).catch(() => undefined);
    if (!s?.isFile()) return undefined;
    const key = `${s.size}:${s.mtimeMs}`;
    let entry = hashes.get(path);
    if (!entry || entry.key !== key) {
      entry = { key, hash: sha256File(path) };
      hashes.set(path, entry);
    }
    return entry.hash.catch(() => undefined);
  }

  return {
    async locate(model) {
      const want = model.weightsHash.toLowerCase();
      for (const path of files) if ((await hashOf(path))?.toLowerCase() === want) return path;
      if (presets) {
        const preset = (Object.keys(MODEL_PRESETS) as ModelPresetName[]).find(
          (p) => MODEL_PRESETS[p].weightsHash.toLowerCase() === want,
        );
        if (preset) {
          const m = await ensureModel({ dir: options.dir, preset });
          // ensureModel checks the pinned hash; check it again against the registry's.
          if (m.weightsHash.toLowerCase() !== want)
            throw new ValidatorError('The generated preset does not have the registered weights', {
              code: ValidatorErrorCode.weightsMismatch,
              details: `${model.name}: ${m.path} is ${m.weightsHash}, registered ${model.weightsHash}`,
            });
          return m.path;
        }
      }
      throw new ValidatorError(`No local file holds the weights of ${model.name}`, {
        code: ValidatorErrorCode.modelUnavailable,
        details: `registered sha256 ${model.weightsHash}; files checked: ${files.length ? files.join(', ') : 'none'} (pass --gguf <file>)`,
      });
    },
  };
}
