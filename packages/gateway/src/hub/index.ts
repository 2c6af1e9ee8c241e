import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import {
  type AdvertisedModel,
  closeCodes,
  computeModelId,
  createWriteCoalescer,
  type Hardware,
  helloMessage,
  type ImageCapabilities,
  type ImageCheckMessage,
  type ImageCheckResultMessage,
  type ImageJobMessage,
  type ImageResultMessage,
  type JobMessage,
  loginMessage,
  PROTOCOL_VERSION,
  type ProgressMessage,
  type ResultMessage,
  type ScoreMessage,
  type ScoreResultMessage,
  type SealedChunkMessage,
  type SealedJobMessage,
  type SealedResultMessage,
  socketOf,
  type TeeEvidence,
  WORKER_CONNECT_PATH,
  workerToGateway,
} from '@aipg/core';
import type { VerifiedEvidence } from '@aipg/tee';
import { type Address, getAddress, type Hex, recoverMessageAddress } from 'viem';
import { type WebSocket, WebSocketServer } from 'ws';
import type { z } from 'zod';
import type { Chain } from '../chain/index.ts';
import { type Common, sleep } from '../common.ts';
import type { RoutableWorker, Routing } from '../routing/index.ts';

export const WORKER_PATH = WORKER_CONNECT_PATH;
export { closeCodes };
export type HubErrorCode = keyof typeof closeCodes;

/** Streamed token ids (the gateway renders their text itself). */
export type TokenFrame = { tokenIds: number[] };

/** What a dispatched job hears back from its worker. Exactly one of onResult / onError ends it. */
export type JobHandlers = {
  onToken(frame: TokenFrame): void;
  /** An image job's progress (step k of n; a preview when one was asked). */
  onProgress?(frame: ProgressMessage): void;
  /** A confidential job's sealed response chunk, in the order the worker sent it. */
  onSealedChunk?(frame: SealedChunkMessage): void;
  /**
   * `result` for a text job, `image-result` for an image job, `sealed-result` for a confidential one (the
   * job checks which it got).
   */
  onResult(frame: ResultMessage | ImageResultMessage | SealedResultMessage): void;
  /** `job-error` from the worker, an invalid frame, or the connection dropping. */
  onError(e: { code: string; message: string }): void;
};

/** What a dispatched score job (a validator's cross-check) hears back. Exactly one handler ends it. */
export type ScoreHandlers = {
  onScore(frame: ScoreResultMessage): void;
  /** `job-error` from the worker (`retryable` as it said), an invalid frame, or the connection dropping. */
  onError(e: { code: string; message: string; retryable?: boolean }): void;
};

/** What a dispatched image check (a validator's cross-check of an image job) hears back. */
export type CheckHandlers = {
  onCheck(frame: ImageCheckResultMessage): void;
  onError(e: { code: string; message: string; retryable?: boolean }): void;
};

type InFlight =
  | { kind: 'job'; modelId: Hex; handlers: JobHandlers }
  | { kind: 'score'; modelId: Hex; handlers: ScoreHandlers }
  | { kind: 'check'; modelId: Hex; handlers: CheckHandlers };

type ServedModel = {
  name: string;
  weightsHash: Hex;
  maxConcurrency: number;
  /** The sampler the worker says its engine draws with: its receipts' requestHash must commit to it. */
  sampler: string;
  /** Image models: sizes, steps, count and schedulers the worker's pipeline accepts. */
  image?: ImageCapabilities | undefined;
  inFlight: number;
};

/**
 * A worker in a TEE, as the gateway's attestation checks left it (tee/index.ts): only `valid` and
 * unexpired workers get confidential jobs.
 */
export type TeeState = {
  status: 'pending' | 'valid' | 'invalid';
  /** The latest evidence that verified, and what it verified to. */
  evidence: TeeEvidence | undefined;
  verified: VerifiedEvidence | undefined;
  /** Every evidence digest verified on this connection (all bind its one HPKE key), to its expiry (unix s). */
  digests: Map<Hex, number>;
  /** Why the last check failed (an `AttestationError` code and message). */
  error: string | undefined;
  /** What the worker's latest evidence calls itself (a label only: anchors decide validity). */
  simulated: boolean;
  /** The evidence of the hello, made for `loginNonce` (checked once the worker is in). */
  login: { evidence: TeeEvidence; nonce: Hex } | undefined;
};

export type WorkerSession = Omit<RoutableWorker, 'models'> & {
  models: Map<Hex, ServedModel>;
  hardware: Hardware;
  version: string;
  connectedAt: Date;
  /** No new jobs (bond went inactive, or replaced): closes once its jobs end. */
  draining: boolean;
  /** Set when the worker's hello carried TEE evidence. */
  tee: TeeState | undefined;
};

type Session = WorkerSession & {
  ws: WebSocket;
  /** Jobs and score jobs in flight on this connection, by wire `jobId`. */
  jobs: Map<Hex, InFlight>;
  lastSeen: number;
  heartbeat: NodeJS.Timeout | undefined;
};

export type Hub = ReturnType<typeof createHub>;

/**
 * One of a worker's slots for a model, taken when routing chooses it (`Hub.reserve`), before any
 * await: concurrent requests never book the same slot. `dispatch` turns it into the job's slot;
 * `release` gives it back when the job never reaches the worker (idempotent; a no-op once dispatched).
 */
export type SlotReservation = { readonly workerId: string; readonly modelId: Hex; release(): void };

/**
 * The worker hub: one WebSocket per worker at `/v1/workers/connect`, many jobs multiplexed on it.
 * Login: `challenge` → `hello` (EIP-191 signature of `loginMessage` by the operator key, whose owner
 * must hold an active worker bond, and every advertised model registered, active, same weights) →
 * `welcome`; anything else gets an `error` frame and a close with the reason.
 */
export function createHub({ common, chain, routing }: { common: Common; chain: Chain; routing: Routing }) {
  const { options, logger, metrics } = common;
  const wss = new WebSocketServer({ noServer: true, maxPayload: options.hub.maxFrameBytes });
  const sessions = new Map<string, Session>();
  /** Hands a reservation's slot over to the job dispatched in it (true if it still held it). */
  const takers = new WeakMap<SlotReservation, () => boolean>();
  let capacityWaiters: (() => void)[] = [];
  let closing = false;
  /** Evidence asked of workers (`attest`), by request id. */
  const attesting = new Map<string, { workerId: string; resolve(e: TeeEvidence | undefined): void }>();
  let onLogin: ((s: WorkerSession) => void) | undefined;

  function notifyCapacity() {
    const waiters = capacityWaiters;
    capacityWaiters = [];
    for (const w of waiters) w();
  }

  /** Frames to one worker in one turn leave in one write (`createWriteCoalescer`). */
  const hold = createWriteCoalescer();
  function send(ws: WebSocket, frame: unknown) {
    if (ws.readyState !== ws.OPEN) return;
    hold(socketOf(ws));
    ws.send(JSON.stringify(frame));
  }

  function reject(ws: WebSocket, code: HubErrorCode, message: string) {
    send(ws, { type: 'error', code, message });
    ws.close(closeCodes[code], `${code}: ${message}`.slice(0, 120));
    metrics.workerLogins.inc({ result: code });
  }

  function finishJob(s: Session, jobId: Hex) {
    const j = s.jobs.get(jobId);
    if (!j) return undefined;
    s.jobs.delete(jobId);
    const m = s.models.get(j.modelId);
    if (m) m.inFlight = Math.max(0, m.inFlight - 1);
    notifyCapacity();
    if (s.draining && s.jobs.size === 0) s.ws.close(1000, 'draining complete');
    return j;
  }

  function dropSession(s: Session, reason: string) {
    if (sessions.get(s.id) !== s) return;
    sessions.delete(s.id);
    clearInterval(s.heartbeat);
    metrics.workersOnline.set(undefined, sessions.size);
    for (const [jobId, j] of [...s.jobs]) {
      finishJob(s, jobId);
      j.handlers.onError({ code: 'worker_disconnected', message: `the worker disconnected (${reason})` });
    }
    for (const [id, a] of [...attesting]) {
      if (a.workerId !== s.id) continue;
      attesting.delete(id);
      a.resolve(undefined);
    }
    logger.info({ msg: 'worker disconnected', worker_id: s.id, worker: s.owner, reason });
    notifyCapacity();
  }

  async function verifyHello(
    hello: z.infer<typeof helloMessage>,
    challenge: { nonce: Hex },
  ): Promise<
    { ok: true; owner: Address; bond: bigint } | { ok: false; code: HubErrorCode; message: string }
  > {
    if (hello.protocolVersion !== PROTOCOL_VERSION) {
      return {
        ok: false,
        code: 'protocol_error',
        message: `protocol version ${hello.protocolVersion} unsupported (gateway speaks ${PROTOCOL_VERSION})`,
      };
    }
    const message = loginMessage({
      nonce: challenge.nonce,
      gateway: chain.gateway,
      chainId: chain.chainId,
      grid: chain.grid,
    });
    let signer: Address;
    try {
      signer = await recoverMessageAddress({ message, signature: hello.signature });
    } catch {
      return { ok: false, code: 'bad_signature', message: 'the login signature is malformed' };
    }
    if (signer.toLowerCase() !== hello.operator.toLowerCase()) {
      return {
        ok: false,
        code: 'bad_signature',
        message: `the login signature was made by ${signer}, not operator ${hello.operator}`,
      };
    }
    try {
      const owner = await chain.workerOwner(getAddress(hello.operator));
      if (!owner)
        return {
          ok: false,
          code: 'not_bonded',
          message: `operator ${hello.operator} belongs to no worker bond`,
        };
      if (!(await chain.isActiveWorker(owner, true))) {
        return {
          ok: false,
          code: 'bond_inactive',
          message: `worker ${owner} has no active bond (below the minimum or unbonded)`,
        };
      }
      const ids = new Set<string>();
      for (const m of hello.models) {
        if (ids.has(m.modelId.toLowerCase()))
          return { ok: false, code: 'protocol_error', message: `model ${m.modelId} advertised twice` };
        ids.add(m.modelId.toLowerCase());
        if (computeModelId(m.name, m.weightsHash) !== m.modelId.toLowerCase()) {
          return {
            ok: false,
            code: 'unknown_model',
            message: `model ${m.name}: modelId is not keccak256(name, weightsHash)`,
          };
        }
        const onchain = await chain.model(m.modelId.toLowerCase() as Hex);
        if (!onchain)
          return {
            ok: false,
            code: 'unknown_model',
            message: `model ${m.name} (${m.modelId}) is not registered on chain`,
          };
        if (!onchain.active)
          return { ok: false, code: 'unknown_model', message: `model ${m.name} is deactivated on chain` };
        if (onchain.weightsHash.toLowerCase() !== m.weightsHash.toLowerCase() || onchain.name !== m.name) {
          return {
            ok: false,
            code: 'unknown_model',
            message: `model ${m.name}: weights hash differs from the registry`,
          };
        }
        if ((onchain.kind === 'image') !== (m.image !== undefined)) {
          return {
            ok: false,
            code: 'protocol_error',
            message:
              onchain.kind === 'image'
                ? `model ${m.name} is an image model: advertise what its pipeline accepts (image)`
                : `model ${m.name} is a text model: it takes no image capabilities`,
          };
        }
        if (
          m.image &&
          (m.image.minSteps > m.image.maxSteps || m.image.sizes.some(([w, h]) => w % 8 || h % 8))
        )
          return {
            ok: false,
            code: 'protocol_error',
            message: `model ${m.name}: invalid image capabilities`,
          };
      }
      const bond = await chain.workerBond(owner);
      return { ok: true, owner, bond };
    } catch (error) {
      logger.warn({ msg: 'worker login: chain read failed', operator: hello.operator, error });
      return {
        ok: false,
        code: 'chain_unavailable',
        message: 'the gateway could not read the chain; retry shortly',
      };
    }
  }

  function onConnection(ws: WebSocket, req: IncomingMessage) {
    const nonce = `0x${randomBytes(32).toString('hex')}` as Hex;
    const remote = req.socket.remoteAddress;
    let session: Session | undefined;
    let loggingIn = false;
    send(ws, {
      type: 'challenge',
      nonce,
      gateway: chain.gateway,
      chainId: chain.chainId,
      grid: chain.grid,
      protocolVersion: PROTOCOL_VERSION,
    });
    const helloTimer = setTimeout(() => {
      if (!session) reject(ws, 'hello_timeout', `no valid hello within ${options.hub.helloTimeoutMs} ms`);
    }, options.hub.helloTimeoutMs);

    ws.on('error', (error) => logger.debug({ msg: 'worker socket error', remote, error }));
    ws.on('close', (code, reason) => {
      clearTimeout(helloTimer);
      if (session) dropSession(session, `close ${code}${reason.length ? ` ${reason.toString()}` : ''}`);
    });

    ws.on('message', async (data, isBinary) => {
      if (session) session.lastSeen = Date.now();
      let raw: unknown;
      try {
        if (isBinary) throw new Error('binary frame');
        raw = JSON.parse(data.toString());
      } catch {
        if (!session) return reject(ws, 'protocol_error', 'frames must be JSON text');
        logger.warn({ msg: 'worker sent a non-JSON frame', worker_id: session.id });
        return;
      }
      if (!session) {
        if (loggingIn) return;
        const hello = helloMessage.safeParse(raw);
        if (!hello.success) {
          return reject(
            ws,
            'protocol_error',
            `expected a valid hello: ${hello.error.issues[0]?.message ?? 'invalid'}`,
          );
        }
        loggingIn = true;
        const verdict = await verifyHello(hello.data, { nonce });
        clearTimeout(helloTimer);
        if (ws.readyState !== ws.OPEN) return;
        if (!verdict.ok) {
          logger.info({
            msg: 'worker login refused',
            operator: hello.data.operator,
            code: verdict.code,
            reason: verdict.message,
          });
          return reject(ws, verdict.code, verdict.message);
        }
        if (closing) return reject(ws, 'shutting_down', 'the gateway is shutting down');
        session = login(ws, hello.data, verdict.owner, verdict.bond, nonce);
        return;
      }
      const parsed = workerToGateway.safeParse(raw);
      const jobId = (raw as { jobId?: unknown } | null)?.jobId;
      if (!parsed.success) {
        logger.warn({
          msg: 'worker sent an invalid frame',
          worker_id: session.id,
          issue: parsed.error.issues[0]?.message,
        });
        if (typeof jobId === 'string' && session.jobs.has(jobId as Hex)) {
          const j = finishJob(session, jobId as Hex);
          j?.handlers.onError({
            code: 'invalid_frame',
            message: `the worker sent an invalid frame: ${parsed.error.issues[0]?.message}`,
          });
        }
        return;
      }
      const frame = parsed.data;
      switch (frame.type) {
        case 'pong':
          return;
        case 'hello':
          logger.warn({ msg: 'worker sent hello twice', worker_id: session.id });
          return;
        case 'token': {
          const j = session.jobs.get(frame.jobId);
          if (j?.kind === 'job') j.handlers.onToken({ tokenIds: frame.tokenIds });
          else if (j) mismatched(session, frame.jobId, 'token');
          return;
        }
        case 'sealed-chunk': {
          const j = session.jobs.get(frame.jobId);
          if (j?.kind === 'job' && j.handlers.onSealedChunk) j.handlers.onSealedChunk(frame);
          else if (j) mismatched(session, frame.jobId, 'sealed-chunk');
          return;
        }
        case 'attestation': {
          const a = attesting.get(frame.requestId);
          if (!a || a.workerId !== session.id) return;
          attesting.delete(frame.requestId);
          a.resolve(frame.evidence);
          return;
        }
        case 'result':
        case 'sealed-result':
        case 'image-result': {
          const kind = session.jobs.get(frame.jobId)?.kind;
          if (kind !== undefined && kind !== 'job') return mismatched(session, frame.jobId, frame.type);
          const j = finishJob(session, frame.jobId);
          if (j?.kind === 'job') j.handlers.onResult(frame);
          return;
        }
        case 'progress': {
          const j = session.jobs.get(frame.jobId);
          if (j?.kind === 'job') j.handlers.onProgress?.(frame);
          else if (j) mismatched(session, frame.jobId, 'progress');
          return;
        }
        case 'score-result': {
          const kind = session.jobs.get(frame.jobId)?.kind;
          if (kind !== undefined && kind !== 'score') return mismatched(session, frame.jobId, 'score-result');
          const j = finishJob(session, frame.jobId);
          if (j?.kind === 'score') j.handlers.onScore(frame);
          return;
        }
        case 'image-check-result': {
          const kind = session.jobs.get(frame.jobId)?.kind;
          if (kind !== undefined && kind !== 'check')
            return mismatched(session, frame.jobId, 'image-check-result');
          const j = finishJob(session, frame.jobId);
          if (j?.kind === 'check') j.handlers.onCheck(frame);
          return;
        }
        case 'job-error': {
          const j = finishJob(session, frame.jobId);
          j?.handlers.onError({ code: frame.code, message: frame.message, retryable: frame.retryable });
          return;
        }
      }
    });
  }

  /** A score or image-check frame to `worker` in one of the model's slots, tracked as `entry` until it ends. */
  function dispatchCheckLike(
    worker: WorkerSession,
    frame: ScoreMessage | ImageCheckMessage,
    entry: Extract<InFlight, { kind: 'score' | 'check' }>,
  ): { cancel(reason: string): void } {
    const s = sessions.get(worker.id);
    const m = s?.models.get(frame.modelId);
    if (!s || !m || s.ws.readyState !== s.ws.OPEN) {
      queueMicrotask(() =>
        entry.handlers.onError({
          code: 'worker_disconnected',
          message: 'the worker is gone',
          retryable: true,
        }),
      );
      return { cancel() {} };
    }
    m.inFlight += 1;
    s.jobs.set(frame.jobId, entry);
    send(s.ws, frame);
    return {
      cancel(reason: string) {
        if (finishJob(s, frame.jobId)) send(s.ws, { type: 'cancel', jobId: frame.jobId, reason });
      },
    };
  }

  /** A frame of the wrong kind for its job (a `result` for a score job…): the job fails. */
  function mismatched(s: Session, jobId: Hex, type: string) {
    logger.warn({ msg: 'worker sent a frame of the wrong kind for its job', worker_id: s.id, type });
    const j = finishJob(s, jobId);
    j?.handlers.onError({ code: 'invalid_frame', message: `the worker sent a ${type} frame for this job` });
  }

  function login(
    ws: WebSocket,
    hello: z.infer<typeof helloMessage>,
    owner: Address,
    bond: bigint,
    loginNonce: Hex,
  ): Session {
    const operator = getAddress(hello.operator);
    for (const other of sessions.values()) {
      if (other.operator === operator) {
        // The same rig reconnected (its old socket may not have timed out yet): the new one wins.
        send(other.ws, {
          type: 'error',
          code: 'replaced',
          message: 'a newer connection of this operator logged in',
        });
        other.ws.close(closeCodes.replaced, 'replaced by a newer connection');
        dropSession(other, 'replaced');
      }
    }
    const models = new Map<Hex, ServedModel>(
      hello.models.map((m: AdvertisedModel) => [
        m.modelId.toLowerCase() as Hex,
        {
          name: m.name,
          weightsHash: m.weightsHash,
          maxConcurrency: m.maxConcurrency,
          sampler: m.sampler,
          image: m.image,
          inFlight: 0,
        },
      ]),
    );
    const s: Session = {
      id: `w-${randomBytes(6).toString('hex')}`,
      owner,
      operator,
      bond,
      models,
      hardware: hello.hardware,
      version: hello.version,
      connectedAt: new Date(),
      draining: false,
      ws,
      jobs: new Map(),
      lastSeen: Date.now(),
      heartbeat: undefined,
      tee: hello.tee && {
        status: 'pending',
        evidence: undefined,
        verified: undefined,
        digests: new Map(),
        error: undefined,
        simulated: hello.tee.simulated,
        login: { evidence: hello.tee, nonce: loginNonce },
      },
    };
    sessions.set(s.id, s);
    s.heartbeat = setInterval(() => {
      if (Date.now() - s.lastSeen > options.hub.heartbeatMs * 3) {
        logger.warn({ msg: 'worker missed heartbeats: dropping it', worker_id: s.id, worker: s.owner });
        s.ws.terminate();
        dropSession(s, 'heartbeat timeout');
        return;
      }
      send(s.ws, { type: 'ping', t: Date.now() });
    }, options.hub.heartbeatMs);
    s.heartbeat.unref();
    void routing.load(owner);
    send(ws, { type: 'welcome', workerId: s.id, heartbeatMs: options.hub.heartbeatMs });
    metrics.workerLogins.inc({ result: 'ok' });
    metrics.workersOnline.set(undefined, sessions.size);
    logger.info({
      msg: 'worker logged in',
      worker_id: s.id,
      worker: owner,
      operator,
      models: hello.models.map((m) => m.name),
      version: hello.version,
    });
    notifyCapacity();
    onLogin?.(s);
    return s;
  }

  // Bonds can be withdrawn or slashed below the minimum while connected: re-check them.
  const recheck = setInterval(async () => {
    for (const s of sessions.values()) {
      try {
        const active = await chain.isActiveWorker(s.owner, true);
        if (!active && !s.draining) {
          logger.warn({ msg: 'worker bond no longer active: draining', worker_id: s.id, worker: s.owner });
          s.draining = true;
          send(s.ws, {
            type: 'error',
            code: 'bond_inactive',
            message: 'your worker bond is no longer active',
          });
          if (s.jobs.size === 0) s.ws.close(closeCodes.bond_inactive, 'bond_inactive');
        }
        s.bond = await chain.workerBond(s.owner);
      } catch (error) {
        logger.debug({ msg: 'bond re-check failed', worker: s.owner, error });
      }
    }
  }, options.hub.bondRecheckMs);
  recheck.unref();

  wss.on('connection', onConnection);

  return {
    /** Handles an HTTP upgrade for `/v1/workers/connect`; other paths are refused. */
    handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer) {
      const path = (req.url ?? '').split('?')[0];
      if (path !== WORKER_PATH) {
        socket.end('HTTP/1.1 404 Not Found\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      if (closing) {
        socket.end('HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\nContent-Length: 0\r\n\r\n');
        return;
      }
      wss.handleUpgrade(req, socket, head, (ws) => wss.emit('connection', ws, req));
    },
    /** Logged-in workers that take new jobs. */
    workers(): WorkerSession[] {
      return [...sessions.values()].filter((s) => !s.draining);
    },
    onlineCount(modelId: Hex): number {
      let n = 0;
      for (const s of sessions.values()) if (!s.draining && s.models.has(modelId)) n += 1;
      return n;
    },
    /**
     * Takes one of `worker`'s free slots for `modelId` now (synchronously, so the choice and the
     * booking are one step), or undefined when it has none or is gone.
     */
    reserve(worker: WorkerSession, modelId: Hex): SlotReservation | undefined {
      const s = sessions.get(worker.id);
      const m = s?.models.get(modelId);
      if (!s || !m || s.draining || m.inFlight >= m.maxConcurrency) return undefined;
      m.inFlight += 1;
      let held = true;
      const reservation: SlotReservation = {
        workerId: worker.id,
        modelId,
        release() {
          if (!held) return;
          held = false;
          m.inFlight = Math.max(0, m.inFlight - 1);
          notifyCapacity();
        },
      };
      takers.set(reservation, () => {
        const was = held;
        held = false;
        return was;
      });
      return reservation;
    },
    /**
     * Sends `job` to `worker` in the slot `reservation` holds (from `reserve`); the handlers hear how
     * it ends. Returns its cancel, and `assign`, which sends the receipt number of a text job that
     * left without one (`job-seq`; nothing once the job has ended).
     */
    dispatch(
      worker: WorkerSession,
      job: JobMessage | ImageJobMessage | SealedJobMessage,
      handlers: JobHandlers,
      reservation: SlotReservation,
    ): { cancel(reason: string): void; assign(seq: bigint): void } {
      const s = sessions.get(worker.id);
      const m = s?.models.get(job.modelId);
      const holds = takers.get(reservation)?.() ?? false;
      if (!s || !m || s.ws.readyState !== s.ws.OPEN) {
        queueMicrotask(() =>
          handlers.onError({ code: 'worker_disconnected', message: 'the worker is gone' }),
        );
        return { cancel() {}, assign() {} };
      }
      // The reservation's slot becomes the job's (freed by finishJob); without one, take a slot now.
      if (!holds || reservation.workerId !== worker.id || reservation.modelId !== job.modelId)
        m.inFlight += 1;
      s.jobs.set(job.jobId, { kind: 'job', modelId: job.modelId, handlers });
      send(s.ws, job);
      return {
        cancel(reason: string) {
          if (finishJob(s, job.jobId)) send(s.ws, { type: 'cancel', jobId: job.jobId, reason });
        },
        assign(seq: bigint) {
          if (s.jobs.get(job.jobId)?.handlers === handlers)
            send(s.ws, { type: 'job-seq', jobId: job.jobId, seq: seq.toString() });
        },
      };
    },
    /**
     * Sends a `score` frame to `worker`; it takes one of the model's slots like a job. The handlers
     * hear how it ends. Returns a cancel function.
     */
    dispatchScore(
      worker: WorkerSession,
      frame: ScoreMessage,
      handlers: ScoreHandlers,
    ): { cancel(reason: string): void } {
      return dispatchCheckLike(worker, frame, { kind: 'score', modelId: frame.modelId, handlers });
    },
    /** Sends an `image-check` frame to `worker` (a slot, like a score job); the handlers hear how it ends. */
    dispatchCheck(
      worker: WorkerSession,
      frame: ImageCheckMessage,
      handlers: CheckHandlers,
    ): { cancel(reason: string): void } {
      return dispatchCheckLike(worker, frame, { kind: 'check', modelId: frame.modelId, handlers });
    },
    /** Called with each worker that logs in (after `welcome`): the attestation checks start there. */
    onLogin(fn: (s: WorkerSession) => void): void {
      onLogin = fn;
    },
    /**
     * Asks a worker in a TEE for evidence made for `nonce`; undefined when it answers nothing within
     * `timeoutMs` or disconnects. The caller verifies what comes back.
     */
    attest(worker: WorkerSession, nonce: Hex, timeoutMs: number): Promise<TeeEvidence | undefined> {
      const s = sessions.get(worker.id);
      if (!s || s.ws.readyState !== s.ws.OPEN) return Promise.resolve(undefined);
      const requestId = randomBytes(8).toString('hex');
      return new Promise((resolve) => {
        const timer = setTimeout(() => {
          attesting.delete(requestId);
          resolve(undefined);
        }, timeoutMs);
        timer.unref();
        attesting.set(requestId, {
          workerId: s.id,
          resolve(e) {
            clearTimeout(timer);
            resolve(e);
          },
        });
        send(s.ws, { type: 'attest', requestId, nonce });
      });
    },
    /** Resolves when capacity may have freed up (a job ended, a worker logged in), or after `ms`. */
    waitForCapacity(ms: number, signal?: AbortSignal): Promise<void> {
      return new Promise((resolve) => {
        let done = false;
        const finish = () => {
          if (done) return;
          done = true;
          capacityWaiters = capacityWaiters.filter((w) => w !== finish);
          resolve();
        };
        capacityWaiters.push(finish);
        void sleep(ms, signal).then(finish);
      });
    },
    /** Stops taking workers, waits (bounded) for jobs in flight, then closes every connection. */
    async close(timeoutMs: number): Promise<void> {
      closing = true;
      clearInterval(recheck);
      const deadline = Date.now() + timeoutMs;
      while (Date.now() < deadline && [...sessions.values()].some((s) => s.jobs.size > 0)) await sleep(50);
      for (const s of [...sessions.values()]) {
        send(s.ws, { type: 'error', code: 'shutting_down', message: 'the gateway is shutting down' });
        s.ws.close(closeCodes.shutting_down, 'gateway shutting down');
        dropSession(s, 'gateway shutdown');
      }
      // What was just written (the `error` and close frames) leaves before the sockets are destroyed.
      hold.flush();
      for (const client of wss.clients) client.terminate();
      await new Promise<void>((resolve) => wss.close(() => resolve()));
      notifyCapacity();
    },
  };
}
