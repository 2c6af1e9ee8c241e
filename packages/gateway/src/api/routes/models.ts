import { computeImageFee } from '@aipg/core';
import type { Hono } from 'hono';
import type { Hex } from 'viem';
import { aipg } from '../../billing/index.ts';
import type { Chain } from '../../chain/index.ts';
import { GatewayError } from '../../errors.ts';
import type { Env, RouteDeps } from '../env.ts';

/**
 * `GET /v1/models` and `GET /v1/models/{model}`: the active models of the registry, their rates and
 * what the workers online here offer.
 */
export function registerModelRoutes(app: Hono<Env>, deps: RouteDeps): void {
  const { chain, hub } = deps;

  /**
   * What the workers online for an image model accept, together (sizes, steps, count, schedulers),
   * and an example price: the first size at the default steps (20, within range), one image.
   */
  function imageOffer(modelId: Hex, rate: bigint) {
    const offers = hub
      .workers()
      .flatMap((w) => (w.models.get(modelId)?.image ? [w.models.get(modelId)!.image!] : []));
    if (offers.length === 0) return null;
    const sizes = [...new Set(offers.flatMap((o) => o.sizes.map(([w, h]) => `${w}x${h}`)))];
    const minSteps = Math.min(...offers.map((o) => o.minSteps));
    const maxSteps = Math.max(...offers.map((o) => o.maxSteps));
    const steps = Math.max(minSteps, Math.min(maxSteps, 20));
    const [w, h] = sizes[0]!.split('x').map(Number) as [number, number];
    const example = computeImageFee({
      params: { width: w, height: h, steps, n: 1 },
      rates: { perMegapixelStep: rate },
    });
    return {
      sizes,
      min_steps: minSteps,
      max_steps: maxSteps,
      max_n: Math.max(...offers.map((o) => o.maxN)),
      schedulers: [...new Set(offers.flatMap((o) => o.schedulers))],
      trajectory: offers.every((o) => o.trajectory),
      example: { size: sizes[0], steps, price: aipg(example), price_wei: example.toString() },
    };
  }

  async function modelList() {
    let models: Awaited<ReturnType<Chain['models']>>;
    let premium: number;
    try {
      [models, premium] = await Promise.all([chain.models(), chain.confidentialPremiumBps()]);
    } catch (error) {
      throw new GatewayError('chain_unavailable', 'the model registry could not be read; try again shortly', {
        cause: error,
      });
    }
    const active = models.filter((m) => m.active);
    return active.map((m, i) => {
      // Two registrations of one name: the newest answers to the name, older ones to their id.
      const newest = active.findLastIndex((x) => x.name === m.name) === i;
      return {
        id: newest ? m.name : m.id,
        object: 'model' as const,
        created: 0,
        owned_by: 'aipg-grid',
        grid: {
          model_id: m.id,
          name: m.name,
          kind: m.kind,
          weights_hash: m.weightsHash,
          parameter_count: m.parameterCount.toString(),
          min_vram_mb: m.minVramMb,
          rates:
            m.kind === 'image'
              ? {
                  per_megapixel_step: aipg(m.rates.perMegapixelStep),
                  per_megapixel_step_wei: m.rates.perMegapixelStep.toString(),
                }
              : {
                  input_per_m: aipg(m.rates.inputPerMTokens),
                  output_per_m: aipg(m.rates.outputPerMTokens),
                  input_per_m_wei: m.rates.inputPerMTokens.toString(),
                  output_per_m_wei: m.rates.outputPerMTokens.toString(),
                },
          confidential_premium_bps: premium,
          workers_online: hub.onlineCount(m.id),
          ...(m.kind === 'image' ? { image: imageOffer(m.id, m.rates.perMegapixelStep) } : {}),
        },
      };
    });
  }

  app.get('/v1/models', async (c) => c.json({ object: 'list', data: await modelList() }));

  app.get('/v1/models/:model{.+}', async (c) => {
    const name = c.req.param('model');
    const m = (await modelList()).find(
      (x) => x.id === name || x.grid.model_id.toLowerCase() === name.toLowerCase(),
    );
    if (!m)
      throw new GatewayError('model_not_found', `the model "${name}" does not exist`, { param: 'model' });
    return c.json(m);
  });
}
