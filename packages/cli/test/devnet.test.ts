import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGridClients, getAccountStatus } from '@aipg/chain';
import { computeImageFee, hashImage, imageInfo, parseAipg, ZERO_TRAJECTORY } from '@aipg/core';
import OpenAI from 'openai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type StartDevnetReturnType, startDevnet } from '../src/devnet/start-devnet.ts';

// The whole network in-process, on free ports, with the project's real model and the official
// `openai` npm client: what a developer gets from `npm start`.
let net: StartDevnetReturnType;
let dir: string;
let client: OpenAI;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-devnet-'));
  net = await startDevnet({
    dir,
    port: 0,
    rpcPort: 0,
    model: 'tiny',
    settleIntervalMs: 60_000,
    logLevel: 'silent',
  });
  client = new OpenAI({ baseURL: `${net.gatewayUrl}/v1`, apiKey: net.apiKey, maxRetries: 0 });
});

afterAll(async () => {
  await net?.stop();
  await rm(dir, { recursive: true, force: true });
});

async function balance() {
  const res = await fetch(`${net.gatewayUrl}/v1/balance`, {
    headers: { authorization: `Bearer ${net.apiKey}` },
  });
  return (await res.json()) as { unsettled: { wei: string }; deposit: { wei: string } };
}

type Grid = { job_id: string; worker: string; fee_wei: string; receipt_signature: string };

describe('aipg devnet with the official openai client', () => {
  it('writes devnet.json with everything a script needs', async () => {
    const info = JSON.parse(await readFile(join(dir, 'devnet.json'), 'utf8'));
    for (const k of ['rpcUrl', 'chainId', 'contracts', 'gatewayUrl', 'apiKey', 'dashboardUrl'])
      expect(info).toHaveProperty(k);
    expect(info.contracts.grid).toBe(net.deployment.grid);
    expect(info.apiKey).toBe(net.apiKey);
  });

  it('lists the registered model with its rate card and a worker online', async () => {
    const models = await client.models.list();
    const m = models.data.find((x) => x.id === net.model.name) as unknown as {
      grid: { model_id: string; workers_online: number; rates: { input_per_m_wei: string } };
    };
    expect(m.grid.model_id).toBe(net.model.modelId);
    expect(m.grid.workers_online).toBe(1);
    expect(BigInt(m.grid.rates.input_per_m_wei)).toBeGreaterThan(0n);
  });

  it('chat non-streaming: text, usage, and a fee that lands in the payer balance', async () => {
    const before = BigInt((await balance()).unsettled.wei);
    const chat = await client.chat.completions.create({
      model: net.model.name,
      messages: [{ role: 'user', content: 'Hello, grid!' }],
      max_tokens: 24,
      temperature: 0,
    });
    const grid = (chat as unknown as { grid: Grid }).grid;
    expect(chat.choices[0]!.message.role).toBe('assistant');
    expect(chat.usage!.completion_tokens).toBeGreaterThan(0);
    expect(chat.usage!.total_tokens).toBe(chat.usage!.prompt_tokens + chat.usage!.completion_tokens);
    expect(grid.worker).toBe(net.accounts.worker);
    expect(grid.receipt_signature).toMatch(/^0x[0-9a-f]{130}$/);
    expect(BigInt(grid.fee_wei)).toBeGreaterThan(0n);
    const after = BigInt((await balance()).unsettled.wei);
    expect(after - before).toBe(BigInt(grid.fee_wei));
  });

  it('chat streaming with include_usage: deltas add up, usage and grid in the final chunk', async () => {
    const stream = await client.chat.completions.create({
      model: net.model.name,
      messages: [{ role: 'user', content: 'Tell me about the chain.' }],
      max_tokens: 24,
      seed: 7,
      temperature: 0.8,
      stream: true,
      stream_options: { include_usage: true },
    });
    let text = '';
    let usage: OpenAI.CompletionUsage | undefined;
    let grid: Grid | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? '';
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (chunk.usage) usage = chunk.usage;
      grid = (chunk as unknown as { grid?: Grid }).grid ?? grid;
    }
    expect(['stop', 'length']).toContain(finish);
    expect(usage!.completion_tokens).toBeGreaterThan(0);
    expect(BigInt(grid!.fee_wei)).toBeGreaterThan(0n);
    // the same seed gives the same text through the non-streaming path
    const again = await client.chat.completions.create({
      model: net.model.name,
      messages: [{ role: 'user', content: 'Tell me about the chain.' }],
      max_tokens: 24,
      seed: 7,
      temperature: 0.8,
    });
    expect(again.choices[0]!.message.content).toBe(text);
  });

  it('completions', async () => {
    const res = await client.completions.create({ model: net.model.name, prompt: 'The node', max_tokens: 8 });
    expect(res.object).toBe('text_completion');
    expect(res.usage!.prompt_tokens).toBeGreaterThan(0);
    expect(res.choices[0]!.text.length).toBeGreaterThanOrEqual(0);
  });

  it('errors come in OpenAI shape with the right status', async () => {
    const unknownModel = await client.chat.completions
      .create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] })
      .catch((e: unknown) => e);
    expect(unknownModel).toBeInstanceOf(OpenAI.NotFoundError);
    expect((unknownModel as InstanceType<typeof OpenAI.APIError>).error).toMatchObject({
      message: expect.any(String),
    });

    const badKey = new OpenAI({ baseURL: `${net.gatewayUrl}/v1`, apiKey: 'aipg-wrong', maxRetries: 0 });
    await expect(
      badKey.models.list().then(() =>
        badKey.chat.completions.create({
          model: net.model.name,
          messages: [{ role: 'user', content: 'x' }],
        }),
      ),
    ).rejects.toBeInstanceOf(OpenAI.AuthenticationError);

    const badBody = await client.chat.completions
      .create({ model: net.model.name, messages: [], max_tokens: -1 } as never)
      .catch((e: unknown) => e);
    expect(badBody).toBeInstanceOf(OpenAI.BadRequestError);
  });

  it('images.generate: a real image from the embedded pipeline, its exact fee, on the same worker', async () => {
    const before = BigInt((await balance()).unsettled.wei);
    const res = await client.images.generate({
      model: net.imageModel.name,
      prompt: 'a lighthouse at dawn',
      size: '256x256' as '1024x1024',
      // grid extensions
      ...({ steps: 4, seed: 7 } as object),
    });
    const bytes = Buffer.from(res.data![0]!.b64_json!, 'base64');
    expect(imageInfo(bytes)).toEqual({ format: 'png', width: 256, height: 256 });
    const grid = (res as unknown as { grid: Grid & { images: { hash: string; trajectory_root: string }[] } })
      .grid;
    expect(grid.worker).toBe(net.accounts.worker);
    expect(grid.images[0]!.hash).toBe(hashImage(bytes));
    // The embedded pipeline commits to its per-step latents.
    expect(grid.images[0]!.trajectory_root).not.toBe(ZERO_TRAJECTORY);
    const fee = computeImageFee({
      params: { width: 256, height: 256, steps: 4, n: 1 },
      rates: { perMegapixelStep: parseAipg('0.01') },
    });
    expect(BigInt(grid.fee_wei)).toBe(fee);
    expect(BigInt((await balance()).unsettled.wei) - before).toBe(fee);
  });

  it('settles: the payer is debited on chain and the worker earns', async () => {
    const { publicClient } = createGridClients({ rpcUrl: net.rpcUrl, chainId: net.chainId });
    const owed = BigInt((await balance()).unsettled.wei);
    expect(owed).toBeGreaterThan(0n);
    const payerBefore = await getAccountStatus(publicClient, {
      grid: net.contracts.grid,
      account: net.accounts.payer,
    });
    await net.gateway.settleNow();
    const payerAfter = await getAccountStatus(publicClient, {
      grid: net.contracts.grid,
      account: net.accounts.payer,
    });
    expect(payerBefore.deposit.balance - payerAfter.deposit.balance).toBe(owed);
    const worker = await getAccountStatus(publicClient, {
      grid: net.contracts.grid,
      account: net.accounts.worker,
    });
    // the worker's share (80% on the devnet) of everything it served
    expect(worker.earnings).toBe((owed * 8_000n) / 10_000n);
    expect(BigInt((await balance()).unsettled.wei)).toBe(0n);
  });
});
