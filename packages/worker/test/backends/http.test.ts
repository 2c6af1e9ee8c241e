import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { readBody, request, requestJson, sse } from '../../src/backends/http.ts';

// The backends' HTTP client (node:http): a body left early is closed (never a connection held open by
// a reader that stopped), aborts and broken streams are the errors the backends map, keep-alive holds.

let server: Server;
let url: string;
let connections = 0;
const sockets = new Set<import('node:net').Socket>();
/** Resolves when the response of the request numbered `n` (from 1) is closed on the server side. */
const closed: Promise<void>[] = [];
let onRequest: (req: IncomingMessage, res: ServerResponse) => void = () => {};

beforeAll(async () => {
  server = createServer((req, res) => {
    closed.push(new Promise((resolve) => res.once('close', () => resolve())));
    onRequest(req, res);
  });
  server.on('connection', (socket) => {
    connections += 1;
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

/** An SSE stream that sends one event and then never ends. */
const endless = (_req: IncomingMessage, res: ServerResponse) => {
  res.writeHead(200, { 'content-type': 'text/event-stream' });
  res.write('data: {"n":1}\n\n');
};

describe('the backends’ HTTP client', () => {
  test('a stream whose reader stops early is closed, not left open', async () => {
    onRequest = endless;
    const opts = { what: 'test stream' };
    for await (const payload of sse(await request(`${url}/s`, opts), opts)) {
      expect(payload).toBe('{"n":1}');
      break;
    }
    await closed.at(-1);
    // The reader threw on a payload (a prompt mismatch, say): closed all the same.
    const read = async () => {
      for await (const _ of sse(await request(`${url}/s`, opts), opts)) throw new Error('refused');
    };
    await expect(read()).rejects.toThrow('refused');
    await closed.at(-1);
  });

  test('an abort while the body streams is INFERENCE_ABORTED; a dropped connection is a retryable stream error', async () => {
    onRequest = endless;
    const controller = new AbortController();
    const opts = { what: 'test stream', signal: controller.signal };
    const read = async () => {
      for await (const _ of sse(await request(`${url}/s`, opts), opts)) controller.abort();
    };
    await expect(read()).rejects.toMatchObject({ code: 'INFERENCE_ABORTED' });
    onRequest = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      res.write('data: {"n":1}\n\n', () => res.destroy());
    };
    const got: string[] = [];
    const broken = async () => {
      for await (const p of sse(await request(`${url}/s`, { what: 'x' }), { what: 'x' })) got.push(p);
    };
    await expect(broken()).rejects.toMatchObject({ code: 'BACKEND_STREAM_ERROR', retryable: true });
    expect(got).toEqual(['{"n":1}']);
  });

  test('JSON answers over one kept-alive connection; an HTTP error carries the server’s message', async () => {
    onRequest = (req, res) => {
      let body = '';
      req.on('data', (d) => {
        body += d;
      });
      req.on('end', () => {
        if (req.url === '/fail') {
          res.writeHead(503, { 'content-type': 'application/json' });
          res.end(JSON.stringify({ error: { message: 'overloaded' } }));
          return;
        }
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ echo: JSON.parse(body || 'null'), method: req.method }));
      });
    };
    const before = connections;
    for (let i = 0; i < 5; i++)
      expect(await requestJson(`${url}/j`, { what: 'echo', body: { i, s: 'é' } })).toEqual({
        echo: { i, s: 'é' },
        method: 'POST',
      });
    expect(connections - before).toBe(1);
    expect(await readBody(await request(`${url}/j`, { what: 'get' }), { what: 'get' })).toBe(
      '{"echo":null,"method":"GET"}',
    );
    await expect(request(`${url}/fail`, { what: 'fail' })).rejects.toMatchObject({
      code: 'BACKEND_HTTP_ERROR',
      details: 'overloaded',
      retryable: true,
    });
  });

  test('a kept-alive connection the server closed while idle: the request goes again on a new one, once', async () => {
    onRequest = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"ok":true}');
    };
    expect(await requestJson(`${url}/j`, { what: 'first' })).toEqual({ ok: true });
    const before = connections;
    // The server drops its idle connection; the next request is written before the client can hear it.
    for (const socket of sockets) socket.destroy();
    expect(await requestJson(`${url}/j`, { what: 'after the close', body: { again: true } })).toEqual({
      ok: true,
    });
    expect(connections - before).toBe(1);
  });

  test('an unreachable server is a retryable BACKEND_UNREACHABLE; an already aborted signal sends nothing', async () => {
    const s = createServer();
    await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
    const dead = `http://127.0.0.1:${(s.address() as AddressInfo).port}`;
    await new Promise((r) => s.close(r));
    await expect(request(dead, { what: 'dead' })).rejects.toMatchObject({
      code: 'BACKEND_UNREACHABLE',
      retryable: true,
    });
    const seen = closed.length;
    await expect(request(`${url}/j`, { what: 'aborted', signal: AbortSignal.abort() })).rejects.toMatchObject(
      { code: 'INFERENCE_ABORTED' },
    );
    expect(closed.length).toBe(seen);
  });
});
