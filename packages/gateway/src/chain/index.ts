import {
  ChainError,
  createGridClients,
  type GetModelReturnType,
  getModel,
  getNextReceiptSeq,
  gridAbi,
  listModels,
  type SettleBatchReturnType,
  settleBatch,
  toChainError,
} from '@aipg/chain';
import { type Address, getAddress, type Hex, zeroAddress } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { getChainId, readContract } from 'viem/actions';
import type { Common } from '../common.ts';
import { GatewayError } from '../errors.ts';

/** A registered model as the registry holds it; `tokenizerHash` names the tokenizer file it is rendered with. */
export type OnchainModel = GetModelReturnType;

export type PayerFunds = {
  /** Escrow balance (still counting a requested withdrawal until it is withdrawn). */
  balance: bigint;
  withdrawRequested: bigint;
  /** What the payer approved THIS gateway to debit. */
  allowance: bigint;
};

type CacheEntry<T> = { value: Promise<T>; expires: number };

/**
 * A read cache where concurrent misses share one RPC call and failures are not kept. Stale while
 * revalidating, with bounded staleness: once a value has expired, the last one read (if younger than
 * `maxStaleMs`) is answered at once while a single background read refreshes it, so requests never wait
 * on the RPC for data they already had, and an RPC outage serves them from the cache until the data is
 * `maxStaleMs` old (then the read's error stands: 503). `onStale` hears each refresh that failed.
 */
export function createCache<K, V>(
  ttlMs: () => number,
  maxStaleMs: () => number,
  onStale?: (key: K, error: unknown) => void,
) {
  const entries = new Map<K, CacheEntry<V>>();
  const last = new Map<K, { value: V; at: number }>();
  const refreshing = new Set<K>();
  /**
   * Reads `key`. In the foreground the read is shared at once by concurrent misses; in the background
   * (a refresh while a stale value is answered) it replaces the entry only once it has succeeded, so a
   * failing refresh is never handed to a request.
   */
  function load(key: K, read: () => Promise<V>, background = false): Promise<V> {
    const value = read().then((v) => {
      last.set(key, { value: v, at: Date.now() });
      if (background) entries.set(key, { value: Promise.resolve(v), expires: Date.now() + ttlMs() });
      return v;
    });
    if (background) return value;
    entries.set(key, { value, expires: Date.now() + ttlMs() });
    value.catch(() => {
      if (entries.get(key)?.value === value) entries.delete(key);
    });
    return value;
  }
  return {
    /**
     * The value for `key`. `fresh` (or a cache time of 0): read now, and fall back to the last value
     * (within `maxStaleMs`) only if the read fails.
     */
    get(key: K, read: () => Promise<V>, { fresh = false }: { fresh?: boolean } = {}): Promise<V> {
      const now = Date.now();
      const hit = entries.get(key);
      if (!fresh && hit && hit.expires > now) return hit.value;
      const known = last.get(key);
      if (fresh || ttlMs() === 0) {
        const value = !fresh && hit && hit.expires > now ? hit.value : load(key, read);
        return value.catch((error: unknown) => {
          const k = last.get(key);
          if (!k || Date.now() - k.at > maxStaleMs()) throw error;
          onStale?.(key, error);
          return k.value;
        });
      }
      if (known && now - known.at <= maxStaleMs()) {
        if (!refreshing.has(key)) {
          refreshing.add(key);
          load(key, read, true)
            .catch((error: unknown) => onStale?.(key, error))
            .finally(() => refreshing.delete(key));
        }
        return Promise.resolve(known.value);
      }
      return load(key, read);
    },
    delete(key: K) {
      entries.delete(key);
      last.delete(key);
    },
    clear() {
      entries.clear();
      last.clear();
    },
  };
}

/** A chain failure as the API reports it: RPC down is 503 `chain_unavailable`. */
export function chainFailure(error: unknown, action: string): GatewayError {
  const e = toChainError(error, action);
  return new GatewayError('chain_unavailable', `the chain could not be read (${action}); try again shortly`, {
    cause: e,
    retryable: true,
  });
}

export type Chain = Awaited<ReturnType<typeof createChain>>;

/**
 * Every chain read and write of the gateway, through viem and `gridAbi`. Reads that requests depend on
 * are cached briefly (`chain.balanceCacheMs`, `chain.registryCacheMs`); nothing scans the chain per request.
 */
export async function createChain({ common }: { common: Pick<Common, 'options' | 'logger'> }) {
  const { options, logger } = common;
  const account = privateKeyToAccount(options.privateKey);
  const probe = createGridClients({ rpcUrl: options.rpcUrls, chainId: options.chainId ?? 1 });
  let chainId: number;
  try {
    chainId = await getChainId(probe.publicClient);
  } catch (error) {
    throw toChainError(error, 'read chain id');
  }
  if (options.chainId !== undefined && options.chainId !== chainId) {
    throw new ChainError(`the RPC serves chain ${chainId}, expected ${options.chainId}`, {
      code: 'WRONG_CHAIN',
    });
  }
  const { publicClient, walletClient } = createGridClients({ rpcUrl: options.rpcUrls, chainId, account });
  const grid = options.grid;
  // Typed reads of the Grid (viem checks each function name and its arguments against the ABI).
  const c = { address: grid, abi: gridAbi } as const;

  // Fail fast on a wrong address: the diamond must answer a Grid call.
  try {
    await readContract(publicClient, { ...c, functionName: 'confidentialPremiumBps' });
  } catch (error) {
    throw toChainError(error, `reach the Grid at ${grid}`);
  }

  const registryTtl = () => options.chain.registryCacheMs;
  const balanceTtl = () => options.chain.balanceCacheMs;
  const maxStale = () => options.chain.maxStaleMs;
  let staleWarnedAt = 0;
  const onStale = (what: string) => (_key: unknown, error: unknown) => {
    // One line a minute at most while the RPC is down: requests are served from the cache meanwhile.
    if (Date.now() - staleWarnedAt < 60_000) return;
    staleWarnedAt = Date.now();
    logger.warn({ msg: 'chain read failed: serving cached values', what, error });
  };
  const modelCache = createCache<'all', OnchainModel[]>(registryTtl, maxStale, onStale('models'));
  const premiumCache = createCache<'premium', number>(registryTtl, maxStale, onStale('premium'));
  const bondCache = createCache<Address, bigint>(registryTtl, maxStale, onStale('bonds'));
  const activeWorkerCache = createCache<Address, boolean>(registryTtl, maxStale, onStale('bonds'));
  const fundsCache = createCache<Address, PayerFunds>(balanceTtl, maxStale, onStale('payer funds'));

  logger.info({ msg: 'chain ready', chain_id: chainId, grid, gateway: account.address });

  return {
    chainId,
    grid,
    gateway: account.address as Address,
    publicClient,
    /** Every registered model (active or not), cached. */
    models(): Promise<OnchainModel[]> {
      return modelCache.get('all', () => listModels(publicClient, { grid }));
    },
    /** Looks a model up by registry name or 0x id among the active models (text and image). */
    async findModel(nameOrId: string): Promise<OnchainModel | undefined> {
      const models = (await this.models()).filter((m) => m.active);
      if (/^0x[0-9a-fA-F]{64}$/.test(nameOrId))
        return models.find((m) => m.id.toLowerCase() === nameOrId.toLowerCase());
      // A name registered with two weights files: the newest registration wins.
      return models.filter((m) => m.name === nameOrId).at(-1);
    },
    /** Fresh (uncached) read of one model, for worker logins. */
    async model(modelId: Hex): Promise<OnchainModel | undefined> {
      try {
        return await getModel(publicClient, { grid, modelId });
      } catch (error) {
        if (error instanceof ChainError && error.errorName === 'UnknownModel') return undefined;
        throw error;
      }
    },
    confidentialPremiumBps(): Promise<number> {
      return premiumCache.get('premium', async () =>
        Number(await readContract(publicClient, { ...c, functionName: 'confidentialPremiumBps' })),
      );
    },
    /** The bond owner behind an operator key; undefined when it has none. Uncached (logins). */
    async workerOwner(operator: Address): Promise<Address | undefined> {
      const owner = await readContract(publicClient, { ...c, functionName: 'workerOf', args: [operator] });
      return owner === zeroAddress ? undefined : getAddress(owner);
    },
    /** `isActiveWorker`; `fresh` skips the cache (logins). */
    isActiveWorker(owner: Address, fresh = false): Promise<boolean> {
      if (fresh) activeWorkerCache.delete(owner);
      return activeWorkerCache.get(owner, () =>
        readContract(publicClient, { ...c, functionName: 'isActiveWorker', args: [owner] }),
      );
    },
    /** Active worker bond amount (routing's stake factor), cached. */
    workerBond(owner: Address): Promise<bigint> {
      return bondCache.get(
        owner,
        async () =>
          (await readContract(publicClient, { ...c, functionName: 'workerBond', args: [owner] })).amount,
      );
    },
    async validatorOwner(operator: Address): Promise<Address | undefined> {
      const owner = await readContract(publicClient, { ...c, functionName: 'validatorOf', args: [operator] });
      return owner === zeroAddress ? undefined : getAddress(owner);
    },
    isActiveValidator(owner: Address): Promise<boolean> {
      return readContract(publicClient, { ...c, functionName: 'isActiveValidator', args: [owner] });
    },
    /**
     * Deposit and this gateway's allowance for `payer`, cached for `chain.balanceCacheMs` (then served
     * stale while refreshed, up to `chain.maxStaleMs`). `fresh`: read now (before refusing a request
     * for funds: a deposit made a moment ago counts), the cached value only if the RPC is down.
     */
    payerFunds(payer: Address, { fresh = false }: { fresh?: boolean } = {}): Promise<PayerFunds> {
      return fundsCache.get(
        payer,
        async () => {
          const [deposit, allowance] = await Promise.all([
            readContract(publicClient, { ...c, functionName: 'depositOf', args: [payer] }),
            readContract(publicClient, {
              ...c,
              functionName: 'gatewayAllowance',
              args: [payer, account.address],
            }),
          ]);
          return { balance: deposit.balance, withdrawRequested: deposit.withdrawRequested, allowance };
        },
        { fresh },
      );
    },
    /** Forget cached funds (after a settlement moved them). */
    invalidatePayers(payers: readonly Address[]) {
      for (const p of payers) fundsCache.delete(p);
    },
    isSettled(root: Hex): Promise<boolean> {
      return readContract(publicClient, { ...c, functionName: 'isSettled', args: [root] });
    },
    /** The receipt number this gateway's next batch must start at (uncached: settlement re-reads it each pass). */
    nextReceiptSeq(): Promise<bigint> {
      return getNextReceiptSeq(publicClient, { grid, gateway: account.address });
    },
    async blockNumber(): Promise<bigint> {
      return publicClient.getBlockNumber();
    },
    /** Sends `settle` as the gateway and waits for it to be mined. Throws `ChainError` (reverts decoded). */
    settle(p: {
      root: Hex;
      firstSeq: bigint;
      receiptCount: number;
      debits: { payer: Address; amount: bigint }[];
      credits: { worker: Address; gross: bigint }[];
    }): Promise<SettleBatchReturnType> {
      if (!walletClient) throw new ChainError('no gateway account', { code: 'RPC_ERROR' });
      return settleBatch(walletClient, { grid, ...p });
    },
  };
}
