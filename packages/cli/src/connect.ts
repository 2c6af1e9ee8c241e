import { readFile } from 'node:fs/promises';
import {
  ChainError,
  createGridClients,
  type Deployment,
  decryptKeystore,
  type GridWalletClient,
  gridAbi,
  readDeployment,
  toChainError,
} from '@aipg/chain';
import {
  type Account,
  type Address,
  type Chain,
  createPublicClient,
  http,
  type PublicClient,
  type Transport,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { getBytecode, getChainId, readContract } from 'viem/actions';
import { type CliConfig, DEFAULT_RPC_URL, type KeySource } from './config.ts';
import { CliError } from './errors.ts';

export type Connection = {
  rpcUrl: string;
  chainId: number;
  grid: Address;
  token: Address;
  /** The deployment file, unless `--grid` was given. */
  deployment: Deployment | undefined;
  publicClient: PublicClient<Transport, Chain>;
};

export type SignerConnection = Connection & {
  account: Account;
  walletClient: GridWalletClient;
};

/** Loads the signing key: a keystore (flag or env) or AIPG_PRIVATE_KEY. The key is never printed. */
export async function loadAccount(key: KeySource | undefined): Promise<Account> {
  if (!key) {
    throw new CliError(
      'no key to sign with',
      'CONFIG',
      'set AIPG_PRIVATE_KEY or pass --keystore <file> (with AIPG_KEYSTORE_PASSWORD)',
    );
  }
  let privateKey: string;
  if (key.kind === 'keystore') {
    if (key.password === undefined) {
      throw new CliError('set AIPG_KEYSTORE_PASSWORD to decrypt the keystore', 'CONFIG');
    }
    let json: string;
    try {
      json = await readFile(key.path, 'utf8');
    } catch (cause) {
      const missing = (cause as NodeJS.ErrnoException).code === 'ENOENT';
      throw new CliError(
        missing ? `keystore ${key.path} not found` : `cannot read keystore ${key.path}`,
        'CONFIG',
      );
    }
    privateKey = await decryptKeystore(json, key.password);
  } else {
    privateKey = key.privateKey.startsWith('0x') ? key.privateKey : `0x${key.privateKey}`;
    if (!/^0x[0-9a-fA-F]{64}$/.test(privateKey)) {
      throw new CliError(
        'AIPG_PRIVATE_KEY is malformed',
        'CONFIG',
        'expected 0x followed by 64 hex characters',
      );
    }
  }
  try {
    return privateKeyToAccount(privateKey as `0x${string}`);
  } catch {
    throw new CliError('the private key is not a valid secp256k1 key', 'CONFIG');
  }
}

async function loadDeployment(config: CliConfig): Promise<Deployment | undefined> {
  if (config.grid) return undefined;
  try {
    return await readDeployment(config.deploymentPath);
  } catch (error) {
    if (error instanceof ChainError && /not found$/.test(error.shortMessage)) {
      throw new CliError(
        `no deployment file at ${config.deploymentPath}`,
        'CONFIG',
        'start a local chain with `aipg chain up`, or pass --deployment <file> or --grid <address>',
      );
    }
    throw error;
  }
}

/** Finds the Grid and the chain: deployment file (or --grid), RPC, chain id check, code at the Grid. */
export async function connect(config: CliConfig): Promise<Connection> {
  const deployment = await loadDeployment(config);
  const rpcUrl = config.rpcUrl ?? deployment?.rpcUrl ?? DEFAULT_RPC_URL;
  const probe = createPublicClient({ transport: http(rpcUrl, { retryCount: 0 }) });
  const chainId = await getChainId(probe).catch((error: unknown) => {
    const chainError = toChainError(error, 'connect');
    if (chainError.code === 'RPC_UNREACHABLE' && !config.rpcUrl && deployment?.rpcUrl) {
      throw new CliError(
        `cannot reach the chain of ${config.deploymentPath} at ${rpcUrl}`,
        'CONFIG',
        'is `aipg chain up` still running? or pass --rpc-url',
      );
    }
    throw chainError;
  });
  if (deployment && deployment.chainId !== chainId) {
    throw new ChainError(
      `wrong chain: the RPC at ${rpcUrl} is chain ${chainId}, but ${config.deploymentPath} is for chain ${deployment.chainId}`,
      { code: 'WRONG_CHAIN' },
    );
  }
  const grid = config.grid ?? (deployment as Deployment).grid;
  const { publicClient } = createGridClients({ rpcUrl, chainId });
  const code = await getBytecode(publicClient, { address: grid }).catch((error: unknown) => {
    throw toChainError(error, 'connect');
  });
  if (!code || code === '0x') {
    throw new CliError(
      `no Grid contract at ${grid} on chain ${chainId}`,
      'CONFIG',
      deployment
        ? `${config.deploymentPath} is stale: was the chain restarted? run \`aipg chain up\` again`
        : undefined,
    );
  }
  const token =
    deployment?.token ??
    (await readContract(publicClient, { address: grid, abi: gridAbi, functionName: 'token' }).catch(
      (error: unknown) => {
        throw toChainError(error, 'connect');
      },
    ));
  return { rpcUrl, chainId, grid, token, deployment, publicClient };
}

/** `connect` plus the signing account (loaded first, so a bad key fails before any RPC call). */
export async function connectSigner(config: CliConfig): Promise<SignerConnection> {
  const account = await loadAccount(config.key);
  const connection = await connect(config);
  const { walletClient } = createGridClients({
    rpcUrl: connection.rpcUrl,
    chainId: connection.chainId,
    account,
  });
  return { ...connection, account, walletClient: walletClient! };
}
