import { randomBytes } from 'node:crypto';
import type { AddressInfo } from 'node:net';
import { gridAbi } from '@aipg/chain';
import {
  helloMessage,
  type ImageCheckMessage,
  type ImageJobMessage,
  type JobMessage,
  loginMessage,
  PROTOCOL_VERSION,
  type ScoreMessage,
  type WorkerToGateway,
  workerToGateway,
} from '@aipg/core';
import {
  type Address,
  type Chain,
  type Client,
  type Hex,
  keccak256,
  type Transport,
  toBytes,
  verifyMessage,
  zeroAddress,
} from 'viem';
import { readContract } from 'viem/actions';
import { type RawData, type WebSocket, WebSocketServer } from 'ws';
import type { z } from 'zod';
import { applyTemplate, tokenize } from './fake-backend.ts';

type Hello = z.infer<typeof helloMessage>;
type TokenFrame = Extract<WorkerToGateway, { type: 'token' }>;
type ResultFrame = Extract<WorkerToGateway, { type: 'result' }>;
type JobErrorFrame = Extract<WorkerToGateway, { type: 'job-error' }>;
type ScoreResultFrame = Extract<WorkerToGateway, { type: 'score-result' }>;
type ImageResultFrame = Extract<WorkerToGateway, { type: 'image-result' }>;
type ImageCheckResultFrame = Extract<WorkerToGateway, { type: 'image-check-result' }>;
type ProgressFrame = Extract<WorkerToGateway, { type: 'progress' }>;
type EndFrame = ResultFrame | JobErrorFrame | ScoreResultFrame | ImageResultFrame | ImageCheckResultFrame;

export type ImageJobHandle = {
  job: ImageJobMessage;
  progress: ProgressFrame[];
  done: Promise<ImageResultFrame | JobErrorFrame>;
};

export type GatewayPeerOptions = {
  chainId: number;
  grid: Address;
  /** The address the gateway announces in its challenge (a receipt's `gateway`). */
  gateway?: Address;
  heartbeatMs?: number;
  /** Send a ping every heartbeat (default true); false plays a gateway that went silent. */
  sendPings?: boolean;
  /** Default 0: any free port. */
  port?: number;
  /** When set, the operator's bond is checked on chain (`workerOf`) as the real gateway does. */
  client?: Client<Transport, Chain | undefined>;
  /** Override the challenge (to test a worker refusing a wrong chain). */
  challenge?: Partial<{ chainId: number; grid: Address; protocolVersion: number }>;
  /**
   * How this gateway tokenizes a job's input into `promptTokenIds` (the real one: BOS + the model's
   * chat template + its registered tokenizer). Default: the fake backend's template and ids.
   */
  tokenize?: (input: JobMessage['input']) => number[];
};

export type JobHandle = {
  job: JobMessage;
  tokens: TokenFrame[];
  /** The job's last frame: its result or its job-error. */
  done: Promise<ResultFrame | JobErrorFrame>;
};

export type ScoreHandle = {
  frame: ScoreMessage;
  /** The score job's last frame: its score-result or its job-error. */
  done: Promise<ScoreResultFrame | JobErrorFrame>;
};

export type PeerConnection = {
  socket: WebSocket;
  challenge: { nonce: Hex; gateway: Address; chainId: number; grid: Address };
  hello: Hello;
  /** True once the login signature was verified against `loginMessage(challenge)`. */
  loginVerified: boolean;
  owner: Address | undefined;
  frames: WorkerToGateway[];
  /** Every frame after the hello as JSON, before the schema strips fields it does not know. */
  rawFrames: unknown[];
  /** Frames that failed the protocol schemas (a test asserts there are none). */
  invalidFrames: unknown[];
  sendJob(job?: Partial<JobMessage> & { content?: string }): JobHandle;
  /** Sends an `image-job` for `modelId` (or the worker's first model). */
  sendImageJob(job?: Partial<ImageJobMessage>): ImageJobHandle;
  /** Sends an `image-check` (a validator's cross-check of an image job). */
  sendImageCheck(frame: Omit<ImageCheckMessage, 'type' | 'jobId'>): Promise<
    ImageCheckResultFrame | JobErrorFrame
  > & {
    jobId: Hex;
  };
  /** Sends a `score` frame (a validator's cross-check) for the worker's first model unless given. */
  sendScore(
    score: Omit<ScoreMessage, 'type' | 'jobId' | 'auditedJobId' | 'modelId'> & Partial<ScoreMessage>,
  ): ScoreHandle;
  cancel(jobId: Hex, reason?: string): void;
  /** Sends the receipt number of a job sent without one (`job-seq`). */
  sendSeq(jobId: Hex, seq: string): void;
  ping(t: number): Promise<number>;
  /** The gateway drops the socket without a closing handshake. */
  drop(): void;
  /** The gateway sends an `error` frame and closes (as the real hub does, code 4403 for bonds). */
  refuse(code: string, message: string): void;
  closed: Promise<{ code: number; reason: string }>;
};

let jobCounter = 0;

/** The fake backend's tokenization: its chat template, UTF-8 bytes + 3, BOS first. */
export const fakeTokenize = (input: JobMessage['input']) => tokenize(applyTemplate(input));

export function makeJob(
  modelId: Hex,
  overrides: Partial<JobMessage> & { content?: string } = {},
  tokenizeInput: (input: JobMessage['input']) => number[] = fakeTokenize,
): JobMessage {
  const { content, ...rest } = overrides;
  jobCounter += 1;
  const input = rest.input ?? { messages: [{ role: 'user', content: content ?? 'hello grid' }] };
  return {
    type: 'job',
    jobId: keccak256(toBytes(`job ${jobCounter} ${randomBytes(8).toString('hex')}`)),
    // One receipt number per job, never reused in this process (as a gateway numbers its dispatches).
    seq: String(jobCounter),
    modelId,
    payer: '0x90F79bf6EB2c4f870365E785982E1f101E93b906',
    kind: 'chat',
    input,
    // The gateway tokenizes every request itself (protocol v3); a test may send other ids.
    promptTokenIds: rest.promptTokenIds ?? tokenizeInput(input),
    params: { maxTokens: 16, temperature: 0, topP: 1, seed: null, stop: [] },
    pricing: {
      inputPerMTokens: '1000000000000000000',
      outputPerMTokens: '3000000000000000000',
      confidentialPremiumBps: 2500,
    },
    confidential: false,
    stream: false,
    ...rest,
  };
}

/**
 * A minimal gateway hub that speaks the real protocol to one or more workers: challenge, login
 * signature verified, bond checked on chain (when given a client), welcome, jobs, cancels, pings.
 */
export async function startGatewayPeer(options: GatewayPeerOptions) {
  const gateway = options.gateway ?? '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65';
  const heartbeatMs = options.heartbeatMs ?? 60_000;
  const wss = new WebSocketServer({
    host: '127.0.0.1',
    port: options.port ?? 0,
    path: '/v1/workers/connect',
  });
  await new Promise<void>((resolve) => wss.once('listening', () => resolve()));
  const port = (wss.address() as AddressInfo).port;
  const connections: PeerConnection[] = [];
  const waiters: ((c: PeerConnection) => void)[] = [];
  const rejections: { code: string; message: string }[] = [];
  let connectionAttempts = 0;

  wss.on('connection', (socket) => {
    connectionAttempts += 1;
    const challenge = {
      nonce: `0x${randomBytes(32).toString('hex')}` as Hex,
      gateway,
      chainId: options.challenge?.chainId ?? options.chainId,
      grid: options.challenge?.grid ?? options.grid,
    };
    const jobs = new Map<
      Hex,
      { handle?: JobHandle; imageHandle?: ImageJobHandle; resolve: (f: EndFrame) => void }
    >();
    const pongs = new Map<number, (t: number) => void>();
    const frames: WorkerToGateway[] = [];
    const rawFrames: unknown[] = [];
    const invalidFrames: unknown[] = [];
    let conn: PeerConnection | undefined;
    const closed = new Promise<{ code: number; reason: string }>((resolve) =>
      socket.once('close', (code, reason) => resolve({ code, reason: reason.toString() })),
    );
    const send = (frame: unknown) => socket.send(JSON.stringify(frame));
    const refuse = (code: string, message: string) => {
      rejections.push({ code, message });
      send({ type: 'error', code, message });
      socket.close(4403, code);
    };

    socket.on('message', async (data: RawData) => {
      let json: unknown;
      try {
        json = JSON.parse(String(data));
      } catch {
        invalidFrames.push(String(data));
        return;
      }
      if (!conn) {
        const hello = helloMessage.safeParse(json);
        if (!hello.success) {
          invalidFrames.push(json);
          return refuse('protocol_error', hello.error.issues[0]?.message ?? 'invalid hello');
        }
        const ok = await verifyMessage({
          address: hello.data.operator,
          message: loginMessage(challenge),
          signature: hello.data.signature,
        });
        if (!ok) return refuse('bad_signature', 'login signature does not match the operator');
        let owner: Address | undefined;
        if (options.client) {
          owner = await readContract(options.client, {
            address: options.grid,
            abi: gridAbi,
            functionName: 'workerOf',
            args: [hello.data.operator],
          });
          if (owner === zeroAddress) return refuse('not_bonded', 'operator has no worker bond');
        }
        conn = {
          socket,
          challenge,
          hello: hello.data,
          loginVerified: ok,
          owner,
          frames,
          rawFrames,
          invalidFrames,
          sendJob(partial = {}) {
            const job = makeJob(hello.data.models[0]?.modelId as Hex, partial, options.tokenize);
            let resolve: (f: ResultFrame | JobErrorFrame) => void = () => {};
            const done = new Promise<ResultFrame | JobErrorFrame>((r) => {
              resolve = r;
            });
            const handle: JobHandle = { job, tokens: [], done };
            jobs.set(job.jobId, { handle, resolve: resolve as (f: EndFrame) => void });
            send(job);
            return handle;
          },
          sendImageCheck(partial) {
            const frame: ImageCheckMessage = {
              type: 'image-check',
              jobId: keccak256(toBytes(`check ${randomBytes(8).toString('hex')}`)),
              ...partial,
            };
            let resolve: (f: ImageCheckResultFrame | JobErrorFrame) => void = () => {};
            const done = new Promise<ImageCheckResultFrame | JobErrorFrame>((r) => {
              resolve = r;
            });
            jobs.set(frame.jobId, { resolve: resolve as (f: EndFrame) => void });
            send(frame);
            return Object.assign(done, { jobId: frame.jobId });
          },
          sendImageJob(partial = {}) {
            const job: ImageJobMessage = {
              type: 'image-job',
              jobId: keccak256(toBytes(`image ${randomBytes(8).toString('hex')}`)),
              seq: String(900_000 + Math.floor(Math.random() * 1_000_000)),
              modelId: hello.data.models[0]?.modelId as Hex,
              payer: '0x90F79bf6EB2c4f870365E785982E1f101E93b906',
              promptTokenIds: [...Buffer.from('a lighthouse')],
              negativeTokenIds: [],
              params: {
                width: 64,
                height: 64,
                steps: 3,
                guidance: 7.5,
                seed: 1,
                n: 1,
                scheduler: 'ddim',
                format: 'png',
              },
              pricing: { perMegapixelStep: '1000000000000000', confidentialPremiumBps: 0 },
              confidential: false,
              partialImages: 0,
              ...partial,
            };
            let resolve: (f: ImageResultFrame | JobErrorFrame) => void = () => {};
            const done = new Promise<ImageResultFrame | JobErrorFrame>((r) => {
              resolve = r;
            });
            const imageHandle: ImageJobHandle = { job, progress: [], done };
            jobs.set(job.jobId, { imageHandle, resolve: resolve as (f: EndFrame) => void });
            send(job);
            return imageHandle;
          },
          sendScore(partial) {
            const frame: ScoreMessage = {
              type: 'score',
              jobId: keccak256(toBytes(`score ${randomBytes(8).toString('hex')}`)),
              auditedJobId: keccak256(toBytes(`audited ${randomBytes(8).toString('hex')}`)),
              modelId: hello.data.models[0]?.modelId as Hex,
              ...partial,
            };
            let resolve: (f: ScoreResultFrame | JobErrorFrame) => void = () => {};
            const done = new Promise<ScoreResultFrame | JobErrorFrame>((r) => {
              resolve = r;
            });
            jobs.set(frame.jobId, { resolve: resolve as (f: EndFrame) => void });
            send(frame);
            return { frame, done };
          },
          cancel(jobId, reason = 'client went away') {
            send({ type: 'cancel', jobId, reason });
          },
          sendSeq(jobId, seq) {
            send({ type: 'job-seq', jobId, seq });
          },
          ping(t) {
            return new Promise((resolve) => {
              pongs.set(t, resolve);
              send({ type: 'ping', t });
            });
          },
          drop() {
            socket.terminate();
          },
          refuse(code, message) {
            refuse(code, message);
          },
          closed,
        };
        connections.push(conn);
        send({ type: 'welcome', workerId: `w-${connections.length}`, heartbeatMs });
        if (options.sendPings !== false) {
          const timer = setInterval(() => send({ type: 'ping', t: Date.now() }), heartbeatMs);
          socket.once('close', () => clearInterval(timer));
        }
        for (const w of waiters.splice(0)) w(conn);
        return;
      }
      rawFrames.push(json);
      const parsed = workerToGateway.safeParse(json);
      if (!parsed.success) {
        invalidFrames.push(json);
        return;
      }
      const frame = parsed.data;
      frames.push(frame);
      if (frame.type === 'pong') {
        pongs.get(frame.t)?.(frame.t);
        return;
      }
      // Confidential frames are read from `frames` by the tests that send sealed jobs.
      if (frame.type === 'hello' || frame.type === 'attestation' || frame.type === 'sealed-chunk') return;
      if (frame.type === 'sealed-result') return;
      const entry = jobs.get(frame.jobId);
      if (!entry) return;
      if (frame.type === 'token') entry.handle?.tokens.push(frame);
      else if (frame.type === 'progress') entry.imageHandle?.progress.push(frame);
      else entry.resolve(frame);
    });

    send({
      type: 'challenge',
      ...challenge,
      protocolVersion: options.challenge?.protocolVersion ?? PROTOCOL_VERSION,
    });
  });

  return {
    url: `ws://127.0.0.1:${port}/v1/workers/connect`,
    port,
    gateway,
    connections,
    rejections,
    get connectionAttempts() {
      return connectionAttempts;
    },
    /** The next worker to log in (or the latest one, when `existing` and one is connected). */
    nextWorker(): Promise<PeerConnection> {
      return new Promise((resolve) => waiters.push(resolve));
    },
    async close(): Promise<void> {
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
    },
  };
}
export type GatewayPeer = Awaited<ReturnType<typeof startGatewayPeer>>;
