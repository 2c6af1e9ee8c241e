import OpenAI from 'openai';
import { afterAll, beforeAll, expect, test } from 'vitest';
import type { StartGatewayReturnType } from '../src/index.ts';
import {
  createApiKey,
  dropTestSchema,
  loadTestTokenizer,
  MODEL,
  roles,
  startTestGateway,
  startTestGrid,
  type TestGrid,
} from './helpers/grid.ts';
import { DEFAULT_TEXT, ScriptedWorker } from './helpers/worker.ts';

// The official `openai` npm client against a running gateway: every shape it parses must be right.
let grid: TestGrid;
let gw: StartGatewayReturnType;
let worker: ScriptedWorker;
let client: OpenAI;

type Grid = {
  job_id: string;
  worker: string;
  fee: string;
  fee_wei: string;
  ttft_ms: number;
  tokens_per_second: number;
  receipt_signature: string;
};

beforeAll(async () => {
  grid = await startTestGrid();
  gw = await startTestGateway(grid);
  worker = new ScriptedWorker({
    url: gw.workerUrl,
    operatorKey: roles.operatorA.privateKey,
    owner: roles.workerA.address,
    models: [MODEL],
  });
  await worker.connect();
  client = new OpenAI({
    apiKey: await createApiKey(gw, roles.payer.privateKey),
    baseURL: `${gw.url}/v1`,
    maxRetries: 0,
  });
});

afterAll(async () => {
  await worker?.close();
  const options = gw?.common.options;
  await gw?.stop();
  if (options) await dropTestSchema(options);
  await grid?.stop();
});

test('models.list', async () => {
  const models = [];
  for await (const m of client.models.list()) models.push(m);
  expect(models.map((m) => m.id)).toContain(MODEL.name);
  const one = await client.models.retrieve(MODEL.name);
  expect(one.object).toBe('model');
});

test('chat.completions.create, non-streaming', async () => {
  const r = await client.chat.completions.create({
    model: MODEL.name,
    messages: [
      { role: 'system', content: 'Be brief.' },
      { role: 'user', content: 'Hello?' },
    ],
    max_completion_tokens: 16,
    temperature: 0.7,
    top_p: 0.9,
    seed: 42,
    stop: ['\n\n'],
  });
  expect(r.object).toBe('chat.completion');
  expect(r.choices[0]?.message).toMatchObject({ role: 'assistant', content: DEFAULT_TEXT });
  expect(r.choices[0]?.finish_reason).toBe('stop');
  expect(r.usage).toMatchObject({ completion_tokens: 6 });
  expect(r.usage!.total_tokens).toBe(r.usage!.prompt_tokens + 6);
  // The gateway tokenized the prompt itself (the model's template and tokenizer), sent exactly those ids
  // to the worker, and bills exactly their count.
  const tokenizer = await loadTestTokenizer();
  const ids = tokenizer.chatPromptTokenIds([
    { role: 'system', content: 'Be brief.' },
    { role: 'user', content: 'Hello?' },
  ]);
  expect(worker.jobs.at(-1)?.promptTokenIds).toEqual(ids);
  expect(r.usage!.prompt_tokens).toBe(ids.length);
  const g = (r as unknown as { grid: Grid }).grid;
  expect(g.worker).toBe(roles.workerA.address);
  expect(BigInt(g.fee_wei)).toBeGreaterThan(0n);
  expect(g.fee).toMatch(/^0\.\d+$/);
  expect(worker.jobs.at(-1)?.params).toEqual({
    maxTokens: 16,
    temperature: 0.7,
    topP: 0.9,
    seed: 42,
    stop: ['\n\n'],
  });
});

test('chat.completions.create, streaming with include_usage', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL.name,
    messages: [{ role: 'user', content: 'Stream please' }],
    max_tokens: 3,
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let finish: string | null = null;
  let usage: OpenAI.CompletionUsage | null | undefined;
  let g: Grid | undefined;
  let role: string | undefined;
  for await (const chunk of stream) {
    expect(chunk.object).toBe('chat.completion.chunk');
    role ??= chunk.choices[0]?.delta.role;
    text += chunk.choices[0]?.delta.content ?? '';
    finish = chunk.choices[0]?.finish_reason ?? finish;
    if (chunk.usage) {
      usage = chunk.usage;
      expect(chunk.choices).toEqual([]);
      g = (chunk as unknown as { grid: Grid }).grid;
    }
  }
  expect(role).toBe('assistant');
  expect(text).toBe('the grid serves');
  expect(finish).toBe('length');
  expect(usage?.completion_tokens).toBe(3);
  expect(g?.receipt_signature).toMatch(/^0x/);
  expect(g?.ttft_ms).toBeGreaterThanOrEqual(0);
});

test('chat streaming without include_usage still ends with usage and grid on the finish chunk', async () => {
  const stream = await client.chat.completions.create({
    model: MODEL.name,
    messages: [{ role: 'user', content: 'x' }],
    stream: true,
  });
  const chunks = [];
  for await (const c of stream) chunks.push(c);
  const last = chunks.at(-1) as unknown as {
    choices: { finish_reason: string }[];
    usage: OpenAI.CompletionUsage;
    grid: Grid;
  };
  expect(last.choices[0]?.finish_reason).toBe('stop');
  expect(last.usage.completion_tokens).toBe(6);
  expect(last.grid.job_id).toMatch(/^0x/);
});

test('completions.create, plain and streaming', async () => {
  const r = await client.completions.create({ model: MODEL.name, prompt: 'Once upon', max_tokens: 2 });
  expect(r.object).toBe('text_completion');
  expect(r.choices[0]?.text).toBe('the grid');
  expect(r.choices[0]?.finish_reason).toBe('length');
  expect(r.usage?.completion_tokens).toBe(2);
  const stream = await client.completions.create({
    model: MODEL.name,
    prompt: 'Once upon',
    stream: true,
    stream_options: { include_usage: true },
  });
  let text = '';
  let usage: OpenAI.CompletionUsage | undefined;
  for await (const c of stream) {
    text += c.choices[0]?.text ?? '';
    if (c.usage) usage = c.usage;
  }
  expect(text).toBe(DEFAULT_TEXT);
  expect(usage?.completion_tokens).toBe(6);
});

test('errors arrive as typed APIErrors with status, code and param', async () => {
  const err = async (p: Promise<unknown>) => {
    try {
      await p;
    } catch (e) {
      return e as InstanceType<typeof OpenAI.APIError>;
    }
    throw new Error('expected an error');
  };
  const notFound = await err(
    client.chat.completions.create({ model: 'no-such-model', messages: [{ role: 'user', content: 'x' }] }),
  );
  expect(notFound).toBeInstanceOf(OpenAI.NotFoundError);
  expect(notFound.code).toBe('model_not_found');
  expect(notFound.param).toBe('model');

  const bad = await err(
    client.chat.completions.create({
      model: MODEL.name,
      messages: [{ role: 'user', content: 'x' }],
      temperature: 5,
    }),
  );
  expect(bad).toBeInstanceOf(OpenAI.BadRequestError);
  expect(bad.param).toBe('temperature');

  const stranger = new OpenAI({ apiKey: 'aipg-nope', baseURL: `${gw.url}/v1`, maxRetries: 0 });
  const unauth = await err(
    stranger.chat.completions.create({ model: MODEL.name, messages: [{ role: 'user', content: 'x' }] }),
  );
  expect(unauth).toBeInstanceOf(OpenAI.AuthenticationError);
  expect(unauth.code).toBe('invalid_api_key');

  const poor = new OpenAI({
    apiKey: await createApiKey(gw, roles.poorPayer.privateKey),
    baseURL: `${gw.url}/v1`,
    maxRetries: 0,
  });
  const broke = await err(
    poor.chat.completions.create({ model: MODEL.name, messages: [{ role: 'user', content: 'x' }] }),
  );
  expect(broke.status).toBe(402);
  expect(broke.code).toBe('insufficient_balance');

  // A failure in the middle of a stream surfaces as an APIError from the iterator.
  worker.opts.script = () => ({ failAfterTokens: { after: 1, how: 'job-error' } });
  try {
    const stream = await client.chat.completions.create({
      model: MODEL.name,
      messages: [{ role: 'user', content: 'x' }],
      stream: true,
    });
    const midStream = await err(
      (async () => {
        for await (const _ of stream) {
          // consume
        }
      })(),
    );
    expect(midStream).toBeInstanceOf(OpenAI.APIError);
    expect(midStream.message).toMatch(/nothing was charged/);
  } finally {
    worker.opts.script = undefined;
  }
});
