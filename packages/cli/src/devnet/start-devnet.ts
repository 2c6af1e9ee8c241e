import { mkdir, rm, writeFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import {
  anvilTestAccounts,
  approveGateway,
  approveToken,
  bond,
  createGridClients,
  type Deployment,
  deposit,
  registerModel,
  startDevChain,
  writeDeployment,
} from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import {
  apiKeyMessage,
  createGatewayOptions,
  type StartGatewayReturnType,
  startGateway,
} from '@aipg/gateway';
import { ensureModel, type ModelPresetName } from '@aipg/inference';
import { createWorkerOptions, startWorker } from '@aipg/worker';
import { type Address, type Hex, maxUint256 } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { Io } from '../command.ts';
import { createProgress } from './progress.ts';

/**
 * Roles on the devnet, each one of anvil's PUBLIC test accounts (never for real funds):
 * 0 deploys and owns the Grid (and is its treasury), 1 is the gateway's settling key,
 * 2 the worker's bond owner and operator key, 3 the user who pays for requests.
 */
export const DEVNET_ROLES = { owner: 0, gateway: 1, worker: 2, payer: 3 } as const;

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
  accounts: {
    note: string;
    owner: Address;
    gateway: Address;
    worker: Address;
    payer: Address;
  };
};

export type StartDevnetReturnType = DevnetInfo & {
  deployment: Deployment;
  gateway: StartGatewayReturnType;
  /** Where devnet.json was written. */
  infoPath: string;
  /** Stops the worker (draining), the gateway (settling what waits), then anvil. */
  stop(): Promise<void>;
};

const key = (i: number) => anvilTestAccounts[i]!.privateKey as Hex;

/**
 * The whole network on one machine: anvil with the Grid deployed, the project's own model
 * generated and registered, a gateway on embedded PGlite, one llama.cpp worker bonded and
 * connected, and a funded user with deposit, approval and an API key.
 */
export async function startDevnet(parameters: StartDevnetParameters = {}): Promise<StartDevnetReturnType> {
  const dir = resolve(parameters.dir ?? '.aipg');
  const progress = createProgress(parameters.io);
  const logLevel = parameters.logLevel ?? 'warn';
  const stops: (() => Promise<void>)[] = [];
  const stopAll = async () => {
    for (const stop of stops.splice(0).reverse()) await stop().catch(() => {});
  };

  try {
    const devDir = join(dir, 'devnet');
    // A devnet chain starts empty, so its gateway database must too.
    await rm(devDir, { recursive: true, force: true });
    await mkdir(devDir, { recursive: true });

    const dev = await progress.step('Starting local chain (anvil) and deploying the Grid', () =>
      startDevChain({ port: parameters.rpcPort ?? 8545, silent: true }),
    );
    stops.push(() => dev.stop());
    const { deployment } = dev;
    const rpcUrl = dev.anvil.rpcUrl;
    const clients = (i: number) =>
      createGridClients({ rpcUrl, chainId: deployment.chainId, account: privateKeyToAccount(key(i)) })
        .walletClient!;
    const owner = clients(DEVNET_ROLES.owner);
    const workerWallet = clients(DEVNET_ROLES.worker);
    const payerWallet = clients(DEVNET_ROLES.payer);
    const gatewayAddress = privateKeyToAccount(key(DEVNET_ROLES.gateway)).address;
    await writeDeployment(join(dir, 'deployment.json'), { ...deployment, rpcUrl });

    const model = await progress.step('Generating the model and registering it on chain', async () => {
      const m = await ensureModel({ dir: join(dir, 'models'), preset: parameters.model ?? 'small' });
      const { modelId } = await registerModel(owner, {
        grid: deployment.grid,
        name: m.name,
        kind: 'text',
        weightsHash: m.weightsHash,
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

    await progress.step('Bonding the worker (1,000 AIPG) and funding the user', async () => {
      const amount = parseAipg('1000');
      await approveToken(workerWallet, { token: deployment.token, spender: deployment.grid, amount });
      await bond(workerWallet, { grid: deployment.grid, role: 'worker', amount });
      const funds = parameters.payerDeposit ?? parseAipg('1000');
      await approveToken(payerWallet, { token: deployment.token, spender: deployment.grid, amount: funds });
      await deposit(payerWallet, { grid: deployment.grid, amount: funds });
      await approveGateway(payerWallet, { grid: deployment.grid, gateway: gatewayAddress, cap: maxUint256 });
    });

    const gateway = await progress.step('Starting the gateway (embedded PGlite)', async () => {
      const options = createGatewayOptions(
        {
          port: parameters.port ?? 8080,
          host: '127.0.0.1',
          rpcUrl,
          grid: deployment.grid,
          chainId: deployment.chainId,
          'network.deployBlock': deployment.deployBlock,
          privateKey: key(DEVNET_ROLES.gateway),
          databaseDir: join(devDir, 'gateway-db'),
          logLevel,
          'settlement.intervalMs': parameters.settleIntervalMs ?? 5_000,
          ...parameters.gatewayOptions,
        },
        {},
      );
      return startGateway(options);
    });
    stops.push(() => gateway.stop());

    const worker = await progress.step(
      'Starting the worker (llama.cpp on CPU) and connecting it',
      async () => {
        const options = await createWorkerOptions(
          {
            network: 'devnet',
            gateway: gateway.workerUrl,
            rpc: rpcUrl,
            grid: deployment.grid,
            model: model.name,
            backend: 'llama-cpp',
            gguf: model.path,
            weightsHash: model.weightsHash,
            threads: parameters.threads ?? 1,
            maxConcurrency: parameters.maxConcurrency ?? 2,
            logLevel,
          },
          { AIPG_OPERATOR_KEY: key(DEVNET_ROLES.worker) },
        );
        const w = await startWorker(options);
        stops.push(() => w.stop());
        await w.ready();
        await waitFor(async () => {
          const res = await fetch(`${gateway.url}/v1/models`);
          const body = (await res.json()) as {
            data: { grid: { model_id: string; workers_online: number } }[];
          };
          return body.data.some((m) => m.grid.model_id === model.modelId && m.grid.workers_online > 0);
        }, 30_000);
        return w;
      },
    );
    void worker;

    const apiKey = await progress.step('Creating the user’s API key', () =>
      createApiKey(gateway.url, gateway.gateway, deployment.chainId, key(DEVNET_ROLES.payer)),
    );

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
      accounts: {
        note: "anvil's public test keys: never use them for real funds",
        owner: privateKeyToAccount(key(DEVNET_ROLES.owner)).address,
        gateway: gatewayAddress,
        worker: privateKeyToAccount(key(DEVNET_ROLES.worker)).address,
        payer: privateKeyToAccount(key(DEVNET_ROLES.payer)).address,
      },
    };
    const infoPath = join(dir, 'devnet.json');
    await writeFile(infoPath, `${JSON.stringify(info, null, 2)}\n`);
    return { ...info, deployment, gateway, infoPath, stop: stopAll };
  } catch (error) {
    await stopAll();
    throw error;
  }
}

async function waitFor(check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check().catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

/** Signs the gateway's API-key message with the payer's key and asks the gateway for a key. */
async function createApiKey(
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
