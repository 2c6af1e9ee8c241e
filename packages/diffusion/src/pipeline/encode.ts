import type { ImageFormat } from '@aipg/core';
import sharp from 'sharp';

/**
 * Fixed encoder settings (never libvips' defaults, which may change between releases); sharp writes no
 * metadata unless asked, so the bytes depend on the pixels alone.
 */
export const ENCODER_SETTINGS = {
  png: { compressionLevel: 6, adaptiveFiltering: false, palette: false, progressive: false },
  webp: { quality: 90, lossless: false, nearLossless: false, smartSubsample: false, effort: 4 },
  jpeg: {
    quality: 90,
    progressive: false,
    chromaSubsampling: '4:2:0',
    mozjpeg: false,
    trellisQuantisation: false,
    overshootDeringing: false,
    optimiseScans: false,
    optimiseCoding: true,
  },
} as const;

/** RGB bytes (rows top to bottom) → the encoded image. */
export async function encodeImage(
  rgb: Uint8Array,
  width: number,
  height: number,
  format: ImageFormat,
): Promise<Uint8Array> {
  const image = sharp(rgb, { raw: { width, height, channels: 3 } });
  const encoded =
    format === 'png'
      ? image.png(ENCODER_SETTINGS.png)
      : format === 'webp'
        ? image.webp(ENCODER_SETTINGS.webp)
        : image.jpeg(ENCODER_SETTINGS.jpeg);
  const buf = await encoded.toBuffer();
  return new Uint8Array(buf.buffer, buf.byteOffset, buf.length);
}
