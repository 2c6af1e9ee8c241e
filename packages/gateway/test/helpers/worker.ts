import { deflateSync } from 'node:zlib';
import {
  CANONICAL_SAMPLER,
  computeImageFee,
  computeImageOutputHash,
  computeImageRequestHash,
  computeModelId,
  computeOutputHash,
  computeRequestHash,
  computeTextFee,
  type FinishReason,
  gatewayToWorker,
  hashImage,
  hashLatent,
  type ImageCapabilities,
  type ImageCheckMessage,
  type ImageJobMessage,
  imageCheckTypedData,
  imagePixelSteps,
  type JobMessage,
  latentBytes,
  latentsFromBytes,
  loginMessage,
  PROTOCOL_VERSION,
  type Receipt,
  receiptToJson,
  receiptTypedData,
  type ScoreMessage,
  type ScorePosition,
  scoreAttestation,
  scoreTypedData,
  trajectoryTree,
} from '@aipg/core';
import type { Address, Hex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import WebSocket from 'ws';

/** What the scripted worker does with one job. */
export type Behaviour = {
  /** Output token ids (the tiny preset's vocabulary), streamed one frame each. */
  tokens?: number[];
  /** Prompt ids the result and receipt claim (default: the ids the gateway sent). */
  promptTokenIds?: (sent: number[]) => number[];
  /** Also put this text into every token frame and the result (the old protocol's `text` field). */
  injectText?: string;
  finishReason?: FinishReason;
  tokenDelayMs?: number;
  /**
   * Fail before sending any token: close the socket, send `job-error`, stay silent, or refuse for
   * capacity (`job-error` WORKER_BUSY, as a worker full with other gateways' jobs does).
   */
  failBeforeFirstToken?: 'close' | 'job-error' | 'silent' | 'busy';
  /** Fail after `after` tokens. */
  failAfterTokens?: { after: number; how: 'close' | 'job-error' };
  /** Alter the receipt after computing it honestly (and sign the altered one). */
  tamper?: (r: Receipt) => Receipt;
  /** Sign with this key instead of the operator's. */
  signWith?: Hex;
  /** Do not send token frames, only the result. */
  noStream?: boolean;
  /** Send token frames for the first `n` tokens only; the rest leave with the result (a worker's last read). */
  streamFirst?: number;
  /** Stream these ids instead of the output it signs (a worker showing one text and billing another). */
  streamTokens?: number[];
  /** Rewrite the result frame as JSON (after signing): what no schema-abiding worker could send. */
  rawResult?: (frame: Record<string, unknown>) => unknown;
};

/** What the scripted worker does with one image job (honest unless told otherwise). */
export type ImageBehaviour = {
  /** Delay before each progress step (ms). */
  stepDelayMs?: number;
  /** Deliver images of another size than asked. */
  wrongSize?: boolean;
  /** Deliver bytes that do not hash to the imageHash claimed. */
  corruptBytes?: boolean;
  /** Deliver one image fewer than asked. */
  fewerImages?: boolean;
  /** Alter the receipt after computing it honestly (and sign the altered one). */
  tamper?: (r: Receipt) => Receipt;
  /** Answer `job-error` before any progress. */
  failBeforeProgress?: 'job-error' | 'busy';
  /** Commit a trajectory root but send no latents to open it. */
  noLatents?: boolean;
  /** Commit a root that the latents sent do not open. */
  unopenedRoot?: boolean;
  /** Send a trajectory one latent short (fewer steps than claimed). */
  fewerLatents?: boolean;
  /** Progress frames sent after image 0's honest ones (`type` and `jobId` added), before going on. */
  extraProgress?: (job: ImageJobMessage) => Record<string, unknown>[];
};

/** A real PNG (8-bit RGB) of `width × height` in one colour: what the scripted worker delivers. */
export function testPng(width: number, height: number, rgb: [number, number, number]): Uint8Array {
  const crcTable = Array.from({ length: 256 }, (_, n) => {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    return c >>> 0;
  });
  const crc = (b: Uint8Array) => {
    let c = 0xffffffff;
    for (const x of b) c = crcTable[(c ^ x) & 0xff]! ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  };
  const chunk = (type: string, data: Uint8Array) => {
    const out = Buffer.alloc(12 + data.length);
    out.writeUInt32BE(data.length, 0);
    out.write(type, 4, 'ascii');
    Buffer.from(data).copy(out, 8);
    out.writeUInt32BE(crc(out.subarray(4, 8 + data.length)), 8 + data.length);
    return out;
  };
  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr.set([8, 2, 0, 0, 0], 8);
  const raw = Buffer.alloc(height * (1 + 3 * width));
  for (let y = 0; y < height; y++)
    for (let x = 0; x < width; x++) raw.set(rgb, y * (1 + 3 * width) + 1 + 3 * x);
  return Buffer.concat([
    Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    chunk('IHDR', ihdr),
    chunk('IDAT', deflateSync(raw)),
    chunk('IEND', new Uint8Array(0)),
  ]);
}

/** What the scripted worker does with one `score` frame. */
export type ScoreBehaviour =
  | {
      kind: 'scores';
      positions?: ScorePosition[];
      delayMs?: number;
      /** Sign the scores with this key instead of the operator's. */
      signWith?: Hex;
    }
  | { kind: 'unsupported' }
  | { kind: 'error'; code: string; retryable: boolean }
  | { kind: 'silent' };

/** Deterministic scores: every claimed token is the most probable one (p = 0.9). */
export function scriptedScores(frame: ScoreMessage): ScorePosition[] {
  return frame.outputTokenIds.map((tokenId) => ({
    tokenId,
    probability: 0.9,
    rank: 0,
    top: [
      { tokenId, probability: 0.9 },
      { tokenId: tokenId + 1, probability: 0.05 },
    ].slice(0, frame.topK),
  }));
}

export type ScriptedWorkerOptions = {
  url: string;
  /** Operator key (anvil test key) that signs the login and receipts. */
  operatorKey: Hex;
  /** The bond owner receipts name. */
  owner: Address;
  models: {
    name: string;
    weightsHash: Hex;
    maxConcurrency?: number;
    sampler?: string;
    image?: ImageCapabilities;
  }[];
  script?: (job: JobMessage) => Behaviour;
  imageScript?: (job: ImageJobMessage) => ImageBehaviour;
  /** Delay before answering an image check (ms). */
  imageCheckDelayMs?: number;
  /** Refuse this many of the next image checks with `WORKER_BUSY` (busy with another gateway's work). */
  imageCheckBusy?: number;
  /** Answers to `score` frames (default: `scriptedScores`). */
  scorer?: (frame: ScoreMessage) => ScoreBehaviour;
  /** Override the login signature (bad-signature tests). */
  loginKey?: Hex;
  /** Answer pings (default true). */
  pong?: boolean;
};

/** Word pieces of the tiny preset's vocabulary (`▁the` …), and its end token `</s>`. */
export const WORD = { the: 357, grid: 413, serves: 480, you: 506, '.': 276 } as const;
export const EOS = 2;
/** What the scripted worker answers by default: "the grid serves you." then `</s>` (6 tokens). */
export const defaultTokens: readonly number[] = [WORD.the, WORD.grid, WORD.serves, WORD.you, WORD['.'], EOS];
export const DEFAULT_TEXT = 'the grid serves you.';

/**
 * A worker that speaks the real protocol (challenge → signed hello → welcome → jobs) and answers with
 * scripted tokens and an honestly signed EIP-712 receipt (unless told to misbehave).
 */
export class ScriptedWorker {
  ws: WebSocket | undefined;
  workerId: string | undefined;
  readonly jobs: JobMessage[] = [];
  readonly imageJobs: ImageJobMessage[] = [];
  readonly imageChecks: ImageCheckMessage[] = [];
  readonly cancels: string[] = [];
  readonly scores: ScoreMessage[] = [];
  /** Jobs running now, and the most that ever ran at once. */
  running = 0;
  peakRunning = 0;
  /** Image checks running now, and the most that ever ran at once. */
  checksRunning = 0;
  peakChecks = 0;
  closeInfo: { code: number; reason: string } | undefined;
  errorFrame: { code: string; message: string } | undefined;
  private challenge: { nonce: Hex; gateway: Address; chainId: number; grid: Address } | undefined;
  private readonly account;

  constructor(readonly opts: ScriptedWorkerOptions) {
    this.account = privateKeyToAccount(opts.operatorKey);
  }

  get operator(): Address {
    return this.account.address;
  }

  /** Connects and logs in; resolves with the welcome, rejects with the gateway's error frame. */
  connect(): Promise<string> {
    return new Promise((resolve, reject) => {
      const ws = new WebSocket(this.opts.url);
      this.ws = ws;
      ws.on('message', async (data) => {
        const frame = gatewayToWorker.parse(JSON.parse(data.toString()));
        switch (frame.type) {
          case 'challenge': {
            this.challenge = frame;
            const signer = this.opts.loginKey ? privateKeyToAccount(this.opts.loginKey) : this.account;
            const signature = await signer.signMessage({ message: loginMessage(frame) });
            ws.send(
              JSON.stringify({
                type: 'hello',
                protocolVersion: PROTOCOL_VERSION,
                operator: this.account.address,
                signature,
                models: this.opts.models.map((m) => ({
                  modelId: computeModelId(m.name, m.weightsHash),
                  name: m.name,
                  weightsHash: m.weightsHash,
                  maxConcurrency: m.maxConcurrency ?? 4,
                  sampler: m.sampler ?? CANONICAL_SAMPLER,
                  ...(m.image ? { image: m.image } : {}),
                })),
                hardware: { gpus: [], cpuCores: 2, memoryMb: 1024 },
                version: 'scripted-test-worker',
              }),
            );
            return;
          }
          case 'welcome':
            this.workerId = frame.workerId;
            resolve(frame.workerId);
            return;
          case 'error':
            this.errorFrame = { code: frame.code, message: frame.message };
            reject(new Error(`${frame.code}: ${frame.message}`));
            return;
          case 'ping':
            if (this.opts.pong !== false) ws.send(JSON.stringify({ type: 'pong', t: frame.t }));
            return;
          case 'cancel':
            this.cancels.push(frame.jobId);
            this.seqWaiters.get(frame.jobId)?.(undefined);
            return;
          case 'job-seq': {
            // A job sent before its number: recorded on the job frame (as if it had come with it).
            const job = this.jobs.find((j) => j.jobId === frame.jobId);
            if (job && job.seq === undefined) {
              job.seq = frame.seq;
              this.seqAfter.push(frame.jobId);
            }
            this.seqWaiters.get(frame.jobId)?.(frame.seq);
            return;
          }
          case 'job':
            this.jobs.push(frame);
            this.running += 1;
            this.peakRunning = Math.max(this.peakRunning, this.running);
            void this.run(frame).finally(() => {
              this.running -= 1;
            });
            return;
          case 'score':
            this.scores.push(frame);
            void this.score(frame);
            return;
          case 'image-check':
            this.imageChecks.push(frame);
            if (this.opts.imageCheckBusy) {
              this.opts.imageCheckBusy -= 1;
              this.send({
                type: 'job-error',
                jobId: frame.jobId,
                code: 'WORKER_BUSY',
                message: 'at capacity with other work',
                retryable: true,
              });
              return;
            }
            this.checksRunning += 1;
            this.peakChecks = Math.max(this.peakChecks, this.checksRunning);
            void this.imageCheck(frame).finally(() => {
              this.checksRunning -= 1;
            });
            return;
          case 'image-job':
            this.imageJobs.push(frame);
            this.running += 1;
            this.peakRunning = Math.max(this.peakRunning, this.running);
            void this.runImage(frame).finally(() => {
              this.running -= 1;
            });
            return;
        }
      });
      ws.on('close', (code, reason) => {
        this.closeInfo = { code, reason: reason.toString() };
        reject(new Error(`closed ${code} ${reason.toString()}`));
      });
      ws.on('error', reject);
    });
  }

  /** Ids of the jobs whose receipt number came after them, in a `job-seq` frame. */
  readonly seqAfter: string[] = [];
  /** Jobs sent without their receipt number, waiting for its `job-seq` (undefined: cancelled). */
  private readonly seqWaiters = new Map<string, (seq: string | undefined) => void>();

  /** The job's receipt number: on its frame, or from the `job-seq` that follows it. */
  private seqOf(job: JobMessage): Promise<string | undefined> {
    if (job.seq !== undefined) return Promise.resolve(job.seq);
    return new Promise((resolve) =>
      this.seqWaiters.set(job.jobId, (seq) => {
        this.seqWaiters.delete(job.jobId);
        resolve(seq);
      }),
    );
  }

  private send(frame: unknown) {
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(frame));
  }

  private async run(job: JobMessage) {
    const b = this.opts.script?.(job) ?? {};
    const tokens = (b.tokens ?? defaultTokens).slice(0, job.params.maxTokens);
    const finishReason: FinishReason =
      b.finishReason ?? (tokens.at(-1) !== EOS && tokens.length >= job.params.maxTokens ? 'length' : 'stop');
    const delay = b.tokenDelayMs ?? 0;
    const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
    if (b.failBeforeFirstToken === 'close') return this.ws?.terminate();
    if (b.failBeforeFirstToken === 'job-error') {
      return this.send({
        type: 'job-error',
        jobId: job.jobId,
        code: 'backend_failed',
        message: 'scripted failure',
        retryable: true,
      });
    }
    if (b.failBeforeFirstToken === 'busy') {
      return this.send({
        type: 'job-error',
        jobId: job.jobId,
        code: 'WORKER_BUSY',
        message: 'model is at capacity',
        retryable: true,
      });
    }
    if (b.failBeforeFirstToken === 'silent') return;
    const start = Date.now();
    let sent = 0;
    for (const t of tokens) {
      if (this.cancels.includes(job.jobId)) return;
      if (b.failAfterTokens && sent === b.failAfterTokens.after) {
        if (b.failAfterTokens.how === 'close') return this.ws?.terminate();
        return this.send({
          type: 'job-error',
          jobId: job.jobId,
          code: 'backend_crashed',
          message: 'scripted crash',
          retryable: false,
        });
      }
      if (delay) await sleep(delay);
      if (!b.noStream && sent < (b.streamFirst ?? Number.POSITIVE_INFINITY))
        this.send({
          type: 'token',
          jobId: job.jobId,
          tokenIds: [b.streamTokens?.[sent] ?? t],
          ...(b.injectText === undefined ? {} : { text: b.injectText }),
        });
      sent += 1;
    }
    for (const extra of b.streamTokens?.slice(tokens.length) ?? [])
      this.send({ type: 'token', jobId: job.jobId, tokenIds: [extra] });
    const seq = await this.seqOf(job);
    if (seq === undefined) return;
    const prompt = b.promptTokenIds ? b.promptTokenIds(job.promptTokenIds) : job.promptTokenIds;
    const output = [...tokens];
    const sampler =
      this.opts.models.find((m) => computeModelId(m.name, m.weightsHash) === job.modelId)?.sampler ??
      CANONICAL_SAMPLER;
    const c = this.challenge!;
    let receipt: Receipt = {
      jobId: job.jobId,
      gateway: c.gateway,
      payer: job.payer,
      worker: this.opts.owner,
      modelId: job.modelId,
      requestHash: computeRequestHash(prompt, job.params, sampler),
      outputHash: computeOutputHash(output, finishReason),
      inputUnits: BigInt(prompt.length),
      outputUnits: BigInt(output.length),
      fee: computeTextFee({
        inputTokens: prompt.length,
        outputTokens: output.length,
        rates: {
          inputPerMTokens: BigInt(job.pricing.inputPerMTokens),
          outputPerMTokens: BigInt(job.pricing.outputPerMTokens),
        },
        confidential: job.confidential,
        confidentialPremiumBps: job.pricing.confidentialPremiumBps,
      }),
      completedAt: BigInt(Math.floor(Date.now() / 1000)),
      confidential: job.confidential,
      seq: BigInt(seq),
    };
    if (b.tamper) receipt = b.tamper(receipt);
    const signer = b.signWith ? privateKeyToAccount(b.signWith) : this.account;
    const signature = await signer.signTypedData(receiptTypedData(receipt, c.chainId, c.grid));
    const result = {
      type: 'result',
      jobId: job.jobId,
      ...(b.injectText === undefined ? {} : { text: b.injectText }),
      promptTokenIds: prompt,
      outputTokenIds: output,
      finishReason,
      timings: { ttftMs: 1, totalMs: Date.now() - start },
      receipt: receiptToJson(receipt),
      signature,
    };
    this.send(b.rawResult ? b.rawResult(result) : result);
  }

  private async runImage(job: ImageJobMessage) {
    const b = this.opts.imageScript?.(job) ?? {};
    if (b.failBeforeProgress) {
      return this.send({
        type: 'job-error',
        jobId: job.jobId,
        code: b.failBeforeProgress === 'busy' ? 'WORKER_BUSY' : 'BACKEND_FAILED',
        message: 'scripted failure',
        retryable: true,
      });
    }
    const p = job.params;
    const model = this.opts.models.find((m) => computeModelId(m.name, m.weightsHash) === job.modelId);
    const pipeline = model?.sampler ?? CANONICAL_SAMPLER;
    const images: { bytes: Uint8Array; trajectoryRoot: Hex; latents: string | undefined }[] = [];
    for (let i = 0; i < p.n; i++) {
      const seed = (p.seed + i) >>> 0;
      const bytes = testPng(b.wrongSize ? p.width * 2 : p.width, p.height, [
        seed & 255,
        (seed >> 8) & 255,
        i * 40,
      ]);
      for (let k = 1; k <= p.steps; k++) {
        if (b.stepDelayMs) await new Promise((r) => setTimeout(r, b.stepDelayMs));
        if (this.cancels.includes(job.jobId)) return;
        const preview = job.partialImages > 0 && k % Math.ceil(p.steps / job.partialImages) === 0;
        this.send({
          type: 'progress',
          jobId: job.jobId,
          image: i,
          step: k,
          steps: p.steps,
          ...(preview
            ? { preview: Buffer.from(testPng(p.width, p.height, [k, k, k])).toString('base64') }
            : {}),
        });
      }
      if (i === 0)
        for (const x of b.extraProgress?.(job) ?? []) this.send({ type: 'progress', jobId: job.jobId, ...x });
      // A trajectory of `steps + 1` small latents (the commitment shape the gateway opens and keeps).
      const latents = Array.from({ length: b.fewerLatents ? p.steps : p.steps + 1 }, (_, k) =>
        Float32Array.from({ length: 16 }, (_, j) => seed + i + k * 0.5 + j / 16),
      );
      images.push({
        bytes,
        trajectoryRoot: b.unopenedRoot ? (`0x${'ab'.repeat(32)}` as Hex) : trajectoryTree(latents).root,
        latents: b.noLatents
          ? undefined
          : Buffer.concat(latents.map((l) => latentBytes(l))).toString('base64'),
      });
    }
    const delivered = b.fewerImages ? images.slice(1) : images;
    const hashes = delivered.map((x) => ({
      imageHash: hashImage(x.bytes),
      trajectoryRoot: x.trajectoryRoot,
    }));
    const c = this.challenge!;
    let receipt: Receipt = {
      jobId: job.jobId,
      gateway: c.gateway,
      payer: job.payer,
      worker: this.opts.owner,
      modelId: job.modelId,
      requestHash: computeImageRequestHash(job.promptTokenIds, job.negativeTokenIds, p, pipeline),
      outputHash: computeImageOutputHash(hashes),
      inputUnits: BigInt(job.promptTokenIds.length),
      outputUnits: imagePixelSteps(p),
      fee: computeImageFee({ params: p, rates: { perMegapixelStep: BigInt(job.pricing.perMegapixelStep) } }),
      completedAt: BigInt(Math.floor(Date.now() / 1000)),
      confidential: false,
      seq: BigInt(job.seq),
    };
    if (b.tamper) receipt = b.tamper(receipt);
    const signature = await this.account.signTypedData(receiptTypedData(receipt, c.chainId, c.grid));
    this.send({
      type: 'image-result',
      jobId: job.jobId,
      images: delivered.map((x, i) => ({
        data: Buffer.from(
          b.corruptBytes && i === 0 ? testPng(p.width, p.height, [1, 2, 3]) : x.bytes,
        ).toString('base64'),
        imageHash: hashes[i]!.imageHash,
        trajectoryRoot: x.trajectoryRoot,
        ...(x.latents ? { latents: x.latents } : {}),
      })),
      timings: { totalMs: 1 },
      receipt: receiptToJson(receipt),
      signature,
    });
  }

  /** A deterministic answer to an image check (noise: the seed; step: input + 1; decode: its hash), signed. */
  private async imageCheck(frame: ImageCheckMessage) {
    if (this.opts.imageCheckDelayMs) await new Promise((r) => setTimeout(r, this.opts.imageCheckDelayMs));
    const input = frame.latent ? latentsFromBytes(Buffer.from(frame.latent, 'base64'), 1)![0]! : undefined;
    const latent =
      frame.op === 'noise'
        ? Float32Array.from({ length: 16 }, () => frame.params.seed)
        : frame.op === 'step'
          ? input!.map((x) => x + 1)
          : undefined;
    const imageHash = frame.op === 'decode' ? hashLatent(input!) : undefined;
    const model = this.opts.models.find((m) => computeModelId(m.name, m.weightsHash) === frame.modelId);
    const c = this.challenge!;
    const signature = await this.account.signTypedData(
      imageCheckTypedData(
        {
          checkJobId: frame.jobId,
          auditedJobId: frame.auditedJobId,
          worker: this.opts.owner,
          modelId: frame.modelId,
          requestHash: computeImageRequestHash(
            frame.promptTokenIds,
            frame.negativeTokenIds,
            frame.params,
            model?.sampler ?? CANONICAL_SAMPLER,
          ),
          op: ['noise', 'step', 'decode'].indexOf(frame.op),
          image: frame.image,
          step: frame.step,
          input: input ? hashLatent(input) : (`0x${'00'.repeat(32)}` as Hex),
          output: latent ? hashLatent(latent) : imageHash!,
        },
        c.chainId,
        c.grid,
      ),
    );
    this.send({
      type: 'image-check-result',
      jobId: frame.jobId,
      ...(latent ? { latent: Buffer.from(latentBytes(latent)).toString('base64') } : {}),
      ...(imageHash ? { imageHash } : {}),
      signature,
    });
  }

  private async score(frame: ScoreMessage) {
    const b = this.opts.scorer?.(frame) ?? { kind: 'scores' };
    if (b.kind === 'silent') return;
    if (b.kind === 'unsupported' || b.kind === 'error') {
      return this.send({
        type: 'job-error',
        jobId: frame.jobId,
        code: b.kind === 'unsupported' ? 'SCORE_UNSUPPORTED' : b.code,
        message: b.kind === 'unsupported' ? 'this backend cannot score' : 'scripted scoring failure',
        retryable: b.kind === 'unsupported' ? true : b.retryable,
      });
    }
    if (b.delayMs) await new Promise((r) => setTimeout(r, b.delayMs));
    if (this.cancels.includes(frame.jobId)) return;
    const positions = b.positions ?? scriptedScores(frame);
    // Signed as a real worker signs them (packages/worker runScore): the scorer answers for its scores.
    const c = this.challenge!;
    const signer = b.signWith ? privateKeyToAccount(b.signWith) : this.account;
    const signature = await signer.signTypedData(
      scoreTypedData(
        scoreAttestation({
          scoreJobId: frame.jobId,
          auditedJobId: frame.auditedJobId,
          worker: this.opts.owner,
          modelId: frame.modelId,
          promptTokenIds: frame.promptTokenIds,
          outputTokenIds: frame.outputTokenIds,
          topK: frame.topK,
          positions,
        }),
        c.chainId,
        c.grid,
      ),
    );
    this.send({ type: 'score-result', jobId: frame.jobId, positions, signature });
  }

  /** Closes the connection and waits for it to be gone. */
  async close(): Promise<void> {
    const ws = this.ws;
    if (!ws || ws.readyState === WebSocket.CLOSED) return;
    await new Promise<void>((resolve) => {
      ws.once('close', () => resolve());
      ws.close();
      setTimeout(() => {
        ws.terminate();
        resolve();
      }, 1_000).unref();
    });
  }
}
