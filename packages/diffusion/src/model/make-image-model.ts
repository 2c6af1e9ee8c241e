/**
 * A pure, deterministic generator of a tiny latent-diffusion model: three ONNX (opset 13) graphs with
 * seeded random weights and a manifest binding them. Same config → same bytes on every machine.
 *
 * - `text_encoder.onnx`: `input_ids` int64 [batch, 77] (the 256 byte ids, BOS 256, EOS 257, pad 258)
 *   → token + position embeddings → one residual MLP → the mean over the non-pad positions → a
 *   projection: `text_embeds` float [batch, condWidth].
 * - `unet.onnx`: `sample` float [batch, 4, h, w], `timestep` float [batch], `text_embeds` → the
 *   predicted noise ε, float [batch, 4, h, w]. A one-level UNet: conv in; the timestep's sinusoidal
 *   embedding through an MLP, and the text embedding, as a FiLM (scale, shift) of the features; a
 *   residual block; a stride-2 conv down; a residual block; nearest ×2 up and a conv; concatenation
 *   with the skip; two convs out. The output adds the input latent to the network's correction (ε ≈ x
 *   is the best guess of the noise where the data are near zero), which keeps every trajectory
 *   bounded without any normalisation layer.
 * - `vae_decoder.onnx`: `latent_sample` float [batch, 4, h, w] → conv, then three rounds of nearest ×2
 *   Resize + conv, a sigmoid, and the 8-bit quantisation in the graph: `image` uint8 [batch, 8h, 8w, 3]
 *   (RGB, rows top to bottom), ready for an encoder.
 *
 * The weights are random (no training): images are textures, but every part of a real pipeline runs
 * (text → conditioning, timestep embedding, classifier-free guidance, a scheduler, decoding, encoding),
 * and every output depends on the weights, the prompt, the seed and each step.
 */
import { createHash } from 'node:crypto';
import type { Hex } from 'viem';
import { OnnxGraph } from './onnx-graph.ts';
import { gaussian, splitmix32 } from './prng.ts';

/** Token ids of the text encoder: 0–255 are the prompt's UTF-8 bytes. */
export const BOS_ID = 256;
export const EOS_ID = 257;
export const PAD_ID = 258;
export const TEXT_VOCAB_SIZE = 259;
/** Positions the text encoder reads: BOS, up to 75 prompt bytes (the rest are dropped), EOS, padding. */
export const TEXT_CONTEXT_LENGTH = 77;
export const LATENT_CHANNELS = 4;
/** Pixels per latent cell along each axis (three ×2 upsamplings). */
export const VAE_SCALE = 8;

export const IMAGE_MODEL_FILES = {
  textEncoder: 'text_encoder.onnx',
  unet: 'unet.onnx',
  vaeDecoder: 'vae_decoder.onnx',
} as const;
export type ImageModelPart = keyof typeof IMAGE_MODEL_FILES;
export const MANIFEST_FILE = 'manifest.json';
/** The manifest's `format`: bumped if its layout or the meaning of a field changes. */
export const MANIFEST_FORMAT = 'aipg-ldm-manifest/1';

export type ImageModelConfig = {
  /** Registry name; also the model's folder under the models directory. */
  name: string;
  seed: number;
  /** Width of the token embeddings and of the encoder's residual stream. */
  textWidth: number;
  /** Hidden width of the encoder's MLP. */
  textHidden: number;
  /** Width of `text_embeds`, the conditioning vector the UNet reads. */
  condWidth: number;
  /** UNet channels at the latent's resolution (twice as many at half resolution). */
  unetChannels: number;
  /** Decoder channels: after the first conv, then after each of the first two upsamplings. */
  decoderChannels: readonly [number, number, number];
};

export type ImageModelFile = { name: string; bytes: Uint8Array; sha256: Hex };

export type ImageModel = {
  name: string;
  config: ImageModelConfig;
  files: Record<ImageModelPart, ImageModelFile>;
  /** The canonical manifest (`MANIFEST_FILE`): what `weightsHash` is the sha256 of. */
  manifest: Uint8Array;
  /** `sha256(manifest)`, 0x-hex: the ModelRegistry's weights hash. */
  weightsHash: Hex;
  parameterCount: number;
};

/**
 * The manifest that binds a model's files: canonical JSON (keys in this order, no whitespace, UTF-8)
 * `{"format":"aipg-ldm-manifest/1","name":…,"config":{…as ImageModelConfig, in its key order…},
 * "files":{"text_encoder.onnx":"0x<sha256>","unet.onnx":"0x<sha256>","vae_decoder.onnx":"0x<sha256>"}}`.
 */
export function imageModelManifest(config: ImageModelConfig, files: Record<ImageModelPart, Hex>): Uint8Array {
  const manifest = {
    format: MANIFEST_FORMAT,
    name: config.name,
    config: {
      name: config.name,
      seed: config.seed,
      textWidth: config.textWidth,
      textHidden: config.textHidden,
      condWidth: config.condWidth,
      unetChannels: config.unetChannels,
      decoderChannels: [...config.decoderChannels],
    },
    files: {
      [IMAGE_MODEL_FILES.textEncoder]: files.textEncoder,
      [IMAGE_MODEL_FILES.unet]: files.unet,
      [IMAGE_MODEL_FILES.vaeDecoder]: files.vaeDecoder,
    },
  };
  return new TextEncoder().encode(JSON.stringify(manifest));
}

export function makeImageModel(config: ImageModelConfig): ImageModel {
  validate(config);
  // One sub-seed per file: a change to one part leaves the others' bytes alone.
  const seeds = splitmix32(config.seed);
  const subSeed = () => Math.floor(seeds() * 4294967296);
  const [textSeed, unetSeed, vaeSeed] = [subSeed(), subSeed(), subSeed()];
  const parts = {
    textEncoder: buildTextEncoder(config, new Weights(textSeed)),
    unet: buildUnet(config, new Weights(unetSeed)),
    vaeDecoder: buildVaeDecoder(config, new Weights(vaeSeed)),
  };
  const file = (part: ImageModelPart): ImageModelFile => {
    const bytes = parts[part].encode();
    return { name: IMAGE_MODEL_FILES[part], bytes, sha256: sha256Hex(bytes) };
  };
  const files = { textEncoder: file('textEncoder'), unet: file('unet'), vaeDecoder: file('vaeDecoder') };
  const manifest = imageModelManifest(config, {
    textEncoder: files.textEncoder.sha256,
    unet: files.unet.sha256,
    vaeDecoder: files.vaeDecoder.sha256,
  });
  return {
    name: config.name,
    config,
    files,
    manifest,
    weightsHash: sha256Hex(manifest),
    parameterCount: Object.values(parts).reduce((n, g) => n + g.parameterCount, 0),
  };
}

export function sha256Hex(bytes: Uint8Array): Hex {
  return `0x${createHash('sha256').update(bytes).digest('hex')}`;
}

function validate(c: ImageModelConfig): void {
  if (!isImageModelConfig(c)) throw new RangeError(`invalid image model config: ${JSON.stringify(c)}`);
}

/** Whether `c` is a config `makeImageModel` accepts (a manifest's config is checked with it too). */
export function isImageModelConfig(c: unknown): c is ImageModelConfig {
  if (typeof c !== 'object' || c === null) return false;
  const k = c as Record<keyof ImageModelConfig, unknown>;
  const width = (w: unknown) => Number.isInteger(w) && (w as number) >= 1 && (w as number) <= 1024;
  return (
    typeof k.name === 'string' &&
    /^[a-z0-9][a-z0-9._-]{0,99}$/.test(k.name) &&
    Number.isInteger(k.seed) &&
    (k.seed as number) >= 0 &&
    (k.seed as number) <= 0xffffffff &&
    [k.textWidth, k.textHidden, k.condWidth, k.unetChannels].every(width) &&
    Array.isArray(k.decoderChannels) &&
    k.decoderChannels.length === 3 &&
    k.decoderChannels.every(width)
  );
}

// ── weights ──────────────────────────────────────────────────────────────────────────────────

/** Draws weights in a fixed order from one seeded stream. */
class Weights {
  private readonly normal: () => number;
  constructor(seed: number) {
    this.normal = gaussian(seed);
  }
  /** `n` values of N(0, std²). */
  draw(n: number, std: number): Float32Array {
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = this.normal() * std;
    return data;
  }
}

/** Layers over an OnnxGraph, each drawing its weights as it is added. */
class Layers {
  private n = 0;
  constructor(
    readonly g: OnnxGraph,
    private readonly w: Weights,
  ) {}

  private id(kind: string): string {
    return `${kind}_${this.n++}`;
  }

  /** x·W + b with W ~ N(0, gain²/in): unit-variance inputs give outputs of variance ≈ gain². */
  linear(x: string, inWidth: number, outWidth: number, gain = 1, biasStd = 0): string {
    const id = this.id('linear');
    const w = this.g.weight(
      `${id}.weight`,
      [inWidth, outWidth],
      this.w.draw(inWidth * outWidth, gain / Math.sqrt(inWidth)),
    );
    const b = this.g.weight(`${id}.bias`, [outWidth], this.w.draw(outWidth, biasStd));
    return this.g.op('Add', [this.g.op('MatMul', [x, w]), b]);
  }

  /** A square convolution, "same" padding (or halving with `stride` 2). */
  conv(
    x: string,
    inCh: number,
    outCh: number,
    { kernel = 3, stride = 1, gain = 1, biasStd = 0 } = {},
  ): string {
    const id = this.id('conv');
    const fanIn = inCh * kernel * kernel;
    const w = this.g.weight(
      `${id}.weight`,
      [outCh, inCh, kernel, kernel],
      this.w.draw(outCh * fanIn, gain / Math.sqrt(fanIn)),
    );
    const b = this.g.weight(`${id}.bias`, [outCh], this.w.draw(outCh, biasStd));
    const pad = (kernel - 1) / 2;
    return this.g.op('Conv', [x, w, b], {
      kernel_shape: [kernel, kernel],
      pads: [pad, pad, pad, pad],
      strides: [stride, stride],
    });
  }

  silu(x: string): string {
    return this.g.op('Mul', [x, this.g.op('Sigmoid', [x])]);
  }

  /** Nearest-neighbour ×2 along height and width. */
  upsample(x: string): string {
    return this.g.op('Resize', [x, '', this.g.constant('float', [4], [1, 1, 2, 2])], {
      mode: 'nearest',
      coordinate_transformation_mode: 'asymmetric',
      nearest_mode: 'floor',
    });
  }

  /** x + conv(silu(conv(silu(x)))): the second conv small, so the block starts near the identity. */
  residual(x: string, ch: number): string {
    const r = this.conv(this.silu(this.conv(this.silu(x), ch, ch, { gain: 1.4 })), ch, ch, { gain: 0.5 });
    return this.g.op('Add', [x, r]);
  }

  /** [batch, ch] → [batch, ch, 1, 1], to broadcast over a feature map. */
  perChannel(x: string): string {
    return this.g.op('Unsqueeze', [x, this.g.constant('int64', [2], [2, 3])]);
  }
}

function buildTextEncoder(c: ImageModelConfig, w: Weights): OnnxGraph {
  const g = new OnnxGraph('text_encoder');
  const l = new Layers(g, w);
  const D = c.textWidth;
  const ids = g.input('input_ids', 'int64', ['batch', TEXT_CONTEXT_LENGTH]);
  const tokens = g.weight('token_embedding', [TEXT_VOCAB_SIZE, D], w.draw(TEXT_VOCAB_SIZE * D, 1));
  const positions = g.weight(
    'position_embedding',
    [TEXT_CONTEXT_LENGTH, D],
    w.draw(TEXT_CONTEXT_LENGTH * D, 0.2),
  );
  const e = g.op('Add', [g.op('Gather', [tokens, ids], { axis: 0 }), positions]);
  const h = g.op('Add', [e, l.linear(l.silu(l.linear(e, D, c.textHidden, 1.4)), c.textHidden, D, 0.7)]);
  // Mean over the positions that are not padding (BOS, the prompt's bytes, EOS).
  const keep = g.op('Cast', [g.op('Not', [g.op('Equal', [ids, g.constant('int64', [], [PAD_ID])])])], {
    to: 1,
  });
  const mask = g.op('Unsqueeze', [keep, g.constant('int64', [1], [2])]);
  const axis1 = g.constant('int64', [1], [1]);
  const sum = g.op('ReduceSum', [g.op('Mul', [h, mask]), axis1], { keepdims: 0 });
  const pooled = g.op('Div', [sum, g.op('ReduceSum', [mask, axis1], { keepdims: 0 })]);
  // The mean of a few unit vectors is shorter than one: the projection's gain restores unit scale.
  g.output(l.linear(pooled, D, c.condWidth, 2), 'text_embeds', 'float', ['batch', c.condWidth]);
  return g;
}

/** Frequencies of the timestep's sinusoidal embedding: 1, 1/√2, 1/2, … (16 of them, exact). */
const TIME_FREQUENCIES = (() => {
  const f: number[] = [];
  for (let i = 0, x = 1; i < 16; i++, x *= Math.SQRT1_2) f.push(x);
  return f;
})();

function buildUnet(c: ImageModelConfig, w: Weights): OnnxGraph {
  const g = new OnnxGraph('unet');
  const l = new Layers(g, w);
  const C = c.unetChannels;
  const latentDims = ['batch', LATENT_CHANNELS, 'height', 'width'];
  const sample = g.input('sample', 'float', latentDims);
  const timestep = g.input('timestep', 'float', ['batch']);
  const text = g.input('text_embeds', 'float', ['batch', c.condWidth]);

  const F = TIME_FREQUENCIES.length;
  const angles = g.op('Mul', [
    g.op('Unsqueeze', [timestep, g.constant('int64', [1], [1])]),
    g.constant('float', [1, F], TIME_FREQUENCIES),
  ]);
  const sinusoid = g.op('Concat', [g.op('Sin', [angles]), g.op('Cos', [angles])], { axis: 1 });
  const temb = l.linear(l.silu(l.linear(sinusoid, 2 * F, C, 1.4)), C, C, 0.5);
  const shift = l.perChannel(g.op('Add', [temb, l.linear(text, c.condWidth, C, 0.3)]));
  const scale = l.perChannel(
    g.op('Add', [l.linear(text, c.condWidth, C, 0.1), g.constant('float', [1], [1])]),
  );

  const h0 = l.conv(sample, LATENT_CHANNELS, C, { gain: 1.4, biasStd: 0.1 });
  const h1 = l.residual(g.op('Add', [g.op('Mul', [h0, scale]), shift]), C);
  const d0 = l.conv(l.silu(h1), C, 2 * C, { stride: 2, gain: 1.4 });
  const d1 = l.residual(d0, 2 * C);
  const up = l.conv(l.upsample(d1), 2 * C, C);
  const merged = l.silu(l.conv(g.op('Concat', [up, h1], { axis: 1 }), 2 * C, C, { gain: 1.4 }));
  const correction = l.conv(merged, C, LATENT_CHANNELS, { gain: 0.35 });
  g.output(g.op('Add', [sample, correction]), 'noise_pred', 'float', latentDims);
  return g;
}

function buildVaeDecoder(c: ImageModelConfig, w: Weights): OnnxGraph {
  const g = new OnnxGraph('vae_decoder');
  const l = new Layers(g, w);
  const [c0, c1, c2] = c.decoderChannels;
  const latent = g.input('latent_sample', 'float', ['batch', LATENT_CHANNELS, 'height', 'width']);
  let h = l.silu(l.conv(latent, LATENT_CHANNELS, c0, { gain: 1.0, biasStd: 0.1 }));
  h = l.silu(l.conv(l.upsample(h), c0, c1, { gain: 1.4, biasStd: 0.1 }));
  h = l.silu(l.conv(l.upsample(h), c1, c2, { gain: 1.4, biasStd: 0.1 }));
  const rgb = g.op('Sigmoid', [l.conv(l.upsample(h), c2, 3, { gain: 1.8, biasStd: 0.3 })]);
  // NCHW in [0, 1] → NHWC bytes, rounded to nearest: ⌊255·v + ½⌋.
  const hwc = g.op('Transpose', [rgb], { perm: [0, 2, 3, 1] });
  const scaled = g.op('Add', [
    g.op('Mul', [hwc, g.constant('float', [], [255])]),
    g.constant('float', [], [0.5]),
  ]);
  const clipped = g.op('Clip', [scaled, g.constant('float', [], [0]), g.constant('float', [], [255])]);
  const bytes = g.op('Cast', [g.op('Floor', [clipped])], { to: 2 });
  g.output(bytes, 'image', 'uint8', ['batch', 'image_height', 'image_width', 3]);
  return g;
}
