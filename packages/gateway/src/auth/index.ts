import { NetworkError, type PayerAuthenticator } from '@aipg/indexer';
import { type Address, concat, type Hex, keccak256, recoverMessageAddress, toHex } from 'viem';
import type { Chain } from '../chain/index.ts';
import type { Common } from '../common.ts';
import { GatewayError } from '../errors.ts';
import type { ApiKeyRecord, Storage } from '../storage/index.ts';
import {
  apiKeyMessage,
  bearerToken,
  deriveApiKey,
  hashApiKey,
  looksLikeApiKey,
  newKeyId,
  parseApiKeyMessage,
} from './keys.ts';
import { createRateLimiter, type RateLimiter, takeAll } from './rate-limit.ts';

export type Auth = ReturnType<typeof createAuth>;

/** Keys remembered at once, at most (the cache starts over past it). */
const KEY_CACHE_MAX = 100_000;

const chainBudgets = new WeakMap<object, RateLimiter>();

/**
 * The gateway-wide budget of chain reads that unauthenticated requests may cause on a cache miss
 * (`rateLimit.anonymousChainReadsPerMinute`): one bucket per gateway (per `common`), shared by key
 * creation and audit authentication. `spendAnonymousChainRead` takes from it or throws 429.
 */
export function anonymousChainBudget(common: Pick<Common, 'options'>): RateLimiter {
  let budget = chainBudgets.get(common);
  if (!budget) {
    const perMinute = common.options.rateLimit.anonymousChainReadsPerMinute;
    budget = createRateLimiter({ perMinute, burst: Math.max(1, Math.min(10, perMinute)) });
    chainBudgets.set(common, budget);
  }
  return budget;
}

export function spendAnonymousChainRead(common: Pick<Common, 'options'>, what: string): void {
  const rl = anonymousChainBudget(common).take('chain');
  if (!rl.ok) {
    const seconds = String(Math.max(1, Math.ceil(rl.retryAfterMs / 1000)));
    throw new GatewayError(
      'rate_limit_exceeded',
      `too many unauthenticated requests need a chain read (${what}) right now; retry after ${seconds} s`,
      { headers: { 'retry-after': seconds } },
    );
  }
}

/**
 * Who is calling, and how often they may: API keys (created from a payer's signed key message,
 * resolved from a bearer token, revoked), and the rate limits per key, per payer and for unauthenticated
 * traffic. What a caller may spend is billing's (billing/index.ts).
 */
export function createAuth({ common, storage, chain }: { common: Common; storage: Storage; chain: Chain }) {
  const { options } = common;
  const keySecret: Hex =
    options.keys.secret ?? keccak256(concat([options.privateKey, toHex('aipg-gateway-api-keys')]));
  const limiter = createRateLimiter({
    perMinute: options.rateLimit.requestsPerMinute,
    burst: options.rateLimit.burst,
  });
  const anonymousLimiter = createRateLimiter({
    perMinute: options.rateLimit.anonymousRequestsPerMinute,
    burst: Math.max(1, Math.min(10, options.rateLimit.anonymousRequestsPerMinute)),
  });
  const keys = createKeyResolver({ keys: storage.keys, cacheMs: options.keys.cacheMs });
  // A payer can mint keys: its keys together share one bucket on top of each key's own.
  const payerLimiter = createRateLimiter({
    perMinute: options.rateLimit.payerRequestsPerMinute,
    burst: options.rateLimit.payerBurst,
  });

  /**
   * Whether `signature` is the payer's over `message`. An EOA's signature is recovered locally (no RPC);
   * anything else (a smart account's ERC-1271 / ERC-6492 signature, or a wrong one) is checked on chain,
   * within the gateway-wide budget for chain reads unauthenticated requests cause.
   */
  async function payerSigned(payer: Address, message: string, signature: Hex): Promise<boolean> {
    try {
      const signer = await recoverMessageAddress({ message, signature });
      if (signer.toLowerCase() === payer.toLowerCase()) return true;
    } catch {
      // not a plain 65-byte ECDSA signature: maybe a smart account's
    }
    spendAnonymousChainRead(common, 'smart-account signature');
    try {
      return await chain.publicClient.verifyMessage({ address: payer, message, signature });
    } catch {
      return false;
    }
  }

  return {
    limiter,
    anonymousLimiter,
    payerLimiter,

    /**
     * One request of `key`: a token from the key's bucket and from its payer's (all the payer's keys
     * share that one), or neither. `scope` says which limit refused.
     */
    takeRequest(key: Pick<ApiKeyRecord, 'id' | 'payer'>, now = Date.now()) {
      return takeAll(
        [
          { limiter, key: key.id, scope: 'key' },
          { limiter: payerLimiter, key: key.payer.toLowerCase(), scope: 'payer' },
        ],
        now,
      );
    },

    /** The key message this gateway accepts (for clients and tests). */
    keyMessage(m: { payer: Address; nonce: string; expires: Date; name?: string }) {
      return apiKeyMessage({ ...m, gateway: chain.gateway, chainId: chain.chainId });
    },

    /**
     * Creates an API key from a signed key message. A signed message is single-use: its nonce is spent
     * by the first key, and any later submission (the same request replayed, or another message with that
     * nonce) is `409 nonce_already_used`, with no key material.
     */
    async createKey(req: {
      payer: Address;
      message: string;
      signature: Hex;
    }): Promise<{ key: string; record: ApiKeyRecord; created: boolean }> {
      const m = parseApiKeyMessage(req.message);
      if (typeof m === 'string')
        throw new GatewayError('invalid_request', `invalid key message: ${m}`, { param: 'message' });
      if (m.payer.toLowerCase() !== req.payer.toLowerCase()) {
        throw new GatewayError('invalid_request', 'the message names another payer than the request', {
          param: 'payer',
        });
      }
      if (m.gateway.toLowerCase() !== chain.gateway.toLowerCase()) {
        throw new GatewayError(
          'invalid_request',
          `the message is for gateway ${m.gateway}, this is ${chain.gateway}`,
          {
            param: 'message',
          },
        );
      }
      if (m.chainId !== chain.chainId) {
        throw new GatewayError(
          'invalid_request',
          `the message is for chain ${m.chainId}, this gateway is on ${chain.chainId}`,
          {
            param: 'message',
          },
        );
      }
      const now = Date.now();
      if (m.expires.getTime() <= now)
        throw new GatewayError('invalid_request', 'the key message has expired', { param: 'message' });
      if (m.expires.getTime() > now + options.keys.maxMessageTtlSec * 1000) {
        throw new GatewayError(
          'invalid_request',
          `the key message expires too far ahead (at most ${options.keys.maxMessageTtlSec} s from now)`,
          { param: 'message' },
        );
      }
      const valid = await payerSigned(m.payer, req.message, req.signature);
      if (!valid)
        throw new GatewayError('invalid_signature', 'the signature does not match the payer and message', {
          param: 'signature',
        });

      // Single use: a captured request must never hand out the live key again.
      if (await storage.keys.findByNonce(m.payer, m.nonce)) {
        throw new GatewayError(
          'nonce_already_used',
          'this signed key request was already used (its nonce is spent): sign a new message with a fresh nonce',
          { param: 'message' },
        );
      }
      const id = newKeyId();
      const key = deriveApiKey(keySecret, id);
      const inserted = await storage.keys.insert({
        id,
        keyHash: hashApiKey(key),
        payer: m.payer,
        name: m.name ?? null,
        nonce: m.nonce,
        message: req.message,
        signature: req.signature,
      });
      if (!inserted)
        throw new GatewayError(
          'nonce_already_used',
          'this signed key request was already used (its nonce is spent): sign a new message with a fresh nonce',
          { param: 'message' },
        );
      const record = await storage.keys.findByNonce(m.payer, m.nonce);
      return { key, record: record!, created: true };
    },

    /** Forgets a revoked key at once (this process's cache). */
    forgetKey: keys.forget,

    /** Resolves a bearer token to its live key (remembered `keys.cacheMs`), or 401. */
    authenticate: keys.authenticate,
  };
}

/**
 * Bearer token → its live API key (401 otherwise), remembered `cacheMs` after a lookup: the API's rule, and
 * the network API's payer check in whichever process serves it (the gateway, or the standalone indexer).
 */
export function createKeyResolver({
  keys,
  cacheMs,
}: {
  keys: Pick<Storage['keys'], 'findByHash'>;
  cacheMs: number;
}) {
  // Live keys by hash, remembered briefly: no database read per request.
  const keyCache = new Map<string, { record: ApiKeyRecord; expires: number }>();
  return {
    /** Forgets a revoked key at once (this process's cache). */
    forget(id: string) {
      for (const [hash, k] of keyCache) if (k.record.id === id) keyCache.delete(hash);
    },
    async authenticate(token: string | undefined): Promise<ApiKeyRecord> {
      if (!token) {
        throw new GatewayError(
          'missing_api_key',
          'missing API key: send "Authorization: Bearer aipg-…" (create one with POST /v1/keys)',
        );
      }
      if (!looksLikeApiKey(token)) throw new GatewayError('invalid_api_key', 'invalid API key');
      const hash = hashApiKey(token);
      const now = Date.now();
      const hit = keyCache.get(hash);
      if (hit && hit.expires > now) return hit.record;
      const record = await keys.findByHash(hash);
      if (!record) {
        keyCache.delete(hash);
        throw new GatewayError('invalid_api_key', 'invalid or revoked API key');
      }
      if (cacheMs > 0) {
        if (keyCache.size >= KEY_CACHE_MAX) keyCache.clear();
        keyCache.set(hash, { record, expires: now + cacheMs });
      }
      return record;
    },
  };
}

/**
 * The network API's check of a payer's key (`/v1/network/activity?kind=job&address=…` is private to its
 * payer): the same keys, cache and rule as the API's, answered as the network API's errors.
 */
export function apiKeyAuthenticator(auth: Pick<Auth, 'authenticate'>): PayerAuthenticator {
  return async (authorization) => {
    const token = bearerToken(authorization);
    if (!token)
      throw new NetworkError(
        'missing_api_key',
        'job activity by payer address is private: send that payer\'s key as "Authorization: Bearer aipg-…"',
      );
    try {
      return (await auth.authenticate(token)).payer;
    } catch (error) {
      if (error instanceof GatewayError && error.code === 'invalid_api_key')
        throw new NetworkError('invalid_api_key', error.message);
      throw error;
    }
  };
}
