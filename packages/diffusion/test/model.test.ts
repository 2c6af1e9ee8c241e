import { createHash } from 'node:crypto';
import { readFile, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { describe, expect, test } from 'vitest';
import {
  defaultImageModelsDir,
  ensureImageModel,
  IMAGE_MODEL_PRESETS,
  ImageModelFileError,
  imageModelManifest,
  loadImageModel,
  MANIFEST_FILE,
  makeImageModel,
} from '../src/index.ts';
import { useTempDir } from './helpers.ts';

const sha256 = (b: Uint8Array) => `0x${createHash('sha256').update(b).digest('hex')}`;
const tiny = IMAGE_MODEL_PRESETS.tiny;
const dir = useTempDir('aipg-diffusion-model-');

describe('makeImageModel', () => {
  test('is deterministic and matches the pinned hashes', () => {
    const a = makeImageModel(tiny.config);
    const b = makeImageModel(tiny.config);
    for (const part of ['textEncoder', 'unet', 'vaeDecoder'] as const) {
      expect(sha256(a.files[part].bytes)).toBe(tiny.files[part]);
      expect(a.files[part].sha256).toBe(tiny.files[part]);
      expect(sha256(b.files[part].bytes)).toBe(tiny.files[part]);
    }
    expect(a.parameterCount).toBe(tiny.parameterCount);
    expect(a.weightsHash).toBe(tiny.weightsHash);
    expect(b.weightsHash).toBe(tiny.weightsHash);
  });

  test('weightsHash = sha256 of the canonical manifest binding the three files', () => {
    const m = makeImageModel(tiny.config);
    expect(sha256(m.manifest)).toBe(m.weightsHash);
    expect(JSON.parse(new TextDecoder().decode(m.manifest))).toEqual({
      format: 'aipg-ldm-manifest/1',
      name: 'aipg-tiny-ldm',
      config: { ...tiny.config, decoderChannels: [...tiny.config.decoderChannels] },
      files: {
        'text_encoder.onnx': tiny.files.textEncoder,
        'unet.onnx': tiny.files.unet,
        'vae_decoder.onnx': tiny.files.vaeDecoder,
      },
    });
    // Another file hash gives another weights hash.
    const other = imageModelManifest(tiny.config, { ...tiny.files, unet: `0x${'00'.repeat(32)}` });
    expect(sha256(other)).not.toBe(tiny.weightsHash);
  });

  test('another seed gives other weights of the same shapes', () => {
    const a = makeImageModel(tiny.config);
    const b = makeImageModel({ ...tiny.config, seed: 1 });
    expect(b.weightsHash).not.toBe(a.weightsHash);
    for (const part of ['textEncoder', 'unet', 'vaeDecoder'] as const) {
      expect(b.files[part].sha256).not.toBe(a.files[part].sha256);
      expect(b.files[part].bytes.length).toBe(a.files[part].bytes.length);
    }
    expect(b.parameterCount).toBe(a.parameterCount);
  });

  test('tiny is small: ~200k parameters, under 1 MB', () => {
    const m = makeImageModel(tiny.config);
    expect(m.parameterCount).toBeLessThan(500_000);
    const bytes = Object.values(m.files).reduce((n, f) => n + f.bytes.length, 0);
    expect(bytes).toBeLessThan(1_000_000);
  });

  test('rejects an impossible config', () => {
    expect(() => makeImageModel({ ...tiny.config, unetChannels: 0 })).toThrow(RangeError);
    expect(() => makeImageModel({ ...tiny.config, name: 'Not A Name' })).toThrow(RangeError);
    expect(() => makeImageModel({ ...tiny.config, seed: -1 })).toThrow(RangeError);
  });

  test('the graphs load in onnxruntime with the documented inputs and outputs', async () => {
    const m = makeImageModel(tiny.config);
    const io = async (bytes: Uint8Array) => {
      const s = await ort.InferenceSession.create(bytes);
      try {
        return [s.inputNames, s.outputNames];
      } finally {
        await s.release();
      }
    };
    expect(await io(m.files.textEncoder.bytes)).toEqual([['input_ids'], ['text_embeds']]);
    expect(await io(m.files.unet.bytes)).toEqual([['sample', 'timestep', 'text_embeds'], ['noise_pred']]);
    expect(await io(m.files.vaeDecoder.bytes)).toEqual([['latent_sample'], ['image']]);
  });
});

describe('ensureImageModel', () => {
  test('writes once, reuses good files and replaces a wrong one', async () => {
    const first = await ensureImageModel('tiny', { dir: dir() });
    expect(first).toMatchObject({
      dir: join(dir(), 'aipg-tiny-ldm'),
      name: 'aipg-tiny-ldm',
      weightsHash: tiny.weightsHash,
      parameterCount: tiny.parameterCount,
    });
    for (const part of ['textEncoder', 'unet', 'vaeDecoder'] as const)
      expect(sha256(await readFile(first.files[part].path))).toBe(tiny.files[part]);
    expect(sha256(await readFile(join(first.dir, MANIFEST_FILE)))).toBe(tiny.weightsHash);

    const mtime = (await stat(first.files.unet.path)).mtimeMs;
    await ensureImageModel('tiny', { dir: dir() });
    expect((await stat(first.files.unet.path)).mtimeMs).toBe(mtime);

    await writeFile(first.files.unet.path, 'not a model');
    const again = await ensureImageModel('tiny', { dir: dir() });
    expect(sha256(await readFile(again.files.unet.path))).toBe(tiny.files.unet);
  });

  test('fails loudly when the generator does not produce the pinned bytes', async () => {
    const wrong = { ...tiny, files: { ...tiny.files, vaeDecoder: `0x${'ab'.repeat(32)}` as const } };
    const error = await ensureImageModel(wrong, { dir: join(dir(), 'wrong') }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ImageModelFileError);
    expect((error as ImageModelFileError).details).toContain(
      `vae_decoder.onnx: generated ${tiny.files.vaeDecoder}`,
    );
    // Nothing is written under a real name.
    await expect(stat(join(dir(), 'wrong', 'aipg-tiny-ldm', 'unet.onnx'))).rejects.toThrow();
  });

  test('the default directory is $AIPG_MODELS_DIR, else the user cache', () => {
    expect(defaultImageModelsDir({ AIPG_MODELS_DIR: '/srv/models' })).toBe('/srv/models');
    expect(defaultImageModelsDir({ XDG_CACHE_HOME: '/c' })).toBe(join('/c', 'aipg', 'models'));
    expect(defaultImageModelsDir({})).toMatch(/\.cache[/\\]aipg[/\\]models$/);
  });
});

describe('loadImageModel', () => {
  test('checks every file against the manifest, and the manifest is canonical', async () => {
    const { dir: modelDir } = await ensureImageModel('tiny', { dir: join(dir(), 'load') });
    expect((await loadImageModel(modelDir)).weightsHash).toBe(tiny.weightsHash);

    const textEncoder = join(modelDir, 'text_encoder.onnx');
    const good = await readFile(textEncoder);
    const bad = Uint8Array.from(good);
    bad[bad.length - 1]! ^= 1;
    await writeFile(textEncoder, bad);
    await expect(loadImageModel(modelDir)).rejects.toThrow(/does not match its manifest/);
    await writeFile(textEncoder, good);

    const manifestPath = join(modelDir, MANIFEST_FILE);
    const manifest = await readFile(manifestPath, 'utf8');
    await writeFile(manifestPath, JSON.stringify(JSON.parse(manifest), null, 2));
    await expect(loadImageModel(modelDir)).rejects.toThrow(ImageModelFileError);
    await writeFile(manifestPath, 'not json');
    await expect(loadImageModel(modelDir)).rejects.toThrow(ImageModelFileError);
    await writeFile(manifestPath, manifest);
    expect((await loadImageModel(modelDir)).weightsHash).toBe(tiny.weightsHash);
    await expect(loadImageModel(join(dir(), 'nowhere'))).rejects.toThrow(ImageModelFileError);
  });
});
