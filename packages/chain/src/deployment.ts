import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type Address, getAddress, isAddress } from 'viem';
import { ChainError } from './errors.ts';

export type Network = 'devnet' | 'base';

/** What DiamondInit.init stored (IGridInit.InitArgs without the token and treasury). */
export type GridParams = {
  workerMinimumBond: bigint;
  validatorMinimumBond: bigint;
  /** Seconds. */
  unbondDelay: number;
  depositWithdrawDelay: number;
  cutDelay: number;
  workerBps: number;
  validatorBps: number;
  protocolBps: number;
  confidentialPremiumBps: number;
};

/** One deployed Grid: what gateways, workers, validators and the CLI need to find it. */
export type Deployment = {
  network: Network;
  chainId: number;
  /** The GridDiamond: every facet is called at this address. */
  grid: Address;
  token: Address;
  /** Block of the diamond's deployment: where indexers start. */
  deployBlock: number;
  owner: Address;
  treasury: Address;
  /** Facet name → implementation address. */
  facets: Record<string, Address>;
  params: GridParams;
  /** Where a local chain serves its RPC (written by `aipg chain up`; absent for public networks). */
  rpcUrl?: string | undefined;
};

const bigintParams = ['workerMinimumBond', 'validatorMinimumBond'] as const;
const numberParams = [
  'unbondDelay',
  'depositWithdrawDelay',
  'cutDelay',
  'workerBps',
  'validatorBps',
  'protocolBps',
  'confidentialPremiumBps',
] as const;

/** The deployment as JSON (amounts as decimal wei strings). */
export function serializeDeployment(d: Deployment): string {
  return `${JSON.stringify(d, (_key, value) => (typeof value === 'bigint' ? value.toString() : value), 2)}\n`;
}

/** Validates parsed JSON as a deployment; `source` names it in errors (a path). */
export function parseDeployment(json: unknown, source = 'deployment'): Deployment {
  const fail = (reason: string): never => {
    throw new ChainError(`invalid deployment file ${source}: ${reason}`, { code: 'DEPLOYMENT_FILE' });
  };
  if (!json || typeof json !== 'object' || Array.isArray(json)) fail('not a JSON object');
  const o = json as Record<string, unknown>;
  const address = (value: unknown, name: string): Address => {
    if (typeof value !== 'string' || !isAddress(value, { strict: false })) fail(`${name} is not an address`);
    return getAddress(value as string);
  };
  const integer = (value: unknown, name: string): number => {
    if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0)
      fail(`${name} is not a non-negative integer`);
    return value as number;
  };
  if (o.network !== 'devnet' && o.network !== 'base') fail('network must be "devnet" or "base"');
  const chainId = integer(o.chainId, 'chainId');
  if (chainId === 0) fail('chainId is 0');
  const facetsIn = o.facets;
  if (!facetsIn || typeof facetsIn !== 'object' || Array.isArray(facetsIn)) fail('facets is not an object');
  const facets: Record<string, Address> = {};
  for (const [name, value] of Object.entries(facetsIn as Record<string, unknown>)) {
    facets[name] = address(value, `facets.${name}`);
  }
  const p = o.params;
  if (!p || typeof p !== 'object' || Array.isArray(p)) fail('params is not an object');
  const paramsIn = p as Record<string, unknown>;
  const params = {} as GridParams;
  for (const key of bigintParams) {
    const value = paramsIn[key];
    if (typeof value !== 'string' || !/^\d+$/.test(value)) fail(`params.${key} is not a wei amount string`);
    params[key] = BigInt(value as string);
  }
  for (const key of numberParams) params[key] = integer(paramsIn[key], `params.${key}`);
  if (o.rpcUrl !== undefined && (typeof o.rpcUrl !== 'string' || !/^(https?|wss?):\/\/\S+$/.test(o.rpcUrl))) {
    fail('rpcUrl is not an http(s) or ws(s) URL');
  }
  return {
    network: o.network as Network,
    chainId,
    grid: address(o.grid, 'grid'),
    token: address(o.token, 'token'),
    deployBlock: integer(o.deployBlock, 'deployBlock'),
    owner: address(o.owner, 'owner'),
    treasury: address(o.treasury, 'treasury'),
    facets,
    params,
    ...(typeof o.rpcUrl === 'string' ? { rpcUrl: o.rpcUrl } : {}),
  };
}

/** Writes the deployment as JSON (atomically: a reader never sees half a file). */
export async function writeDeployment(path: string, deployment: Deployment): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, serializeDeployment(deployment));
  await rename(tmp, path);
}

/** Reads and validates a deployment file; throws `ChainError` (`DEPLOYMENT_FILE`) with the reason. */
export async function readDeployment(path: string): Promise<Deployment> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (cause) {
    const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
    throw new ChainError(
      missing ? `deployment file ${path} not found` : `cannot read deployment file ${path}`,
      {
        code: 'DEPLOYMENT_FILE',
        cause,
      },
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (cause) {
    throw new ChainError(`invalid deployment file ${path}: not JSON`, { code: 'DEPLOYMENT_FILE', cause });
  }
  return parseDeployment(json, path);
}
