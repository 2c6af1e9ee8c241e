/**
 * The bench's backend: an instant OpenAI-compatible server shaped like vLLM's (`return_token_ids`:
 * the prompt ids it ran and the sampled ids), so Portkey's gateway and our `openai` worker backend call
 * the very same server. Every answer is the same 8 tokens of the tiny preset's vocabulary, finish
 * `length`. Run as its own process (its CPU is counted apart): prints `PORT <n>` once listening.
 *
 *   node --import tsx bench/fake-vllm.ts
 */
import { createServer, type ServerResponse } from 'node:http';

/** Eight ordinary word pieces of the generated models' shared vocabulary (any valid ids would do). */
const OUTPUT_IDS = [300, 301, 302, 303, 304, 305, 306, 307];
const TEXT = ' the grid serves every one of you';
const created = 1_790_000_000;
let n = 0;

function send(res: ServerResponse, status: number, body: unknown) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

/**
 * `BENCH_BACKEND_TOKENS=each`: a streamed completion sends each token in its own event, one event per
 * turn of the loop (as vLLM sends them as they are sampled, each its own read for the client); by
 * default every token in one event, the whole answer in one write.
 */
const EACH = process.env.BENCH_BACKEND_TOKENS === 'each';

function sse(res: ServerResponse, chunks: unknown[]) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  const events = chunks.map((c) => `data: ${JSON.stringify(c)}\n\n`);
  if (!EACH) {
    for (const e of events) res.write(e);
    res.end('data: [DONE]\n\n');
    return;
  }
  const next = () => {
    const e = events.shift();
    if (e === undefined) return void res.end('data: [DONE]\n\n');
    res.write(e);
    setImmediate(next);
  };
  next();
}

/** A completion choice as its own events, a token each (`EACH`), the last with the finish and usage. */
function perToken<
  C extends { token_ids: number[]; text: string; finish_reason: string | null; prompt_token_ids: unknown },
>(head: Record<string, unknown>, choice: C, usage: unknown): unknown[] {
  if (!EACH) return [{ ...head, choices: [choice], usage }];
  return choice.token_ids.map((id, i) => {
    const last = i === choice.token_ids.length - 1;
    return {
      ...head,
      choices: [
        {
          ...choice,
          text: last ? choice.text : '',
          token_ids: [id],
          prompt_token_ids: i === 0 ? choice.prompt_token_ids : undefined,
          finish_reason: last ? choice.finish_reason : null,
        },
      ],
      ...(last ? { usage } : {}),
    };
  });
}

const server = createServer((req, res) => {
  const chunks: Buffer[] = [];
  req.on('data', (c) => chunks.push(c));
  req.on('end', () => {
    const path = req.url?.split('?')[0] ?? '';
    if (req.method === 'GET' && path === '/v1/models')
      return send(res, 200, {
        object: 'list',
        data: [{ id: 'bench-echo', object: 'model', owned_by: 'bench' }],
      });
    let body: {
      model?: string;
      prompt?: string | number[];
      messages?: unknown[];
      max_tokens?: number;
      stream?: boolean;
    };
    try {
      body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      return send(res, 400, { error: { message: 'invalid JSON' } });
    }
    const id = `bench-${++n}`;
    const ids = OUTPUT_IDS.slice(0, Math.max(1, Math.min(OUTPUT_IDS.length, body.max_tokens ?? 8)));
    const finish_reason = 'length';
    const prompt = Array.isArray(body.prompt) ? body.prompt : [1, 2, 3];
    const usage = {
      prompt_tokens: prompt.length,
      completion_tokens: ids.length,
      total_tokens: prompt.length + ids.length,
    };
    if (path === '/v1/completions') {
      const choice = { index: 0, text: TEXT, token_ids: ids, prompt_token_ids: prompt, finish_reason };
      if (body.stream)
        return sse(
          res,
          perToken({ id, object: 'text_completion', created, model: body.model }, choice, usage),
        );
      return send(res, 200, {
        id,
        object: 'text_completion',
        created,
        model: body.model,
        choices: [choice],
        usage,
      });
    }
    if (path === '/v1/chat/completions') {
      if (body.stream)
        return sse(res, [
          {
            id,
            object: 'chat.completion.chunk',
            created,
            model: body.model,
            choices: [{ index: 0, delta: { role: 'assistant', content: TEXT }, finish_reason: null }],
          },
          {
            id,
            object: 'chat.completion.chunk',
            created,
            model: body.model,
            choices: [{ index: 0, delta: {}, finish_reason }],
          },
        ]);
      return send(res, 200, {
        id,
        object: 'chat.completion',
        created,
        model: body.model,
        choices: [{ index: 0, message: { role: 'assistant', content: TEXT }, finish_reason }],
        usage,
      });
    }
    send(res, 404, { error: { message: `no route ${path}` } });
  });
});
server.keepAliveTimeout = 60_000;
server.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => {
  const address = server.address();
  process.stdout.write(`PORT ${typeof address === 'object' && address ? address.port : 0}\n`);
});
