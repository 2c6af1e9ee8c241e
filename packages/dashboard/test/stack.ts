import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  approveToken,
  fixRandomness,
  getBatchAudit,
  increaseBond,
  registerModel,
  reportGatewayFault,
  requestUnbond,
} from '@aipg/chain';
import { computeModelId, type ImageCapabilities, parseAipg, trajectoryTree } from '@aipg/core';
import {
  apiKeyAuthenticator,
  createApi,
  createAudit,
  createAuth,
  createBilling,
  createChain,
  createCommon,
  createHub,
  createJobs,
  createLogger,
  createRouting,
  createSettlement,
  createStorage,
  createTee,
  createTokenizers,
  WORKER_PATH,
} from '@aipg/gateway';
import { createNetwork } from '@aipg/indexer';
import { SimulatedTee, serializeAnchors } from '@aipg/tee';
import type { GenerateRequest, GenerateResult, ImageBackend, InferenceBackend } from '@aipg/worker';
import { createWorkerOptions, startWorker, type Worker } from '@aipg/worker';
import { serve } from '@hono/node-server';
import { type Address, type Hex, keccak256, toHex } from 'viem';
import {
  createApiKey,
  MODEL,
  roles,
  startTestGrid,
  type TestGrid,
  testGatewayOptions,
} from '../../gateway/test/helpers/grid.ts';
import { defaultTokens, EOS, testPng } from '../../gateway/test/helpers/worker.ts';
import { installSlashHarness, rpc } from '../../indexer/test/helpers.ts';

/**
 * A deterministic engine: it runs the prompt ids the gateway sent and answers with word pieces of
 * the tiny preset's vocabulary (the gateway renders them: "the grid serves you."), a few ms per
 * token, ending with the end token.
 */
function fakeBackend(tokenDelayMs: number): InferenceBackend {
  const model = {
    name: MODEL.name,
    weightsHash: MODEL.weightsHash,
    modelId: computeModelId(MODEL.name, MODEL.weightsHash),
  };
  return {
    kind: 'openai',
    sampler: 'vllm',
    model,
    async load() {},
    async close() {},
    async generate(req: GenerateRequest): Promise<GenerateResult> {
      const start = performance.now();
      const n = Math.min(req.params.maxTokens, defaultTokens.length);
      const outputTokenIds: number[] = [];
      let ttftMs = 0;
      for (let i = 0; i < n; i++) {
        await new Promise((r) => setTimeout(r, tokenDelayMs));
        if (req.signal.aborted) throw new Error('aborted');
        if (i === 0) ttftMs = performance.now() - start;
        outputTokenIds.push(defaultTokens[i]!);
        req.onToken?.({ tokenIds: [defaultTokens[i]!] });
      }
      return {
        promptTokenIds: [...req.promptTokenIds],
        outputTokenIds,
        finishReason: outputTokenIds.at(-1) === EOS ? 'stop' : 'length',
        timings: { ttftMs, totalMs: performance.now() - start },
      };
    },
  };
}

/** The stack's image model: 0.01 AIPG per megapixel-step, served by worker A's node. */
export const IMAGE_MODEL = {
  name: 'tiny-image',
  weightsHash: keccak256(toHex('tiny-image weights')),
  rates: { inputPerMTokens: 0n, outputPerMTokens: 0n, perMegapixelStep: parseAipg('0.01') },
  capabilities: {
    sizes: [
      [64, 64],
      [128, 64],
    ],
    minSteps: 1,
    maxSteps: 30,
    maxN: 4,
    schedulers: ['ddim', 'euler'],
    trajectory: true,
  } satisfies ImageCapabilities,
};

/**
 * A deterministic image pipeline: PNGs of the asked size in one colour per seed, `stepDelayMs` per
 * denoising step with progress after each (so a job's seconds per step are known from below).
 */
function fakeImageBackend(stepDelayMs: number): ImageBackend {
  const modelId = computeModelId(IMAGE_MODEL.name, IMAGE_MODEL.weightsHash);
  return {
    kind: 'diffusion',
    model: { name: IMAGE_MODEL.name, weightsHash: IMAGE_MODEL.weightsHash, modelId },
    pipeline: 'test-ldm',
    capabilities: IMAGE_MODEL.capabilities,
    async load() {},
    async close() {},
    async generate(req) {
      const start = performance.now();
      const { width, height, steps, n, seed } = req.params;
      const images = [];
      for (let i = 0; i < n; i++) {
        for (let k = 1; k <= steps; k++) {
          await new Promise((r) => setTimeout(r, stepDelayMs));
          if (req.signal.aborted) throw new Error('aborted');
          req.onProgress?.({ image: i, step: k, steps });
        }
        const s = (seed + i) >>> 0;
        // `steps + 1` small latents and the root over them (the gateway opens every committed trajectory).
        const latents = Array.from({ length: steps + 1 }, (_, k) =>
          Float32Array.from({ length: 16 }, (_, j) => (s % 1000) + k * 0.5 + j / 16),
        );
        images.push({
          bytes: testPng(width, height, [s & 255, (s >> 8) & 255, 200]),
          trajectoryRoot: trajectoryTree(latents).root,
          latents,
        });
      }
      return { images, timings: { totalMs: performance.now() - start } };
    },
  };
}

export type ImageRequest = {
  prompt: string;
  size?: string;
  steps?: number;
  n?: number;
  negative_prompt?: string;
  scheduler?: string;
};

export type Stack = {
  grid: TestGrid;
  url: string;
  apiKey: string;
  workers: Worker[];
  /**
   * The test trust anchors file the gateway verifies TEE evidence under (what `/v1/attestation` reports
   * as `trust_anchors`); null on a stack without the confidential tier.
   */
  anchorsFile: string | null;
  /** One chat completion through the real API (routed to a real worker node). */
  chat(content?: string): Promise<{ id: string; grid: { fee: string; worker: Address } }>;
  /** One image generation through the real Images API (on worker A's node), `url` format. */
  image(req: ImageRequest): Promise<{
    grid: { job_id: string; fee_wei: string; worker: Address; images: { hash: string }[] };
  }>;
  /** Settles every waiting receipt now. */
  settle(): Promise<void>;
  /** Indexes up to the chain head now (the loop would within `pollIntervalMs`). */
  index(): Promise<void>;
  increaseWorkerBond(owner: { privateKey: Hex }, aipg: string): Promise<void>;
  unbondWorker(owner: { privateKey: Hex }, aipg: string): Promise<void>;
  slash(owner: Address, aipg: string): Promise<void>;
  /**
   * The stack's validator (through its operator key) reports a gateway fault on the first receipt of the
   * gateway's latest settled batch, with `reason`: it fixes the batch's audit randomness first when needed
   * (mining past the randomness delay), and takes the leaf and proof from the gateway's audit API.
   */
  reportGatewayFault(reason: string): Promise<{ batchId: bigint; leaf: Hex; gateway: Address }>;
  stop(): Promise<void>;
};

/**
 * The whole network on one machine for the browser tests: anvil with the Grid (the gateway tests'
 * roles: two bonded workers, a validator, a funded payer), a gateway (PGlite in memory) with the
 * network feature mounted, and two real worker nodes (`startWorker`) on a scripted engine.
 *
 * With `tee` (the default) the gateway runs the confidential tier under the trust anchors of a
 * `SimulatedTee` (a test root), worker A's node runs in that simulated TEE (its evidence verifies:
 * `valid`), and worker B's in a simulated TEE of another root (the gateway refuses its evidence:
 * `invalid`, with the reason). Both still serve ordinary jobs. The stack returns once both verdicts are in.
 */
export async function startStack({
  port = 0,
  images = true,
  tee = true,
}: {
  port?: number;
  /** Register the image model and serve it on worker A's node (false: a grid of text models only). */
  images?: boolean;
  /** Run the confidential tier, worker A in a trusted simulated TEE and worker B in an untrusted one. */
  tee?: boolean;
} = {}): Promise<Stack> {
  const grid = await startTestGrid();
  const stops: (() => Promise<void>)[] = [() => grid.stop()];
  const stop = async () => {
    for (const s of stops.splice(0).reverse()) await s().catch(() => {});
  };
  try {
    let teeFiles: { anchors: string; trusted: string; untrusted: string } | undefined;
    if (tee) {
      const dir = await mkdtemp(join(tmpdir(), 'aipg-dashboard-tee-'));
      stops.push(() => rm(dir, { recursive: true, force: true }));
      const [trusted, untrusted] = await Promise.all([SimulatedTee.create(), SimulatedTee.create()]);
      teeFiles = {
        anchors: join(dir, 'anchors.json'),
        trusted: join(dir, 'simulated-tee.json'),
        untrusted: join(dir, 'other-simulated-tee.json'),
      };
      await writeFile(teeFiles.anchors, serializeAnchors(trusted.anchors));
      await writeFile(teeFiles.trusted, trusted.serialize());
      await writeFile(teeFiles.untrusted, untrusted.serialize());
    }
    if (images) {
      await registerModel(grid.client(roles.owner.privateKey), {
        grid: grid.grid,
        name: IMAGE_MODEL.name,
        kind: 'image',
        weightsHash: IMAGE_MODEL.weightsHash,
        tokenizerHash: `0x${'00'.repeat(32)}`,
        parameterCount: 2_000_000n,
        minVramMb: 0,
        rates: IMAGE_MODEL.rates,
      });
    }
    const options = testGatewayOptions(grid, {
      'jobs.queueTimeoutMs': 5_000,
      ...(teeFiles ? { 'tee.anchorsFile': teeFiles.anchors } : {}),
    });
    const common = createCommon(options, createLogger(options.log.level));
    const storage = await createStorage({ common });
    stops.push(() => storage.close());
    const chain = await createChain({ common });
    const routing = createRouting({ common, storage });
    const hub = createHub({ common, chain, routing });
    const attestations = teeFiles ? createTee({ common, storage, hub }) : undefined;
    if (attestations) stops.push(async () => attestations.stop());
    const auth = createAuth({ common, storage, chain });
    const billing = createBilling({ storage, chain });
    const settlement = createSettlement({ common, storage, chain });
    const tokenizers = createTokenizers({ logger: common.logger, dir: options.tokenizers.dir });
    stops.push(() => tokenizers.close());
    const jobs = createJobs({
      common,
      storage,
      chain,
      billing,
      hub,
      routing,
      tokenizers,
      tee: attestations,
      onReceipt: () => settlement.notify(),
    });
    const audit = createAudit({ common, storage, chain });
    const network = createNetwork({
      common,
      db: storage.db,
      publicClient: chain.publicClient,
      deployment: {
        grid: chain.grid,
        chainId: chain.chainId,
        deployBlock: grid.chain.deployment.deployBlock,
      },
      hub,
      leases: storage.leases,
      authenticate: apiKeyAuthenticator(auth),
      options: { indexer: { pollIntervalMs: 250 }, feed: { pollIntervalMs: 250 } },
    });
    const app = createApi({ common, storage, chain, auth, billing, hub, jobs, audit, tee: attestations });
    app.route('/v1/network', network.router);
    app.route('/', network.dashboard);

    const server = serve({ fetch: app.fetch, port, hostname: '127.0.0.1' });
    await new Promise<void>((resolve) => server.once('listening', () => resolve()));
    server.on('upgrade', (req, socket, head) => hub.handleUpgrade(req, socket, head));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    stops.push(async () => {
      (server as import('node:http').Server).closeAllConnections?.();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    await jobs.start();
    settlement.start();
    stops.push(() => settlement.stop(1_000));
    stops.push(() => jobs.stop(1_000));
    stops.push(() => hub.close(500));
    await network.start();
    stops.push(() => network.stop());
    await network.indexer.syncNow();

    const workers: Worker[] = [];
    const rigs = [
      {
        operator: roles.operatorA,
        delay: 4,
        teeSimulated: teeFiles?.trusted,
        images: images ? [{ image: fakeImageBackend(3), maxConcurrency: 1 }] : [],
        hardware: {
          gpus: [{ name: 'NVIDIA GeForce RTX 4090', vramMb: 24_564 }],
          cpuCores: 16,
          memoryMb: 65_536,
        },
      },
      {
        operator: roles.operatorB,
        delay: 8,
        teeSimulated: teeFiles?.untrusted,
        images: [],
        hardware: {
          gpus: [
            { name: 'NVIDIA RTX A5000', vramMb: 24_564 },
            { name: 'NVIDIA RTX A5000', vramMb: 24_564 },
          ],
          cpuCores: 32,
          memoryMb: 131_072,
        },
      },
    ];
    for (const rig of rigs) {
      const wo = await createWorkerOptions(
        {
          network: 'devnet',
          rpcUrl: grid.rpcUrl,
          grid: grid.grid,
          gateway: `${url.replace(/^http/, 'ws')}${WORKER_PATH}`,
          model: MODEL.name,
          backend: 'ollama',
          weightsHash: MODEL.weightsHash,
          logLevel: 'silent',
          ...(rig.teeSimulated ? { teeSimulated: rig.teeSimulated } : {}),
        },
        { AIPG_OPERATOR_KEY: rig.operator.privateKey, PATH: '' },
      );
      const w = await startWorker(
        { ...wo, metrics: null },
        {
          backends: [{ backend: fakeBackend(rig.delay), maxConcurrency: 2 }, ...rig.images],
          hardware: rig.hardware,
        },
      );
      workers.push(w);
      stops.push(() => w.stop({ force: true }));
      await w.ready();
    }
    if (attestations) {
      // The gateway verifies login evidence after `welcome`: wait for both verdicts.
      const deadline = Date.now() + 15_000;
      const settled = () => {
        const list = attestations.list({ evidence: false });
        return list.length === rigs.length && list.every((a) => a.status !== 'pending');
      };
      while (!settled()) {
        if (Date.now() > deadline) throw new Error('the TEE workers were not verified within 15 s');
        await new Promise((r) => setTimeout(r, 25));
      }
    }

    const apiKey = await createApiKey(
      { url, gateway: chain.gateway, chainId: chain.chainId },
      roles.payer.privateKey,
    );
    const wallet = (key: Hex) => grid.client(key);
    let harness: Awaited<ReturnType<typeof installSlashHarness>> | undefined;

    return {
      grid,
      url,
      apiKey,
      workers,
      anchorsFile: teeFiles?.anchors ?? null,
      async chat(content = 'Say hello to the grid') {
        const res = await fetch(`${url}/v1/chat/completions`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: MODEL.name, messages: [{ role: 'user', content }], max_tokens: 16 }),
        });
        const body = (await res.json()) as { id: string; grid: { fee: string; worker: Address } };
        if (res.status !== 200) throw new Error(`chat failed: ${res.status} ${JSON.stringify(body)}`);
        return body;
      },
      async image(req) {
        const res = await fetch(`${url}/v1/images/generations`, {
          method: 'POST',
          headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
          body: JSON.stringify({ model: IMAGE_MODEL.name, size: '64x64', response_format: 'url', ...req }),
        });
        const body = (await res.json()) as Awaited<ReturnType<Stack['image']>>;
        if (res.status !== 200) throw new Error(`image failed: ${res.status} ${JSON.stringify(body)}`);
        return body;
      },
      settle: () => settlement.flush(),
      index: () => network.indexer.syncNow(),
      async increaseWorkerBond(owner, aipg) {
        const c = wallet(owner.privateKey);
        await approveToken(c, {
          token: grid.chain.deployment.token,
          spender: grid.grid,
          amount: parseAipg(aipg),
        });
        await increaseBond(c, { grid: grid.grid, role: 'worker', amount: parseAipg(aipg) });
      },
      async unbondWorker(owner, aipg) {
        await requestUnbond(wallet(owner.privateKey), {
          grid: grid.grid,
          role: 'worker',
          amount: parseAipg(aipg),
        });
      },
      async slash(owner, aipg) {
        harness ??= await installSlashHarness(grid);
        await harness.slash(owner, parseAipg(aipg));
      },
      async reportGatewayFault(reason) {
        const settled = (await storage.receipts.listBatches(20)).find((b) => b.status === 'settled');
        if (!settled) throw new Error('no settled batch to report');
        const batch = await audit.batch(settled.root);
        const first = batch.receipts[0]!;
        const batchId = BigInt(batch.batch_id!);
        const g = grid.grid;
        if (!(await getBatchAudit(grid.publicClient, { grid: g, batchId })).fixed) {
          const delay = grid.chain.deployment.params.audit!.randomnessDelay;
          await rpc(grid.rpcUrl, 'anvil_mine', [`0x${(delay + 1).toString(16)}`]);
          await fixRandomness(wallet(roles.owner.privateKey), { grid: g, batchId });
        }
        const r = await reportGatewayFault(wallet(roles.validatorOperator.privateKey), {
          grid: g,
          batchId,
          leaf: first.leaf as Hex,
          proof: first.proof as Hex[],
          reason,
          evidenceHash: keccak256(toHex(`evidence of ${reason} on ${first.leaf}`)),
        });
        return { batchId, leaf: r.leaf, gateway: r.gateway };
      },
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
