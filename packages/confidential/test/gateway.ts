/**
 * A tiny in-test gateway (node:http) that plays docs/confidential.md: `/v1/attestation` answers with a
 * simulated worker's evidence for the client's nonce, `/v1/chat/completions` relays the sealed request to
 * the "worker" (opened here with its key pair) and answers sealed chunks. It logs every body it receives,
 * as a gateway might, so tests can check no plaintext ever reached it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { openRequest, requestAad, type SimulatedTee, sealChunk, type TeeKeyPair } from '@aipg/tee';
import type { Address, Hex } from 'viem';

export type Tamper = 'none' | 'reorder' | 'truncate' | 'flip' | 'plaintext';

export type GatewayOptions = {
  tee: SimulatedTee;
  worker: { address: Address; signer: Address; keyPair: TeeKeyPair };
  /** Evidence to list for a challenge (default: fresh evidence for the client's nonce). */
  evidenceFor?: (nonce: Hex) => Promise<unknown>;
};

export type LoggedRequest = { method: string; path: string; body: string };

export type TestGateway = {
  url: string;
  log: LoggedRequest[];
  /** How the next streamed answers are mangled. */
  tamper: Tamper;
  /** Answer the next N chat requests with 503 worker_unavailable. */
  unavailable: number;
  /** List no worker. */
  empty: boolean;
  close(): Promise<void>;
};

const encode = (s: string) => new TextEncoder().encode(s);
const b64 = (b: Uint8Array) => Buffer.from(b).toString('base64');

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

function error(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ error: { message, type: 'invalid_request_error', code, param: null } }));
}

/** The "worker": answers `You said: <last user message>`, word by word when streaming. */
function answer(plaintext: Uint8Array): string {
  const request = JSON.parse(new TextDecoder().decode(plaintext)) as { messages: { content: string }[] };
  return `You said: ${request.messages.at(-1)?.content ?? ''}`;
}

export async function startGateway(options: GatewayOptions): Promise<TestGateway> {
  const { tee, worker } = options;
  const state = { tamper: 'none' as Tamper, unavailable: 0, empty: false };
  const log: LoggedRequest[] = [];

  const handle = async (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://gateway');
    const body = await readBody(req);
    log.push({ method: req.method ?? '', path: url.pathname, body });

    if (req.method === 'GET' && url.pathname === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: 'tiny-chat', object: 'model' }] }));
      return;
    }
    if (req.method === 'GET' && url.pathname === '/v1/attestation') {
      const nonce = url.searchParams.get('nonce') as Hex;
      const model = url.searchParams.get('model');
      const evidence = options.evidenceFor
        ? await options.evidenceFor(nonce)
        : await tee.attest({ hpkePublicKey: worker.keyPair.publicKey, signer: worker.signer, nonce });
      if (state.empty) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify({ object: 'list', confidential_premium_bps: 2500, data: [] }));
        return;
      }
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(
        JSON.stringify({
          object: 'list',
          confidential_premium_bps: 2500,
          data: [
            {
              worker: worker.address,
              signer: worker.signer,
              models: [model],
              status: 'valid',
              tcb_status: 'UpToDate',
              simulated: true,
              evidence,
            },
          ],
        }),
      );
      return;
    }
    if (req.method === 'POST' && url.pathname === '/v1/chat/completions') {
      const outer = JSON.parse(body) as {
        model: string;
        stream: boolean;
        messages?: unknown;
        confidential?: boolean;
        encrypted?: { worker: Address; attestation: Hex; enc: string; ciphertext: string };
      };
      if (outer.messages !== undefined || outer.confidential !== true || !outer.encrypted) {
        error(res, 400, 'plaintext_refused', 'a confidential request carries no plaintext messages');
        return;
      }
      if (state.unavailable > 0) {
        state.unavailable -= 1;
        error(res, 503, 'worker_unavailable', 'the worker this request is sealed to is not available');
        return;
      }
      // The worker side: open with its key pair, answer, seal.
      const e = outer.encrypted;
      const { plaintext, responseKey } = await openRequest({
        keyPair: worker.keyPair,
        digest: e.attestation,
        aad: requestAad(outer.model, e.worker, outer.stream),
        enc: new Uint8Array(Buffer.from(e.enc, 'base64')),
        ciphertext: new Uint8Array(Buffer.from(e.ciphertext, 'base64')),
      });
      const text = answer(plaintext);
      const head = { id: 'chatcmpl-test', created: 1_765_000_000, model: outer.model };
      const usage = { prompt_tokens: 12, completion_tokens: 5, total_tokens: 17 };
      const grid = { confidential: true, worker: worker.address };
      if (!outer.stream) {
        const sealed = sealChunk(
          responseKey,
          0,
          true,
          encode(
            JSON.stringify({
              choices: [{ index: 0, message: { role: 'assistant', content: text }, finish_reason: 'stop' }],
            }),
          ),
        );
        const reply =
          state.tamper === 'plaintext'
            ? {
                ...head,
                object: 'chat.completion',
                choices: [{ index: 0, message: { role: 'assistant', content: text } }],
                usage,
              }
            : {
                ...head,
                object: 'chat.completion',
                choices: [],
                encrypted: { seq: 0, final: true, ciphertext: b64(sealed) },
                usage,
                grid,
              };
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(reply));
        return;
      }
      const words = text.split(/(?<= )/);
      let events = words.map((word, seq) => {
        const final = seq === words.length - 1;
        const choices = [{ index: 0, delta: { content: word }, finish_reason: final ? 'stop' : null }];
        const ciphertext = sealChunk(responseKey, seq, final, encode(JSON.stringify({ choices })));
        return JSON.stringify({
          ...head,
          object: 'chat.completion.chunk',
          choices: [],
          encrypted: { seq, final, ciphertext: b64(ciphertext) },
        });
      });
      if (state.tamper === 'reorder') events = [events[1]!, events[0]!, ...events.slice(2)];
      if (state.tamper === 'truncate') events = events.slice(0, -1);
      if (state.tamper === 'flip') {
        const e1 = JSON.parse(events[1]!) as { encrypted: { ciphertext: string } };
        const bytes = Buffer.from(e1.encrypted.ciphertext, 'base64');
        bytes[0]! ^= 1;
        e1.encrypted.ciphertext = bytes.toString('base64');
        events[1] = JSON.stringify(e1);
      }
      if (state.tamper === 'plaintext') {
        events = [
          JSON.stringify({
            ...head,
            object: 'chat.completion.chunk',
            choices: [{ index: 0, delta: { content: text } }],
          }),
        ];
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' });
      for (const event of events) res.write(`data: ${event}\n\n`);
      res.write(
        `data: ${JSON.stringify({ ...head, object: 'chat.completion.chunk', choices: [], usage, grid })}\n\n`,
      );
      res.end('data: [DONE]\n\n');
      return;
    }
    error(res, 404, 'not_found', `no route ${req.method} ${url.pathname}`);
  };

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((e: unknown) => {
      if (!res.headersSent) error(res, 500, 'internal_error', (e as Error).message);
      else res.destroy();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}/v1`,
    log,
    get tamper() {
      return state.tamper;
    },
    set tamper(t: Tamper) {
      state.tamper = t;
    },
    get unavailable() {
      return state.unavailable;
    },
    set unavailable(n: number) {
      state.unavailable = n;
    },
    get empty() {
      return state.empty;
    },
    set empty(e: boolean) {
      state.empty = e;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
