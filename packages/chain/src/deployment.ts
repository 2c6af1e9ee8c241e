import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { type Address, getAddress, isAddress } from 'viem';
import { ChainError } from './errors.ts';

export type Network = 'devnet' | 'base';

/** IAudit.AuditConfig: random audits of settled receipts (see contracts/README.md, "Audits"). */
export type AuditParams = {
  /** Share of receipts audited by default, in bps (10,000 = every receipt). */
  auditRateBps: number;
  /** Validators assigned to each audited receipt (k). */
  validatorsPerAudit: number;
  /** Revealed votes needed for a verdict: a majority of the seats (`quorum * 2 > k`), at most k. */
  quorum: number;
  /** Seconds from `fixRandomness` to the commit deadline (seated validators commit hidden votes). */
  commitWindow: number;
  /** Seconds after the commit deadline to reveal; `finalize` runs after that. */
  revealWindow: number;
  /** Blocks after the settlement block whose randomness is used. */
  randomnessDelay: number;
  /** AIPG wei taken from a worker's bond on a FAIL verdict. */
  workerSlashAmount: bigint;
  /** AIPG wei taken from a validator who voted against the verdict. */
  falseAttestationSlash: bigint;
  /** Share of a worker slash credited to the FAIL voters, in bps (the rest goes to the treasury). */
  finderShareBps: number;
  /** AIPG wei paid from the validator pool to each PASS voter of a PASS verdict. */
  passReward: bigint;
};

/**
 * IAudit.AuditLimits: bounds every audit config must respect, fixed at deployment for the diamond's
 * lifetime (no later config can slash more or seat fewer validators than these allow).
 */
export type AuditLimits = {
  /** `workerSlashAmount <= workerMinimumBond * maxWorkerSlashBps / 10,000`. */
  maxWorkerSlashBps: number;
  /** `falseAttestationSlash <= validatorMinimumBond * maxFalseAttestationSlashBps / 10,000`. */
  maxFalseAttestationSlashBps: number;
  maxFinderShareBps: number;
  minValidatorsPerAudit: number;
  minQuorum: number;
  /** Seconds. */
  minCommitWindow: number;
  minRevealWindow: number;
};

/** What DiamondInit.init stored (IGridInit.InitArgs without the token, treasury and randomness source). */
export type GridParams = {
  workerMinimumBond: bigint;
  validatorMinimumBond: bigint;
  /** Seconds. */
  unbondDelay: number;
  depositWithdrawDelay: number;
  /** Announce-to-execute delay of upgrades and rule changes (at least each exit delay + the reaction margin). */
  cutDelay: number;
  /** How long a matured announcement stays executable (0 < changeWindow <= cutDelay). */
  changeWindow: number;
  workerBps: number;
  validatorBps: number;
  protocolBps: number;
  confidentialPremiumBps: number;
  /** The audit config at deployment (absent in deployment files written before audits existed). */
  audit?: AuditParams | undefined;
  /** The audit limits fixed at deployment. */
  auditLimits: AuditLimits;
};

/** Overrides of a network's default parameters: any field, and any field of `audit` and `auditLimits`. */
export type GridParamsOverrides = Partial<Omit<GridParams, 'audit' | 'auditLimits'>> & {
  audit?: Partial<AuditParams>;
  auditLimits?: Partial<AuditLimits>;
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
  /** The diamond's owner: on Base the GridTimelock (see `timelock`). */
  owner: Address;
  treasury: Address;
  /**
   * The GridTimelock that owns the diamond on Base: every owner action is scheduled there and runs only
   * after its delay, which exceeds every exit delay. Absent on a devnet (and in older deployment files).
   */
  timelock?: Address | undefined;
  /** Facet name → implementation address. */
  facets: Record<string, Address>;
  params: GridParams;
  /** The audit randomness source (FutureBlockRandomness on a devnet); absent in older deployment files. */
  randomnessSource?: Address | undefined;
  /** Where a local chain serves its RPC (written by `aipg chain up`; absent for public networks). */
  rpcUrl?: string | undefined;
};

const bigintParams = ['workerMinimumBond', 'validatorMinimumBond'] as const;
const numberParams = [
  'unbondDelay',
  'depositWithdrawDelay',
  'cutDelay',
  'changeWindow',
  'workerBps',
  'validatorBps',
  'protocolBps',
  'confidentialPremiumBps',
] as const;
const auditBigintParams = ['workerSlashAmount', 'falseAttestationSlash', 'passReward'] as const;
const auditNumberParams = [
  'auditRateBps',
  'validatorsPerAudit',
  'quorum',
  'commitWindow',
  'revealWindow',
  'randomnessDelay',
  'finderShareBps',
] as const;
const auditLimitParams = [
  'maxWorkerSlashBps',
  'maxFalseAttestationSlashBps',
  'maxFinderShareBps',
  'minValidatorsPerAudit',
  'minQuorum',
  'minCommitWindow',
  'minRevealWindow',
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
  if (paramsIn.audit !== undefined) {
    const a = paramsIn.audit;
    if (!a || typeof a !== 'object' || Array.isArray(a)) fail('params.audit is not an object');
    const auditIn = a as Record<string, unknown>;
    const audit = {} as AuditParams;
    for (const key of auditBigintParams) {
      const value = auditIn[key];
      if (typeof value !== 'string' || !/^\d+$/.test(value)) {
        fail(`params.audit.${key} is not a wei amount string`);
      }
      audit[key] = BigInt(value as string);
    }
    for (const key of auditNumberParams) audit[key] = integer(auditIn[key], `params.audit.${key}`);
    params.audit = audit;
  }
  const l = paramsIn.auditLimits;
  if (!l || typeof l !== 'object' || Array.isArray(l)) fail('params.auditLimits is not an object');
  const limitsIn = l as Record<string, unknown>;
  const auditLimits = {} as AuditLimits;
  for (const key of auditLimitParams) auditLimits[key] = integer(limitsIn[key], `params.auditLimits.${key}`);
  params.auditLimits = auditLimits;
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
    ...(o.randomnessSource !== undefined
      ? { randomnessSource: address(o.randomnessSource, 'randomnessSource') }
      : {}),
    ...(o.timelock !== undefined ? { timelock: address(o.timelock, 'timelock') } : {}),
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
