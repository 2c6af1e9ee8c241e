import { readFile } from 'node:fs/promises';
import type { Hardware } from '@aipg/core';
import {
  createDaemonLogger,
  createShutdown,
  type DaemonCommon,
  type Logger,
  type MetricsServer,
  startMetricsServer,
} from '@aipg/daemon';
import {
  type Address,
  type Chain,
  type Client,
  createPublicClient,
  fallback,
  type Hex,
  http,
  type Transport,
} from 'viem';
import { createProvidedBackend } from './backend-factory.ts';
import type { ImageBackend, InferenceBackend } from './backends/types.ts';
import type { WorkerOptions } from './config/options.ts';
import { BondRequirementError, WorkerConfigError } from './errors.ts';
import { detectHardware } from './hardware/detect.ts';
import { checkHardwareRule, checkModelVram } from './hardware/policy.ts';
import { createHubClient, type HubState } from './hub/client.ts';
import { operatorAccount } from './jobs/receipt.ts';
import { createJobRunner, type ServedModel } from './jobs/runner.ts';
import { createReceiptSeqGuard } from './jobs/seq-guard.ts';
import { createWorkerMetrics, type WorkerMetrics } from './metrics/registry.ts';
import { checkChainId, checkServedModels, checkWorkerBond } from './preflight/chain.ts';
import { createSimulatedWorkerTee, type WorkerTee } from './tee/index.ts';

/** Gateway `error` codes that mean "your bond does not back you" (packages/gateway hub). */
const BOND_ERROR_CODES = new Set(['not_bonded', 'bond_inactive']);

/** A backend with its concurrency limit, for callers that build backends themselves (text or image). */
export type ProvidedBackend =
  | { backend: InferenceBackend; maxConcurrency: number }
  | { image: ImageBackend; maxConcurrency: number };

/** What every backend has: its model, kind, load and close. */
const engineOf = (p: ProvidedBackend) => ('image' in p ? p.image : p.backend);
/** The name signed into its receipts' requestHash: a text backend's sampler, an image backend's pipeline. */
const samplerOf = (p: ProvidedBackend) => ('image' in p ? p.image.pipeline : p.backend.sampler);

export type StartWorkerDependencies = {
  logger?: Logger | undefined;
  /** Serve these instead of creating backends from `options.models` (tests, embedding). Closed on stop. */
  backends?: readonly ProvidedBackend[] | undefined;
  /** Skip GPU detection (tests, or an operator who knows better). */
  hardware?: Hardware | undefined;
  /** A viem client for the chain reads (default: HTTP to `options.rpcUrl`). */
  client?: Client<Transport, Chain | undefined> | undefined;
  /** The worker's TEE (tests); default: the simulated one of `options.teeSimulated`, or none. */
  tee?: WorkerTee | undefined;
};

export type WorkerState = 'connecting' | 'connected' | 'reconnecting' | 'draining' | 'stopped';

export type WorkerStatus = {
  state: WorkerState;
  hub: HubState;
  workerId: string | undefined;
  gateway: Address | undefined;
  operator: Address;
  owner: Address;
  chainId: number;
  grid: Address;
  models: {
    modelId: Hex;
    name: string;
    backend: string;
    /** The sampler advertised for the model (and signed into its receipts). */
    sampler: string;
    maxConcurrency: number;
    activeJobs: number;
  }[];
  jobs: {
    active: number;
    completed: number;
    failed: number;
    cancelled: number;
    rejected: number;
    /** Score jobs (validators' cross-checks) answered. */
    scored: number;
  };
  hardware: Hardware;
  metricsUrl: string | undefined;
  warnings: string[];
  startedAt: number;
};

export type StopOptions = {
  /** Abort running jobs instead of letting them finish. */
  force?: boolean | undefined;
};

export type Worker = {
  /**
   * Stops taking jobs (new ones get a retryable `WORKER_DRAINING`), lets running jobs finish (up to
   * `options.drainTimeoutMs`, then aborts them), closes the gateway connection, the backends and the
   * metrics server. A second call with `force` aborts the jobs still running.
   */
  stop(options?: StopOptions): Promise<void>;
  status(): WorkerStatus;
  /** Resolves at the next login to the gateway (at once when logged in). */
  ready(): Promise<void>;
  /** Resolves once stopped; `error` when a problem retrying can't fix stopped the worker. */
  readonly stopped: Promise<{ error?: Error | undefined }>;
};

/** What every part of the worker receives: options, logger, metrics, shutdown (the daemons' one shape). */
export type WorkerCommon = DaemonCommon<WorkerOptions, WorkerMetrics>;

/** The worker's `common`: its root logger (`service: worker`, secrets redacted) unless one is given. */
export function createWorkerCommon(options: WorkerOptions, logger?: Logger): WorkerCommon {
  const log = logger ?? createDaemonLogger({ service: 'worker', level: options.logLevel });
  return { options, logger: log, metrics: createWorkerMetrics(), shutdown: createShutdown(log) };
}

/**
 * Starts a worker: checks the chain, the hardware rule and the bond, loads the backends, checks
 * each served model against the registry, then connects to the gateway (and keeps reconnecting).
 * Rejects with a typed error (`shortMessage` is one line for the user) when any check fails.
 */
export async function startWorker(
  options: WorkerOptions,
  deps: StartWorkerDependencies = {},
): Promise<Worker> {
  return createWorker({ ...deps, common: createWorkerCommon(options, deps.logger) });
}

export type CreateWorkerParameters = { common: WorkerCommon } & Omit<StartWorkerDependencies, 'logger'>;

/** `startWorker` on a `common` the caller built (the daemons' one shape: `createX({ common, … })`). */
export async function createWorker({ common, ...deps }: CreateWorkerParameters): Promise<Worker> {
  const { options, logger, metrics } = common;
  for (const line of options.deprecations ?? []) logger.warn(line);
  // Its key stays with the account for native receipt signing (never on the object, never logged).
  const account = operatorAccount(options.operatorKey);
  const rpcUrls = options.rpcUrls?.length ? options.rpcUrls : [options.rpcUrl];
  const client =
    deps.client ??
    createPublicClient({
      transport:
        rpcUrls.length === 1
          ? http(rpcUrls[0], { retryCount: 2 })
          : fallback(
              rpcUrls.map((url) => http(url, { retryCount: 1 })),
              { retryCount: 0 },
            ),
    });
  const context = { devnet: options.devnet, network: options.network };
  const warnings: string[] = [];
  const startedAt = Date.now();

  await checkChainId(client, options.chainId, options.rpcUrl);

  const hardware =
    deps.hardware ?? (await detectHardware({ searchPath: options.hardwareSearchPath, logger }));
  const verdict = checkHardwareRule(hardware, context);
  warnings.push(...verdict.warnings);
  logger.info(
    {
      gpus: hardware.gpus,
      cpuCores: hardware.cpuCores,
      memoryMb: hardware.memoryMb,
      network: options.network,
    },
    verdict.bestGpu ? 'hardware detected' : 'no GPU detected: CPU-only worker (devnet)',
  );

  const bond = await checkWorkerBond({ client, grid: options.grid, operator: account.address });
  logger.info(
    {
      owner: bond.owner,
      operator: bond.operator,
      bond: bond.amount.toString(),
      minimum: bond.minimum.toString(),
    },
    'worker bond ok',
  );

  const provided: ProvidedBackend[] = deps.backends ? [...deps.backends] : [];
  try {
    if (!deps.backends) {
      for (const model of options.models) {
        provided.push(await createProvidedBackend(model, logger));
      }
    }
    for (const p of provided) {
      logger.info({ backend: engineOf(p).kind }, 'loading backend');
      await engineOf(p).load();
    }
  } catch (error) {
    await closeBackends(provided, logger);
    throw error;
  }

  const served = new Map<Hex, ServedModel>();
  let metricsServer: MetricsServer | undefined;
  try {
    const registered = await checkServedModels({
      client,
      grid: options.grid,
      models: provided.map((p) => ({
        ...engineOf(p).model,
        kind: 'image' in p ? ('image' as const) : ('text' as const),
      })),
    });
    provided.forEach((p, i) => {
      const reg = registered[i];
      served.set(
        engineOf(p).model.modelId,
        'image' in p
          ? { image: p.image, maxConcurrency: p.maxConcurrency }
          : { backend: p.backend, maxConcurrency: p.maxConcurrency, rates: reg?.rates },
      );
    });
    warnings.push(...checkModelVram(verdict, registered, context));
  } catch (error) {
    await closeBackends(provided, logger);
    throw error;
  }
  for (const w of warnings) logger.warn(w);

  const seqGuard = await createReceiptSeqGuard({ dataDir: options.dataDir }).catch(async (cause: unknown) => {
    await closeBackends(provided, logger);
    throw new WorkerConfigError(`cannot read the worker's receipt numbers in ${options.dataDir}`, { cause });
  });
  let tee = deps.tee;
  if (!tee && options.teeSimulated) {
    try {
      tee = await createSimulatedWorkerTee(await readFile(options.teeSimulated, 'utf8'), account.address);
    } catch (cause) {
      await closeBackends(provided, logger);
      throw new WorkerConfigError(`cannot load the simulated TEE of ${options.teeSimulated}`, { cause });
    }
  }
  if (tee?.simulated)
    logger.warn(
      'SIMULATED TEE: this worker attests under a development root, not Intel or NVIDIA; its confidential jobs are NOT confidential (devnet only)',
    );
  const runner = createJobRunner({
    logger,
    metrics,
    models: served,
    account,
    seqGuard,
    tee,
    owner: bond.owner,
    chainId: options.chainId,
    grid: options.grid,
  });

  let stopping: Promise<void> | undefined;
  let fatalError: Error | undefined;
  let resolveStopped: (v: { error?: Error | undefined }) => void = () => {};
  const stopped = new Promise<{ error?: Error | undefined }>((resolve) => {
    resolveStopped = resolve;
  });

  const hub = createHubClient({
    logger,
    metrics,
    url: options.gatewayUrl,
    account,
    chainId: options.chainId,
    grid: options.grid,
    models: provided.map((p) => ({
      modelId: engineOf(p).model.modelId,
      name: engineOf(p).model.name,
      weightsHash: engineOf(p).model.weightsHash,
      maxConcurrency: p.maxConcurrency,
      sampler: samplerOf(p),
      ...('image' in p ? { image: p.image.capabilities } : {}),
    })),
    hardware,
    version: options.version,
    runner,
    tee,
    reconnect: options.reconnect,
    onFatal: (error) => {
      fatalError = error;
      void stop({ force: true });
    },
    onGatewayError: ({ code }) => {
      if (BOND_ERROR_CODES.has(code)) void recheckBond();
    },
  });

  /**
   * The gateway says the bond is gone (withdrawn, unbonding, slashed below the minimum while running):
   * when the chain agrees, retrying the login cannot help, so stop (running jobs still finish).
   */
  async function recheckBond() {
    try {
      await checkWorkerBond({ client, grid: options.grid, operator: account.address });
      logger.warn('the gateway reports this worker unbonded, but the chain shows an active bond: retrying');
    } catch (error) {
      if (!(error instanceof BondRequirementError)) {
        logger.warn({ err: error }, 'could not re-check the bond after the gateway refused it');
        return;
      }
      fatalError = error;
      logger.error({ code: error.code }, error.shortMessage);
      void stop();
    }
  }

  function currentState(): WorkerState {
    if (stopping) return hub.state === 'closed' ? 'stopped' : 'draining';
    if (hub.state === 'connected') return 'connected';
    if (hub.state === 'reconnecting') return 'reconnecting';
    return 'connecting';
  }

  function stop({ force = false }: StopOptions = {}): Promise<void> {
    if (force) runner.abortAll();
    if (stopping) return stopping;
    runner.stopAccepting();
    const log = logger.child({ phase: 'shutdown' });
    stopping = (async () => {
      const running = runner.stats().active;
      if (running > 0)
        log.info(
          { runningJobs: running, timeoutMs: options.drainTimeoutMs },
          'draining: finishing running jobs',
        );
      let timer: NodeJS.Timeout | undefined;
      const timedOut = await Promise.race([
        runner.idle().then(() => false),
        new Promise<boolean>((resolve) => {
          timer = setTimeout(() => resolve(true), options.drainTimeoutMs);
        }),
      ]);
      clearTimeout(timer);
      if (timedOut) {
        log.warn('drain timeout: aborting the jobs still running');
        runner.abortAll();
        await runner.idle();
      }
      await hub.close();
      seqGuard.close();
      await closeBackends(provided, log);
      await common.shutdown.run();
      log.info({ jobs: runner.stats() }, 'worker stopped');
      resolveStopped({ error: fatalError });
    })();
    return stopping;
  }

  if (options.metrics) {
    try {
      metricsServer = await startMetricsServer(metrics, {
        ...options.metrics,
        health: () => ({ ok: !stopping && hub.state === 'connected', state: currentState() }),
      });
    } catch (error) {
      await closeBackends(provided, logger);
      throw error;
    }
    common.shutdown.add('metrics', () => metricsServer?.close());
    logger.info({ url: metricsServer.url }, 'metrics listening');
  }
  hub.start();
  logger.info(
    {
      gateway: options.gatewayUrl,
      models: provided.map((p) => engineOf(p).model.name),
      operator: account.address,
    },
    'worker started',
  );

  return {
    stop,
    ready: () => hub.welcomed(),
    stopped,
    status(): WorkerStatus {
      const stats = runner.stats();
      return {
        state: currentState(),
        hub: hub.state,
        workerId: hub.workerId,
        gateway: hub.gateway,
        operator: account.address,
        owner: bond.owner,
        chainId: options.chainId,
        grid: options.grid,
        models: provided.map((p) => ({
          modelId: engineOf(p).model.modelId,
          name: engineOf(p).model.name,
          backend: engineOf(p).kind,
          sampler: samplerOf(p),
          maxConcurrency: p.maxConcurrency,
          activeJobs: stats.byModel[engineOf(p).model.modelId]?.active ?? 0,
        })),
        jobs: {
          active: stats.active,
          completed: stats.completed,
          failed: stats.failed,
          cancelled: stats.cancelled,
          rejected: stats.rejected,
          scored: stats.scored,
        },
        hardware,
        metricsUrl: metricsServer?.url,
        warnings: [...warnings],
        startedAt,
      };
    },
  };
}

async function closeBackends(backends: readonly ProvidedBackend[], logger: Logger): Promise<void> {
  const results = await Promise.allSettled(backends.map((p) => engineOf(p).close()));
  for (const r of results) {
    if (r.status === 'rejected') logger.warn({ err: r.reason }, 'closing a backend failed');
  }
}
