import {
  type AdvertisedModel,
  createWriteCoalescer,
  type GatewayToWorker,
  gatewayToWorker,
  type Hardware,
  loginMessage,
  PROTOCOL_VERSION,
  socketOf,
  type WorkerToGateway,
} from '@aipg/core';
import type { Logger } from 'pino';
import { type Address, getAddress, type LocalAccount } from 'viem';
import WebSocket from 'ws';
import { ChainMismatchError } from '../errors.ts';
import type { JobRunner, JobSession } from '../jobs/runner.ts';
import type { WorkerMetrics } from '../metrics/registry.ts';
import type { WorkerTee } from '../tee/index.ts';
import { backoffDelay } from './backoff.ts';

export type HubState =
  | 'idle'
  | 'connecting'
  | 'authenticating'
  | 'connected'
  | 'reconnecting'
  | 'closing'
  | 'closed';

export type HubClientParameters = {
  logger: Logger;
  metrics: WorkerMetrics;
  /** `ws(s)://<gateway>/v1/workers/connect`. */
  url: string;
  /** The operator key: signs the login challenge. */
  account: LocalAccount;
  /** The chain and Grid this worker signs receipts for; a gateway on another one is refused. */
  chainId: number;
  grid: Address;
  models: AdvertisedModel[];
  hardware: Hardware;
  version: string;
  runner: JobRunner;
  /** A worker in a TEE: its evidence goes with `hello` and answers `attest` challenges. */
  tee?: WorkerTee | undefined;
  reconnect: { initialDelayMs: number; maxDelayMs: number };
  /** A problem retrying cannot fix (the gateway serves another chain or protocol): the worker should stop. */
  onFatal: (error: Error) => void;
  onStateChange?: ((state: HubState) => void) | undefined;
  /** An `error` frame from the gateway (login refused, bond no longer active, replaced…). */
  onGatewayError?: ((error: { code: string; message: string; loggedIn: boolean }) => void) | undefined;
  /** Gives up on a gateway that sends no challenge / welcome within this time after the socket opens. */
  loginTimeoutMs?: number | undefined;
  random?: (() => number) | undefined;
};

export type HubClient = ReturnType<typeof createHubClient>;

/** A login that lasted this long was a working connection: the next drop starts the backoff over. */
const STABLE_CONNECTION_MS = 10_000;

/** A socket a gateway closes for good has this many heartbeats of silence to live. */
const SILENT_HEARTBEATS = 3;

/**
 * The worker's side of the gateway hub: log in (sign the challenge, `hello`), take jobs, answer pings,
 * and reconnect with capped exponential backoff and jitter whenever the socket drops.
 */
export function createHubClient(params: HubClientParameters) {
  const { logger, metrics, url, account, runner } = params;
  const loginTimeoutMs = params.loginTimeoutMs ?? 15_000;
  const random = params.random ?? Math.random;

  let state: HubState = 'idle';
  /** Set by `close()` and fatal errors: no frame handling, no reconnect from then on. */
  let closing = false;
  let socket: WebSocket | undefined;
  /** Frames sent in one turn leave in one write. */
  const hold = createWriteCoalescer();
  let attempt = 0;
  let reconnectTimer: NodeJS.Timeout | undefined;
  let loginTimer: NodeJS.Timeout | undefined;
  let watchdog: NodeJS.Timeout | undefined;
  let heartbeatMs = 0;
  let workerId: string | undefined;
  let gatewayAddress: Address | undefined;
  let connectedSince: number | undefined;
  const closeWaiters: (() => void)[] = [];
  const welcomeWaiters: (() => void)[] = [];

  function setState(next: HubState) {
    if (state === next) return;
    if (closing && next !== 'closing' && next !== 'closed') return;
    state = next;
    params.onStateChange?.(next);
  }

  function connect() {
    clearTimeout(reconnectTimer);
    reconnectTimer = undefined;
    setState(state === 'idle' ? 'connecting' : 'reconnecting');
    if (attempt > 0) metrics.reconnects.inc({});
    logger.info({ url, attempt }, 'connecting to gateway');
    const ws = new WebSocket(url, { handshakeTimeout: loginTimeoutMs, maxPayload: 32 * 1024 * 1024 });
    socket = ws;
    const thisSession = {
      gateway: '0x0000000000000000000000000000000000000000' as Address,
      closed: false,
      send(frame: WorkerToGateway) {
        if (thisSession.closed || ws.readyState !== WebSocket.OPEN) return;
        // Results of jobs that finished together leave in one write (`createWriteCoalescer`).
        hold(socketOf(ws));
        ws.send(JSON.stringify(frame));
      },
    };

    ws.on('open', () => {
      setState('authenticating');
      loginTimer = setTimeout(() => {
        logger.warn({ timeoutMs: loginTimeoutMs }, 'gateway did not complete the login in time');
        ws.terminate();
      }, loginTimeoutMs);
    });
    ws.on('ping', () => touch(ws));
    ws.on('message', (data, isBinary) => {
      touch(ws);
      if (isBinary) {
        logger.warn('binary frame from gateway ignored');
        return;
      }
      let frame: GatewayToWorker;
      try {
        const parsed = gatewayToWorker.safeParse(JSON.parse(String(data)));
        if (!parsed.success) {
          logger.warn({ issue: parsed.error.issues[0]?.message }, 'invalid frame from gateway ignored');
          return;
        }
        frame = parsed.data;
      } catch {
        logger.warn('non-JSON frame from gateway ignored');
        return;
      }
      handle(frame, ws, thisSession).catch((error: unknown) => {
        logger.error({ err: error }, 'handling a gateway frame failed');
      });
    });
    ws.on('error', (error) => {
      // A 'close' always follows; this only says why.
      logger.warn({ error: error.message }, 'gateway connection error');
    });
    ws.on('close', (code, reasonBuffer) => {
      const reason = reasonBuffer.toString();
      clearTimeout(loginTimer);
      clearTimeout(watchdog);
      thisSession.closed = true;
      // Only a connection that held for a while resets the backoff: a gateway that welcomes and then
      // kicks the worker (bond inactive, replaced) must not be hammered every half second.
      const stable = connectedSince !== undefined && Date.now() - connectedSince >= STABLE_CONNECTION_MS;
      connectedSince = undefined;
      metrics.connected.set({}, 0);
      const aborted = runner.abortSession(thisSession);
      if (socket === ws) socket = undefined;
      if (closing) {
        setState('closed');
        for (const w of closeWaiters.splice(0)) w();
        return;
      }
      if (stable) attempt = 0;
      const delay = backoffDelay(attempt, params.reconnect, random);
      attempt += 1;
      logger.warn(
        { code, reason, abortedJobs: aborted, retryInMs: delay },
        'gateway connection closed; reconnecting',
      );
      setState('reconnecting');
      reconnectTimer = setTimeout(connect, delay);
    });
  }

  /** Any frame (or protocol ping) proves the gateway alive; silence for a few heartbeats means a dead link. */
  function touch(ws: WebSocket) {
    if (heartbeatMs <= 0 || state !== 'connected') return;
    clearTimeout(watchdog);
    watchdog = setTimeout(() => {
      logger.warn(
        { heartbeatMs },
        'no frame from the gateway for several heartbeats: dropping the connection',
      );
      ws.terminate();
    }, heartbeatMs * SILENT_HEARTBEATS);
  }

  function fatal(ws: WebSocket, error: Error) {
    logger.error({ code: (error as { code?: string }).code }, error.message);
    closing = true;
    setState('closing');
    ws.close(1008, error.message.slice(0, 120));
    params.onFatal(error);
  }

  async function handle(frame: GatewayToWorker, ws: WebSocket, s: JobSession & { closed: boolean }) {
    if (closing && frame.type !== 'cancel') return;
    switch (frame.type) {
      case 'challenge': {
        if (frame.protocolVersion !== PROTOCOL_VERSION) {
          return fatal(
            ws,
            new ChainMismatchError(
              `gateway speaks worker protocol ${frame.protocolVersion}, this worker ${PROTOCOL_VERSION}: upgrade the one that is older`,
            ),
          );
        }
        if (frame.chainId !== params.chainId || getAddress(frame.grid) !== getAddress(params.grid)) {
          return fatal(
            ws,
            new ChainMismatchError(
              `gateway settles on chain ${frame.chainId} at Grid ${frame.grid}, but this worker is configured for chain ${params.chainId} at Grid ${params.grid}`,
            ),
          );
        }
        s.gateway = getAddress(frame.gateway);
        gatewayAddress = s.gateway;
        const signature = await account.signMessage({ message: loginMessage(frame) });
        const tee = params.tee ? await params.tee.attest(frame.nonce) : undefined;
        s.send({
          type: 'hello',
          protocolVersion: PROTOCOL_VERSION,
          operator: account.address,
          signature,
          models: params.models,
          hardware: params.hardware,
          version: params.version,
          ...(tee ? { tee } : {}),
        });
        return;
      }
      case 'attest': {
        if (!params.tee || state !== 'connected') return;
        s.send({
          type: 'attestation',
          requestId: frame.requestId,
          evidence: await params.tee.attest(frame.nonce),
        });
        return;
      }
      case 'sealed-job': {
        if (state !== 'connected') {
          logger.warn({ jobId: frame.jobId }, 'confidential job before welcome ignored');
          return;
        }
        runner.submitSealed(frame, s);
        return;
      }
      case 'welcome': {
        clearTimeout(loginTimer);
        workerId = frame.workerId;
        heartbeatMs = frame.heartbeatMs;
        connectedSince = Date.now();
        metrics.connected.set({}, 1);
        setState('connected');
        touch(ws);
        logger.info({ workerId, gateway: s.gateway, heartbeatMs }, 'logged in to gateway');
        for (const w of welcomeWaiters.splice(0)) w();
        return;
      }
      case 'error': {
        const loggedIn = state === 'connected';
        logger.error({ code: frame.code, loggedIn }, `gateway error: ${frame.message} (${frame.code})`);
        params.onGatewayError?.({ code: frame.code, message: frame.message, loggedIn });
        return;
      }
      case 'job': {
        if (state !== 'connected') {
          logger.warn({ jobId: frame.jobId }, 'job before welcome ignored');
          return;
        }
        runner.submit(frame, s);
        return;
      }
      case 'image-job': {
        if (state !== 'connected') {
          logger.warn({ jobId: frame.jobId }, 'image job before welcome ignored');
          return;
        }
        runner.submitImage(frame, s);
        return;
      }
      case 'image-check': {
        if (state !== 'connected') return;
        runner.submitImageCheck(frame, s);
        return;
      }
      case 'score': {
        if (state !== 'connected') {
          logger.warn({ jobId: frame.jobId }, 'score job before welcome ignored');
          return;
        }
        runner.submitScore(frame, s);
        return;
      }
      case 'job-seq': {
        if (!runner.assignSeq(frame, s))
          logger.debug({ jobId: frame.jobId }, 'receipt number for a job not waiting for one here');
        return;
      }
      case 'cancel': {
        if (!runner.cancel(frame.jobId))
          logger.debug({ jobId: frame.jobId }, 'cancel for a job not running here');
        return;
      }
      case 'ping': {
        s.send({ type: 'pong', t: frame.t });
        return;
      }
    }
  }

  return {
    start(): void {
      if (state !== 'idle') return;
      connect();
    },
    get state(): HubState {
      return state;
    },
    get workerId(): string | undefined {
      return workerId;
    },
    get gateway(): Address | undefined {
      return gatewayAddress;
    },
    /** Resolves at the next successful login (at once when logged in now). */
    welcomed(): Promise<void> {
      if (state === 'connected') return Promise.resolve();
      return new Promise((resolve) => welcomeWaiters.push(resolve));
    },
    /**
     * Closes the connection (code 1001, "going away") and stops reconnecting. The protocol has no
     * drain frame: callers drain jobs first, then close.
     */
    close(timeoutMs = 5_000): Promise<void> {
      clearTimeout(reconnectTimer);
      reconnectTimer = undefined;
      closing = true;
      if (state === 'closed' || state === 'idle') {
        setState('closed');
        return Promise.resolve();
      }
      setState('closing');
      const ws = socket;
      if (!ws) {
        setState('closed');
        return Promise.resolve();
      }
      return new Promise<void>((resolve) => {
        const timer = setTimeout(() => {
          ws.terminate();
        }, timeoutMs);
        closeWaiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
        if (ws.readyState === WebSocket.CONNECTING) ws.terminate();
        else ws.close(1001, 'worker shutting down');
      });
    },
  };
}
