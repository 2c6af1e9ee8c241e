import {
  type Account,
  type Chain,
  type Client,
  createPublicClient,
  createWalletClient,
  defineChain,
  fallback,
  http,
  type PublicClient,
  publicActions,
  type Transport,
} from 'viem';

/** Any viem client: enough for the read actions (`getBond`, `listModels`, `getAccountStatus`). */
export type ReadClient = Client<Transport, Chain | undefined>;
/** A viem client with a chain and an account (a wallet client): needed by the write actions. */
export type WriteClient = Client<Transport, Chain, Account>;

// Defined here rather than imported from 'viem/chains', which loads every chain viem knows (~1 s of startup).
const knownChains: Record<number, string> = { 31337: 'Anvil', 8453: 'Base', 84532: 'Base Sepolia' };

/** A viem chain for `chainId` served at `rpcUrl` (named for anvil, Base and Base Sepolia). */
export function chainFor(chainId: number, rpcUrl: string): Chain {
  return defineChain({
    id: chainId,
    name: knownChains[chainId] ?? `chain ${chainId}`,
    nativeCurrency: { name: 'Ether', symbol: 'ETH', decimals: 18 },
    rpcUrls: { default: { http: [rpcUrl] } },
  });
}

export type CreateGridClientsParameters = {
  /**
   * The JSON-RPC endpoint, or several: each call goes to the first that answers (viem's `fallback`
   * transport), so one provider's outage does not stop reads or settlement.
   */
  rpcUrl: string | readonly string[];
  chainId: number;
  account?: Account | undefined;
  /** How often to poll for receipts and blocks (default 250 ms on a local chain, 2 s otherwise). */
  pollingInterval?: number;
};

export type CreateGridClientsReturnType = {
  publicClient: PublicClient<Transport, Chain>;
  /** Present when an account was given. It also carries the public actions. */
  walletClient: GridWalletClient | undefined;
};

function createWallet(parameters: {
  account: Account;
  chain: Chain;
  transport: Transport;
  pollingInterval: number;
}) {
  return createWalletClient(parameters).extend(publicActions);
}

/**
 * A wallet client that also has the public actions (read, wait for receipts). Inferred rather than
 * written as `WalletClient & PublicClient`: that intersection collapses to `never` under TypeScript 7,
 * which would silently switch off type checking wherever it is used.
 */
export type GridWalletClient = ReturnType<typeof createWallet>;

/** The clients the actions and `deployGrid` take, over HTTP. */
export function createGridClients({
  rpcUrl,
  chainId,
  account,
  pollingInterval,
}: CreateGridClientsParameters): CreateGridClientsReturnType {
  const urls = typeof rpcUrl === 'string' ? [rpcUrl] : [...rpcUrl];
  if (urls.length === 0) throw new RangeError('createGridClients: no RPC URL');
  const chain = chainFor(chainId, urls[0]!);
  const isLocal = (url: string) => /^https?:\/\/(127\.0\.0\.1|localhost|\[::1\])(:|\/|$)/.test(url);
  const local = urls.every(isLocal);
  const interval = pollingInterval ?? (local ? 250 : 2_000);
  const transports = urls.map((url) => http(url, { retryCount: isLocal(url) ? 0 : urls.length > 1 ? 1 : 3 }));
  const transport = transports.length === 1 ? transports[0]! : fallback(transports, { retryCount: 0 });
  const publicClient = createPublicClient({ chain, transport, pollingInterval: interval });
  const walletClient = account
    ? createWallet({ account, chain, transport, pollingInterval: interval })
    : undefined;
  return { publicClient, walletClient };
}
