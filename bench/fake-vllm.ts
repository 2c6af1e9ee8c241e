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

function sse(res: ServerResponse, chunks: unknown[]) {
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' });
  for (const c of chunks) res.write(`data: ${JSON.stringify(c)}\n\n`);
  res.end('data: [DONE]\n\n');
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
        return sse(res, [
          { id, object: 'text_completion', created, model: body.model, choices: [choice], usage },
        ]);
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
