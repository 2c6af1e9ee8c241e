import { copyFile, mkdir, rm, writeFile } from 'node:fs/promises';
import { basename, join, resolve } from 'node:path';
import {
  type AuditParams,
  anvilTestAccounts,
  approveToken,
  bond,
  createGridClients,
  type Deployment,
  deposit,
  increaseGatewayCap,
  registerModel,
  startDevChain,
  writeDeployment,
} from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import { ensureImageModel } from '@aipg/diffusion';
import {
  apiKeyMessage,
  createGatewayOptions,
  type StartGatewayReturnType,
  startGateway,
} from '@aipg/gateway';
import { ensureModel, type ModelPresetName } from '@aipg/inference';
import { createValidatorOptions, startValidator, type Validator } from '@aipg/validator';
import {
  type AdversaryEvent,
  type AdversaryKind,
  createAdversaryBackend,
  createDiffusionBackend,
  createImageAdversaryBackend,
  createLlamaCppBackend,
  createWorkerOptions,
  type ImageAdversaryKind,
  isImageAdversary,
  isSubstitute,
  startWorker,
  twinBits,
  type Worker,
} from '@aipg/worker';
import { type Address, type Hex, maxUint256, zeroHash } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import type { Io } from '../command.ts';
import { CliError } from '../errors.ts';
import { type DishonestGateway, startDishonestGateway } from './dishonest-gateway.ts';
import { createProgress } from './progress.ts';
import {
  type DevnetAdversaryKind,
  ensureSubstituteImageModel,
  ensureSubstituteModel,
  ensureTwinModel,
  type SlashWatcher,
  startTraffic,
  type Traffic,
  watchGateway,
  watchSlashes,
} from './red-team.ts';
import { ensureDevnetTee } from './simulated-tee.ts';

/**
 * Roles on the devnet, each one of anvil's PUBLIC test accounts (never for real funds):
 * 0 deploys and owns the Grid (and is its treasury), 1 is the gateway's settling key,
 * 2 the worker's bond owner and operator key, 3 the user who pays for requests,
 * 4… the validators (one account each, `--validators N`), 9 the adversary worker (`--adversary`).
 */
export const DEVNET_ROLES = {
  owner: 0,
  gateway: 1,
  worker: 2,
  payer: 3,
  firstValidator: 4,
  adversary: 9,
} as const;

/** anvil's test accounts: validators take 4, 5, … and must stop short of the adversary's 9 (or of 10). */
export function maxDevnetValidators(adversary: boolean): number {
  return (adversary ? DEVNET_ROLES.adversary : anvilTestAccounts.length) - DEVNET_ROLES.firstValidator;
}

/** Bonds on the devnet: the network minimums. */
const WORKER_BOND = parseAipg('1000');
const VALIDATOR_BOND = parseAipg('10000');

export type StartDevnetParameters = {
  /** Folder for the model, the gateway's database and `devnet.json` (default `.aipg`). */
  dir?: string | undefined;
  /** Gateway HTTP port (default 8080; 0 = any free port). */
  port?: number | undefined;
  /** anvil RPC port (default 8545; 0 = any free port). */
  rpcPort?: number | undefined;
  /** Which generated model the worker serves (default `small`). */
  model?: ModelPresetName | undefined;
  /** llama.cpp CPU threads for the worker (default 1: leaves a core for everything else). */
  threads?: number | undefined;
  /** Jobs the worker runs at once (default 2). */
  maxConcurrency?: number | undefined;
  /** Test AIPG the payer deposits and approves to the gateway (default 1,000). */
  payerDeposit?: bigint | undefined;
  /** Settlement loop period in ms (default 5,000). */
  settleIntervalMs?: number | undefined;
  /** Log level of the gateway and worker (default `warn`: the progress lines are the output). */
  logLevel?: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent' | undefined;
  /** Extra gateway options by dotted name (`{ 'chain.registryCacheMs': 500 }`), for tests and benchmarks. */
  gatewayOptions?: Record<string, unknown> | undefined;
  /**
   * Validator nodes (default 3), each bonded with 10,000 test AIPG from test accounts 4, 5, … and
   * re-executing audited jobs on the same generated model. 0: none.
   */
  validators?: number | undefined;
  /**
   * A second, dishonest worker (test account 9) of this kind. The audit rate becomes 100% (unless
   * `audit` says otherwise) and, unless `traffic` is false, a traffic loop sends it jobs.
   */
  adversary?: DevnetAdversaryKind | undefined;
  /** Overrides of the devnet's audit parameters (`defaultGridParams.devnet.audit` of @aipg/chain). */
  audit?: Partial<AuditParams> | undefined;
  /**
   * Background chat requests through the gateway (a few a minute, every other one pinned to the
   * adversary) so audits happen without a manual step. Default: on with an adversary. A number is
   * the period in ms (default 15,000).
   */
  traffic?: boolean | number | undefined;
  /**
   * Mine an empty block this often (ms) so a settled batch's future-block randomness becomes
   * ready on an otherwise idle chain. Default 1,000 with validators; 0 = never (tests mine).
   */
  blockIntervalMs?: number | undefined;
  /** Validators' poll period in ms (default 1,000). */
  validatorPollIntervalMs?: number | undefined;
  /**
   * How the validators check: `reexecute` (default: each runs the model) or `crosscheck` (no weights:
   * each has a drawn worker re-score the job, a second one confirm a FAIL).
   */
  validatorMode?: 'reexecute' | 'crosscheck' | undefined;
  /**
   * The validators fetch audit evidence through a dishonest gateway's front (`dishonest-gateway.ts`):
   * it passes everything through until `dishonestGateway.tamper(true)`, then alters every job's
   * evidence (params, input, pricing in turn). Default false.
   */
  dishonestGateway?: boolean | undefined;
  /**
   * The confidential tier on a SIMULATED TEE (docs/confidential.md): a `SimulatedTee` made once per
   * `dir` (`<dir>/tee/simulated-root.json`, mode 0600, kept across restarts) whose anchors
   * (`<dir>/tee/anchors.json`) the gateway trusts, and the devnet's worker attesting under it, so it
   * also takes confidential jobs. Nothing is actually confidential: the root is a development one.
   * Default false.
   */
  confidential?: boolean | undefined;
  /** Progress lines go here; undefined = quiet (tests). */
  io?: Io | undefined;
};

/** What `.aipg/devnet.json` holds: everything a script needs to use the devnet. */
export type DevnetInfo = {
  rpcUrl: string;
  chainId: number;
  contracts: { grid: Address; token: Address };
  deployBlock: number;
  gatewayUrl: string;
  workerUrl: string;
  dashboardUrl: string;
  apiKey: string;
  model: { name: string; modelId: Hex; weightsHash: Hex; path: string; parameterCount: number };
  /** The image model the worker also serves (the embedded ONNX pipeline). */
  imageModel: { name: string; modelId: Hex; weightsHash: Hex };
  accounts: {
    note: string;
    owner: Address;
    gateway: Address;
    worker: Address;
    payer: Address;
  };
  /** Validator bond owners (each its own operator). */
  validators: Address[];
  /** The dishonest worker, when started with one. */
  adversary?: { address: Address; kind: DevnetAdversaryKind } | undefined;
  /** With `confidential`: the simulated TEE the worker attests under. */
  confidential?: DevnetConfidentialInfo | undefined;
};

/** The devnet's confidential tier (`aipg devnet --confidential`). */
export type DevnetConfidentialInfo = {
  note: string;
  /** Always true: the devnet's TEE is simulated under a development root. */
  simulated: true;
  /** The trust anchors a client must pass (`confidentialFetch({ anchors: parseAnchors(…) })`). */
  anchorsFile: string;
  /** The simulated root, private keys included (mode 0600): the worker's `teeSimulated`. */
  rootFile: string;
  /** The on-chain premium on confidential fees, in basis points. */
  confidentialPremiumBps: number;
};

/** What `devnet.json` says of the simulated TEE (and the banner repeats). */
export const SIMULATED_TEE_NOTE =
  'SIMULATED TEE under a development root: nothing is actually confidential; trust these anchors on this devnet only';

/** A dishonest worker on the devnet. */
export type DevnetAdversary = {
  address: Address;
  kind: AdversaryKind | ImageAdversaryKind;
  worker: Worker;
  /** Every job it lied about (or, for a job it could not lie about, served honestly). */
  events: AdversaryEvent[];
};

export type StartAdversaryParameters = {
  /** Its bond owner and operator key (default test account 9). */
  privateKey?: Hex | undefined;
  /** Jobs it runs at once (default 2). */
  maxConcurrency?: number | undefined;
};

export type StartDevnetReturnType = DevnetInfo & {
  deployment: Deployment;
  gateway: StartGatewayReturnType;
  /** The validator nodes, in the order of `validators`. */
  validatorNodes: Validator[];
  /** The audit parameters in force. */
  auditConfig: AuditParams;
  /** The `adversary` worker, when started with one. */
  adversaryWorker?: DevnetAdversary | undefined;
  /**
   * Bonds 1,000 test AIPG from `privateKey` (sent test AIPG and ETH first when it is not one of
   * anvil's funded accounts) and connects another dishonest worker. Stopped with the devnet.
   */
  startAdversary(kind: AdversaryKind, parameters?: StartAdversaryParameters): Promise<DevnetAdversary>;
  /**
   * Bonds and connects a dishonest image worker (`image-…` kinds) serving the devnet's image model:
   * its images and trajectories are delivered and billed, and only the validators' step re-runs
   * catch them.
   */
  startImageAdversary(
    kind: ImageAdversaryKind,
    parameters?: StartAdversaryParameters,
  ): Promise<DevnetAdversary>;
  /** Bonds and connects another honest worker of the model (same funding as `startAdversary`). */
  startHonestWorker(parameters?: StartAdversaryParameters): Promise<{ address: Address; worker: Worker }>;
  /** With `dishonestGateway`: the front the validators fetch evidence through. */
  dishonestGateway?: DishonestGateway | undefined;
  /** The background traffic loop, when running. */
  traffic?: Traffic | undefined;
  /** Where devnet.json was written. */
  infoPath: string;
  /** Stops the worker (draining), the gateway (settling what waits), then anvil. */
  stop(): Promise<void>;
};

const key = (i: number) => anvilTestAccounts[i]!.privateKey as Hex;

/**
 * The whole network on one machine: anvil with the Grid deployed, the project's own model
 * generated and registered, a gateway on embedded PGlite, one llama.cpp worker bonded and
 * connected, the validator nodes bonded and re-executing audited jobs, and a funded user with
 * deposit, approval and an API key. With `adversary`, a dishonest second worker, every job
 * audited, background traffic and (with `io`) a line for every FAIL attestation and slash, or
 * for what the gateway stopped itself (`ADVERSARY_FATES`).
 */
export async function startDevnet(parameters: StartDevnetParameters = {}): Promise<StartDevnetReturnType> {
  const dir = resolve(parameters.dir ?? '.aipg');
  const progress = createProgress(parameters.io);
  const logLevel = parameters.logLevel ?? 'warn';
  // The devnet prints what audits find (attestations, slashes) itself: the validators' and the
  // adversary's own warnings (a batch not listed yet, a bond gone) would only repeat it as JSON.
  const quietLogLevel = parameters.logLevel ?? 'error';
  const adversaryKind = parameters.adversary;
  // A system-prompt dropper is only visible on a model that reads its context.
  const preset = parameters.model ?? (adversaryKind === 'system-prompt-dropper' ? 'context' : 'small');
  const workerAdversary = adversaryKind === 'dishonest-gateway' ? undefined : adversaryKind;
  const validatorCount = parameters.validators ?? 3;
  const maxValidators = maxDevnetValidators(adversaryKind !== undefined);
  if (!Number.isInteger(validatorCount) || validatorCount < 0 || validatorCount > maxValidators)
    throw new CliError(
      `cannot run ${validatorCount} validators on the devnet`,
      'USAGE',
      `validators take anvil test accounts ${DEVNET_ROLES.firstValidator}…${DEVNET_ROLES.firstValidator + maxValidators - 1}${adversaryKind ? ` (account ${DEVNET_ROLES.adversary} is the adversary)` : ''}: at most ${maxValidators}`,
    );
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
  };

  try {
    const devDir = join(dir, 'devnet');
    // A devnet chain starts empty, so its gateway database (and the validators' state) must too.
    await rm(devDir, { recursive: true, force: true });
    await mkdir(devDir, { recursive: true });

    // Audits: with an adversary every job is audited, with short windows, so a slash shows within minutes.
    // Fewer validators than the default seats: seat them all, with a majority quorum (the devnet's limits
    // allow a single seat), so an audit can still reach a verdict.
    const audit: Partial<AuditParams> = {
      ...(validatorCount > 0 && validatorCount < 3
        ? { validatorsPerAudit: validatorCount, quorum: Math.floor(validatorCount / 2) + 1 }
        : {}),
      ...(adversaryKind
        ? { auditRateBps: 10_000, commitWindow: 30, revealWindow: 30, randomnessDelay: 2 }
        : {}),
      ...parameters.audit,
    };
    const dev = await progress.step('Starting local chain (anvil) and deploying the Grid', () =>
      startDevChain({ port: parameters.rpcPort ?? 8545, silent: true, init: { audit } }),
    );
    stops.push(() => dev.stop());
    const { deployment } = dev;
    const rpcUrl = dev.anvil.rpcUrl;
    const clientsOf = (privateKey: Hex) =>
      createGridClients({ rpcUrl, chainId: deployment.chainId, account: privateKeyToAccount(privateKey) });
    const clients = (i: number) => clientsOf(key(i)).walletClient!;
    const { publicClient } = createGridClients({ rpcUrl, chainId: deployment.chainId });
    const owner = clients(DEVNET_ROLES.owner);
    const workerWallet = clients(DEVNET_ROLES.worker);
    const payerWallet = clients(DEVNET_ROLES.payer);
    const gatewayAddress = privateKeyToAccount(key(DEVNET_ROLES.gateway)).address;
    const deploymentPath = join(dir, 'deployment.json');
    await writeDeployment(deploymentPath, { ...deployment, rpcUrl });

    const model = await progress.step('Generating the model and registering it on chain', async () => {
      const m = await ensureModel({ dir: join(dir, 'models'), preset });
      const { modelId } = await registerModel(owner, {
        grid: deployment.grid,
        name: m.name,
        kind: 'text',
        weightsHash: m.weightsHash,
        tokenizerHash: m.tokenizerHash,
        parameterCount: BigInt(m.parameterCount),
        minVramMb: 0,
        rates: {
          inputPerMTokens: parseAipg('0.5'),
          outputPerMTokens: parseAipg('1.5'),
          perMegapixelStep: 0n,
        },
      });
      return { ...m, modelId };
    });

    const imageModel = await progress.step(
      'Generating the image model and registering it on chain',
      async () => {
        const m = await ensureImageModel('tiny', { dir: join(dir, 'models') });
        const { modelId } = await registerModel(owner, {
          grid: deployment.grid,
          name: m.name,
          kind: 'image',
          weightsHash: m.weightsHash,
          // An image model has no tokenizer file: its prompts are committed as their UTF-8 bytes.
          tokenizerHash: zeroHash,
          parameterCount: BigInt(m.parameterCount),
          minVramMb: 0,
          rates: { inputPerMTokens: 0n, outputPerMTokens: 0n, perMegapixelStep: parseAipg('0.01') },
        });
        return { name: m.name, modelId, weightsHash: m.weightsHash, dir: m.dir };
      },
    );

    const bondAs = async (
      wallet: ReturnType<typeof clients>,
      role: 'worker' | 'validator',
      amount: bigint,
    ) => {
      await approveToken(wallet, { token: deployment.token, spender: deployment.grid, amount });
      await bond(wallet, { grid: deployment.grid, role, amount });
    };

    await progress.step('Bonding the worker (1,000 AIPG) and funding the user', async () => {
      await bondAs(workerWallet, 'worker', WORKER_BOND);
      const funds = parameters.payerDeposit ?? parseAipg('1000');
      await approveToken(payerWallet, { token: deployment.token, spender: deployment.grid, amount: funds });
      await deposit(payerWallet, { grid: deployment.grid, amount: funds });
      await increaseGatewayCap(payerWallet, {
        grid: deployment.grid,
        gateway: gatewayAddress,
        amount: maxUint256,
      });
    });

    const validatorKeys = Array.from({ length: validatorCount }, (_, i) =>
      key(DEVNET_ROLES.firstValidator + i),
    );
    const validatorAddresses = validatorKeys.map((k) => privateKeyToAccount(k).address);
    if (validatorCount > 0)
      await progress.step(
        `Bonding ${validatorCount} validator${validatorCount === 1 ? '' : 's'} (10,000 AIPG each)`,
        async () => {
          for (const k of validatorKeys)
            await bondAs(clientsOf(k).walletClient!, 'validator', VALIDATOR_BOND);
        },
      );

    // Made (or loaded) before the gateway, which reads its anchors at start-up.
    const tee = parameters.confidential
      ? await progress.step(
          'Setting up the SIMULATED TEE (development root: nothing is actually confidential)',
          () => ensureDevnetTee(dir),
        )
      : undefined;

    const gateway = await progress.step('Starting the gateway (embedded PGlite)', async () => {
      const options = createGatewayOptions(
        {
          port: parameters.port ?? 8080,
          host: '127.0.0.1',
          rpcUrl,
          grid: deployment.grid,
          chainId: deployment.chainId,
          privateKey: key(DEVNET_ROLES.gateway),
          databaseDir: join(devDir, 'gateway-db'),
          // The model's tokenizer file only (the gateway tokenizes prompts and renders text with it).
          tokenizersDir: await tokenizersDirFor(devDir, model.tokenizerPath),
          // With an adversary the gateway's warning that it dropped the slashed worker repeats the
          // devnet's own line.
          logLevel: adversaryKind ? quietLogLevel : logLevel,
          'settlement.intervalMs': parameters.settleIntervalMs ?? 5_000,
          // A local devnet: webhooks may go to a receiver on this machine (refused on real gateways).
          'webhooks.allowPrivate': true,
          // A slashed adversary falls below the minimum: drop it within seconds, not a minute.
          ...(adversaryKind ? { 'hub.bondRecheckMs': 5_000, 'chain.registryCacheMs': 2_000 } : {}),
          // Confidential jobs go only to workers whose evidence verifies under these anchors.
          ...(tee ? { 'tee.anchorsFile': tee.anchorsFile } : {}),
          ...parameters.gatewayOptions,
        },
        {},
      );
      return startGateway(options);
    });
    stops.push(() => gateway.stop());

    const workerOptions = (
      operatorKey: Hex,
      maxConcurrency: number,
      level = logLevel,
      teeSimulated: string | undefined = undefined,
    ) =>
      createWorkerOptions(
        {
          network: 'devnet',
          gateway: gateway.workerUrl,
          rpcUrl: rpcUrl,
          grid: deployment.grid,
          model: model.name,
          backend: 'llama-cpp',
          gguf: model.path,
          weightsHash: model.weightsHash,
          threads: parameters.threads ?? 1,
          maxConcurrency,
          logLevel: level,
          ...(teeSimulated ? { teeSimulated } : {}),
        },
        { AIPG_OPERATOR_KEY: operatorKey },
      );

    // One worker serves chat and images, as a GPU owner with the VRAM for both would run it: one
    // process, one bond, one connection (and on a 2-core devnet, one process less).
    // With `confidential` it also attests under the simulated TEE and takes confidential chat jobs.
    await progress.step(
      `Starting the worker (llama.cpp and the ONNX image pipeline on CPU${tee ? ', in the SIMULATED TEE' : ''}) and connecting it`,
      async () => {
        const maxConcurrency = parameters.maxConcurrency ?? 2;
        const options = await workerOptions(
          key(DEVNET_ROLES.worker),
          maxConcurrency,
          logLevel,
          tee?.rootFile,
        );
        const w = await startWorker(options, {
          backends: [
            {
              backend: createLlamaCppBackend({
                name: model.name,
                gguf: model.path,
                threads: parameters.threads ?? 1,
                maxConcurrency,
              }),
              maxConcurrency,
            },
            { image: createDiffusionBackend({ modelDir: imageModel.dir, threads: 1 }), maxConcurrency: 1 },
          ],
        });
        stops.push(() => w.stop());
        await w.ready();
        await waitFor(async () => {
          const res = await fetch(`${gateway.url}/v1/models`);
          const body = (await res.json()) as {
            data: { grid: { model_id: string; workers_online: number } }[];
          };
          return [model.modelId, imageModel.modelId].every((id) =>
            body.data.some((m) => m.grid.model_id === id && m.grid.workers_online > 0),
          );
        }, 30_000);
        // The gateway verifies the login evidence after `welcome`: ready once it lists the worker valid.
        if (tee)
          await waitFor(async () => {
            const res = await fetch(`${gateway.url}/v1/attestation?evidence=false`);
            const body = (await res.json()) as { data: { status: string }[] };
            return body.data.some((x) => x.status === 'valid');
          }, 30_000);
        return w;
      },
    );

    const dishonestGateway =
      (parameters.dishonestGateway ?? adversaryKind === 'dishonest-gateway')
        ? await startDishonestGateway({ target: gateway.url })
        : undefined;
    if (dishonestGateway) stops.push(() => dishonestGateway.stop());
    if (adversaryKind === 'dishonest-gateway') dishonestGateway!.tamper(true);
    // A sybil scorer lies to cross-checking validators only.
    const validatorMode =
      parameters.validatorMode ?? (adversaryKind === 'sybil-scorer' ? 'crosscheck' : 'reexecute');
    const validatorNodes: Validator[] = [];
    if (validatorCount > 0)
      await progress.step(
        `Starting ${validatorCount} validator node${validatorCount === 1 ? '' : 's'} (${validatorMode === 'reexecute' ? 're-execute' : 'cross-check'})`,
        async () => {
          for (const [i, k] of validatorKeys.entries()) {
            const options = await createValidatorOptions(
              {
                network: 'devnet',
                rpcUrl: rpcUrl,
                deployment: deploymentPath,
                gateway: `${gateway.gateway}=${dishonestGateway?.url ?? gateway.url}`,
                mode: validatorMode,
                gguf: [model.path],
                presets: false,
                modelDir: join(dir, 'models'),
                dataDir: join(devDir, `validator-${i + 1}`),
                threads: 1,
                pollInterval: parameters.validatorPollIntervalMs ?? 1_000,
                finalize: 'mine',
                // Earnings stay on the books, where the dashboard and `aipg status` show them.
                withdrawMin: 'off',
                logLevel: quietLogLevel,
              },
              // Confidential receipts are judged by their TEE evidence, which must verify under the
              // devnet's simulated root: under Intel's and NVIDIA's it would fail the honest worker.
              { AIPG_OPERATOR_KEY: k, ...(tee ? { AIPG_TEE_ANCHORS: tee.anchorsFile } : {}) },
            );
            const v = await startValidator(options);
            stops.push(() => v.stop());
            validatorNodes.push(v);
          }
        },
      );

    // An idle anvil mines nothing: keep blocks coming so future-block randomness becomes ready.
    const blockIntervalMs = parameters.blockIntervalMs ?? (validatorCount > 0 ? 1_000 : 0);
    if (blockIntervalMs > 0) {
      const timer = setInterval(() => {
        publicClient.request({ method: 'evm_mine' } as never).catch(() => undefined);
      }, blockIntervalMs);
      stops.push(async () => clearInterval(timer));
    }

    const adversaries: DevnetAdversary[] = [];
    /** Gas money and the bond for a worker key (from the owner's test funds when it is a fresh key). */
    const fundAndBond = async (privateKey: Hex): Promise<Address> => {
      const address = privateKeyToAccount(privateKey).address;
      if (!anvilTestAccounts.some((a) => a.address === address)) {
        // A fresh key: gas money and the bond, from the owner's test funds.
        await publicClient.request({
          method: 'anvil_setBalance',
          params: [address, '0x56BC75E2D63100000'],
        } as never);
        const hash = await owner.writeContract({
          address: deployment.token,
          abi: erc20TransferAbi,
          functionName: 'transfer',
          args: [address, WORKER_BOND],
        });
        await publicClient.waitForTransactionReceipt({ hash });
      }
      await bondAs(clientsOf(privateKey).walletClient!, 'worker', WORKER_BOND);
      return address;
    };

    const startHonestWorker = async ({
      privateKey = generatePrivateKey(),
      maxConcurrency = 2,
    }: StartAdversaryParameters = {}) => {
      const address = await fundAndBond(privateKey);
      const worker = await startWorker(
        await workerOptions(privateKey, maxConcurrency, parameters.logLevel ?? 'fatal'),
      );
      stops.push(() => worker.stop());
      await worker.ready();
      return { address, worker };
    };

    const startAdversary = async (
      kind: AdversaryKind,
      { privateKey = key(DEVNET_ROLES.adversary), maxConcurrency = 2 }: StartAdversaryParameters = {},
    ): Promise<DevnetAdversary> => {
      const address = await fundAndBond(privateKey);
      const events: AdversaryEvent[] = [];
      const claimed = { name: model.name, weightsHash: model.weightsHash, modelId: model.modelId };
      const bits = twinBits(kind);
      const runs =
        kind === 'substitute'
          ? await ensureSubstituteModel(join(dir, 'models'), preset, (p) =>
              ensureModel({ dir: join(dir, 'models'), preset: p }),
            )
          : bits !== undefined
            ? await ensureTwinModel(join(dir, 'models'), preset, bits)
            : model;
      const inner = createLlamaCppBackend({
        name: runs.name,
        gguf: runs.path,
        threads: parameters.threads ?? 1,
        maxConcurrency,
      });
      const backend = createAdversaryBackend(inner, kind, isSubstitute(kind) ? claimed : undefined, {
        devnet: true,
        onJob: (e) => events.push(e),
      });
      const worker = await startWorker(
        await workerOptions(privateKey, maxConcurrency, parameters.logLevel ?? 'fatal'),
        {
          backends: [{ backend, maxConcurrency }],
        },
      );
      stops.push(() => worker.stop());
      await worker.ready();
      const adversary = { address, kind, worker, events };
      adversaries.push(adversary);
      return adversary;
    };

    const startImageAdversary = async (
      kind: ImageAdversaryKind,
      { privateKey = key(DEVNET_ROLES.adversary), maxConcurrency = 1 }: StartAdversaryParameters = {},
    ): Promise<DevnetAdversary> => {
      const address = await fundAndBond(privateKey);
      const claimed = {
        name: imageModel.name,
        weightsHash: imageModel.weightsHash,
        modelId: imageModel.modelId,
      };
      const runs =
        kind === 'image-substitute' ? await ensureSubstituteImageModel(join(dir, 'models')) : imageModel.dir;
      const image = createImageAdversaryBackend(
        createDiffusionBackend({ modelDir: runs, threads: 1 }),
        kind,
        {
          devnet: true,
          claimed,
        },
      );
      const worker = await startWorker(
        await workerOptions(privateKey, maxConcurrency, parameters.logLevel ?? 'fatal'),
        { backends: [{ image, maxConcurrency }] },
      );
      stops.push(() => worker.stop());
      await worker.ready();
      const adversary = { address, kind, worker, events: [] };
      adversaries.push(adversary);
      return adversary;
    };

    const adversaryWorker = workerAdversary
      ? await progress.step(
          `Starting the adversary worker (${workerAdversary}: ${ADVERSARY_LIES[workerAdversary]})`,
          () =>
            isImageAdversary(workerAdversary)
              ? startImageAdversary(workerAdversary)
              : startAdversary(workerAdversary),
        )
      : undefined;
    if (adversaryKind === 'sybil-scorer')
      await progress.step(
        'Starting a second honest worker (an independent scorer to outvote the sybil)',
        () => startHonestWorker(),
      );

    const apiKey = await progress.step('Creating the user’s API key', () =>
      createApiKey(gateway.url, gateway.gateway, deployment.chainId, key(DEVNET_ROLES.payer)),
    );

    if (validatorCount > 0 && parameters.io) {
      const io = parameters.io;
      const honest = privateKeyToAccount(key(DEVNET_ROLES.worker)).address;
      const watcher: SlashWatcher = watchSlashes({
        client: publicClient,
        grid: deployment.grid,
        fromBlock: BigInt(deployment.deployBlock),
        names: (a) =>
          a === honest
            ? 'the honest worker'
            : a === gatewayAddress
              ? adversaryKind === 'dishonest-gateway'
                ? 'the dishonest gateway'
                : 'the gateway'
              : adversaries.find((x) => x.address === a)?.kind,
        write: (line) => io.stdout.write(`${line}\n`),
      });
      stops.push(() => watcher.stop());
    }

    const trafficSetting = parameters.traffic ?? adversaryKind !== undefined;
    let traffic: Traffic | undefined;
    if (trafficSetting !== false) {
      const io = parameters.io;
      // What the gateway stops itself never reaches the chain: the devnet says so from the answers.
      const imageAdversary = workerAdversary !== undefined && isImageAdversary(workerAdversary);
      const gatewayWatch =
        adversaryWorker && io && !imageAdversary
          ? watchGateway({
              adversary: adversaryWorker as DevnetAdversary & { kind: AdversaryKind },
              write: (line) => io.stdout.write(`${line}\n`),
            })
          : undefined;
      traffic = startTraffic({
        gatewayUrl: gateway.url,
        apiKey,
        model: model.name,
        // An image adversary gets image jobs (and the honest worker some of them).
        ...(imageAdversary ? { image: { model: imageModel.name } } : {}),
        pin: adversaryWorker ? [adversaryWorker.address] : [],
        // near copies show over long outputs (validator README, detection curve)
        ...(workerAdversary?.startsWith('twin-') ? { maxTokens: 300 } : {}),
        intervalMs: typeof trafficSetting === 'number' ? trafficSetting : 15_000,
        onResponse: gatewayWatch?.onResponse,
      });
      stops.push(() => traffic!.stop());
    }

    const info: DevnetInfo = {
      rpcUrl,
      chainId: deployment.chainId,
      contracts: { grid: deployment.grid, token: deployment.token },
      deployBlock: deployment.deployBlock,
      gatewayUrl: gateway.url,
      workerUrl: gateway.workerUrl,
      dashboardUrl: `${gateway.url}/`,
      apiKey,
      model: {
        name: model.name,
        modelId: model.modelId,
        weightsHash: model.weightsHash,
        path: model.path,
        parameterCount: model.parameterCount,
      },
      imageModel: { name: imageModel.name, modelId: imageModel.modelId, weightsHash: imageModel.weightsHash },
      accounts: {
        note: "anvil's public test keys: never use them for real funds",
        owner: privateKeyToAccount(key(DEVNET_ROLES.owner)).address,
        gateway: gatewayAddress,
        worker: privateKeyToAccount(key(DEVNET_ROLES.worker)).address,
        payer: privateKeyToAccount(key(DEVNET_ROLES.payer)).address,
      },
      validators: validatorAddresses,
      ...(adversaryWorker
        ? { adversary: { address: adversaryWorker.address, kind: adversaryWorker.kind } }
        : adversaryKind === 'dishonest-gateway'
          ? { adversary: { address: gatewayAddress, kind: adversaryKind } }
          : {}),
      ...(tee
        ? {
            confidential: {
              note: SIMULATED_TEE_NOTE,
              simulated: true as const,
              anchorsFile: tee.anchorsFile,
              rootFile: tee.rootFile,
              confidentialPremiumBps: deployment.params.confidentialPremiumBps,
            },
          }
        : {}),
    };
    const infoPath = join(dir, 'devnet.json');
    await writeFile(infoPath, `${JSON.stringify(info, null, 2)}\n`);
    return {
      ...info,
      deployment,
      gateway,
      validatorNodes,
      auditConfig: deployment.params.audit!,
      adversaryWorker,
      startAdversary,
      startImageAdversary,
      startHonestWorker,
      dishonestGateway,
      traffic,
      infoPath,
      stop: stopAll,
    };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

/** `<devDir>/tokenizers` holding a copy of the model's tokenizer file: the gateway's `tokenizers.dir`. */
async function tokenizersDirFor(devDir: string, tokenizerPath: string): Promise<string> {
  const dir = join(devDir, 'tokenizers');
  await mkdir(dir, { recursive: true });
  await copyFile(tokenizerPath, join(dir, basename(tokenizerPath)));
  return dir;
}

/** What each adversary does, in a few words (the start-up line). */
export const ADVERSARY_LIES: Record<DevnetAdversaryKind, string> = {
  'image-fewer-steps': 'runs half the denoising steps and pads its trajectory to the count it bills',
  'image-other-seed': 'runs another seed than the job asked for',
  'image-substitute': 'runs another image model and claims the registered one',
  'image-random': 'delivers a random image instead of its trajectory’s',
  substitute: 'runs a smaller model and claims the registered one',
  truncate: 'cuts its answers in half and claims they ended',
  fabricate: 'returns random words without running the model',
  inflate: 'bills more tokens than it generated',
  'text-injector': 'signs honest tokens but slips a scam link into the text it sends',
  'prompt-overbiller': 'bills a prompt 51 times longer than the one it ran',
  'twin-4bit': 'runs the registered model re-quantized to 4 bits and claims the original',
  'twin-5bit': 'runs the registered model re-quantized to 5 bits and claims the original',
  'twin-6bit': 'runs the registered model re-quantized to 6 bits and claims the original',
  'system-prompt-dropper': 'runs chat jobs without their system message and commits the full prompt',
  'sybil-scorer': "serves honestly but lies when asked to score another worker's output",
  'dishonest-gateway':
    'alters the audit evidence it serves validators (params, input, pricing) to get the worker slashed',
};

const erc20TransferAbi = [
  {
    type: 'function',
    name: 'transfer',
    stateMutability: 'nonpayable',
    inputs: [
      { name: 'to', type: 'address' },
      { name: 'amount', type: 'uint256' },
    ],
    outputs: [{ type: 'bool' }],
  },
] as const;

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Signs the gateway's API-key message with the payer's key and asks the gateway for a key. */
export async function createApiKey(
  gatewayUrl: string,
  gateway: Address,
  chainId: number,
  payerKey: Hex,
): Promise<string> {
  const payer = privateKeyToAccount(payerKey);
  const message = apiKeyMessage({
    gateway,
    chainId,
    payer: payer.address,
    name: 'devnet',
    nonce: `devnet-${Date.now()}`,
    expires: new Date(Date.now() + 10 * 60_000),
  });
  const signature = await payer.signMessage({ message });
  const res = await fetch(`${gatewayUrl}/v1/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ payer: payer.address, message, signature }),
  });
  const body = (await res.json()) as { key?: string; error?: { message: string } };
  if (!res.ok || !body.key)
    throw new Error(`the gateway refused the API key request: ${body.error?.message ?? res.status}`);
  return body.key;
}
