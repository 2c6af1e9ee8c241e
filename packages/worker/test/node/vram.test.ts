import { describe, expect, it } from 'vitest';
import { checkModelVram } from '../../src/hardware/policy.ts';

// A worker serving chat and image models at once holds both in one card: the warnings count them
// together, not only one by one.
const context = { devnet: false, network: 'base' };
const gpu = (vramMb: number) => ({ bestGpu: { name: 'test GPU', vramMb }, warnings: [] });

describe('VRAM across the models a worker serves', () => {
  it('each model that does not fit alone is named', () => {
    expect(checkModelVram(gpu(8_000), [{ name: 'big-llm', minVramMb: 16_000 }], context)).toEqual([
      expect.stringMatching(/model big-llm is registered with a minimum of .* VRAM/),
    ]);
  });

  it('a chat model and an image model that each fit but not together: one warning naming both', () => {
    const w = checkModelVram(
      gpu(12_000),
      [
        { name: 'chat-8b', minVramMb: 8_000 },
        { name: 'sdxl', minVramMb: 6_000 },
      ],
      context,
    );
    expect(w).toEqual([expect.stringMatching(/models chat-8b, sdxl served at once need .* together/)]);
  });

  it('models that fit together, and any devnet, warn of nothing', () => {
    const models = [
      { name: 'chat-8b', minVramMb: 8_000 },
      { name: 'sdxl', minVramMb: 6_000 },
    ];
    expect(checkModelVram(gpu(24_000), models, context)).toEqual([]);
    expect(checkModelVram(gpu(0), models, { devnet: true, network: 'devnet' })).toEqual([]);
  });
});
