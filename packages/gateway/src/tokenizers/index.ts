/**
 * The models' tokenizers, as the gateway holds them: loaded (vocabulary only, no weights) from the
 * tokenizer files in `tokenizers.dir`, each matched to a model by its sha256, the model's on-chain
 * `tokenizerHash`. With them the gateway tokenizes every request itself (what a worker runs and what a
 * payer is charged for) and renders what the user receives from the token ids a worker signs.
 */
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { createTokenizer, sha256File, type Tokenizer } from '@aipg/inference';
import type { Hex } from 'viem';
import type { Common } from '../common.ts';
import { GatewayError } from '../errors.ts';

export type GatewayTokenizer = Tokenizer;

export type TokenizersParameters = Pick<Common, 'logger'> & {
  dir: string;
  /** Shortest pause between two scans of `dir` for a tokenizer not found yet. */
  rescanMs?: number | undefined;
};

type Loaded = Tokenizer & { close(): Promise<void> };

export type Tokenizers = ReturnType<typeof createTokenizers>;

export function createTokenizers({ logger, dir, rescanMs = 5_000 }: TokenizersParameters) {
  /** sha256 → path, for every file of `dir` hashed so far (a file is hashed once per size+mtime). */
  const byHash = new Map<string, string>();
  const hashed = new Map<string, { size: number; mtimeMs: number; hash: string }>();
  const loaded = new Map<string, Promise<Loaded>>();
  let lastScan = 0;
  let scanning: Promise<void> | undefined;
  let closed = false;

  async function scan(): Promise<void> {
    const names = await readdir(dir).catch((error: NodeJS.ErrnoException) => {
      if (error.code === 'ENOENT') return [] as string[];
      throw error;
    });
    for (const name of names) {
      const path = join(dir, name);
      const s = await stat(path).catch(() => undefined);
      if (!s?.isFile()) continue;
      const seen = hashed.get(path);
      if (seen && seen.size === s.size && seen.mtimeMs === s.mtimeMs) continue;
      const hash = (await sha256File(path)).toLowerCase();
      hashed.set(path, { size: s.size, mtimeMs: s.mtimeMs, hash });
      byHash.set(hash, path);
    }
    lastScan = Date.now();
  }

  async function pathOf(hash: string): Promise<string | undefined> {
    if (!byHash.has(hash) && Date.now() - lastScan >= rescanMs) {
      scanning ??= scan().finally(() => {
        scanning = undefined;
      });
      await scanning;
    }
    return byHash.get(hash);
  }

  async function load(hash: string, modelName: string): Promise<Loaded> {
    const path = await pathOf(hash);
    if (!path) {
      throw new GatewayError(
        'tokenizer_unavailable',
        `this gateway cannot serve ${modelName} yet: it has no tokenizer file for it`,
        {
          details: `no file in ${dir} has the model's registered tokenizer hash ${hash}`,
          retryable: true,
        },
      );
    }
    // The file may have changed since it was hashed: check what is actually loaded.
    const now = (await sha256File(path)).toLowerCase();
    if (now !== hash) {
      byHash.delete(hash);
      throw new GatewayError('tokenizer_unavailable', `the tokenizer file of ${modelName} changed on disk`, {
        details: `${path} now hashes to ${now}, the registry says ${hash}`,
        retryable: true,
      });
    }
    const tokenizer = await createTokenizer({ modelPath: path }).catch((cause: unknown) => {
      throw new GatewayError('tokenizer_unavailable', `the tokenizer file of ${modelName} does not load`, {
        details: path,
        cause,
      });
    });
    logger.info({
      msg: 'tokenizer loaded',
      model: modelName,
      tokenizer_hash: hash,
      vocab: tokenizer.vocabSize,
    });
    return tokenizer;
  }

  return {
    /**
     * The tokenizer of a model, by its registered hash; loaded on first use and kept. Throws
     * `tokenizer_unavailable` (503) when `dir` holds no file with that hash.
     */
    get(model: { name: string; tokenizerHash: Hex }): Promise<GatewayTokenizer> {
      if (closed) return Promise.reject(new GatewayError('shutting_down', 'the gateway is shutting down'));
      const hash = model.tokenizerHash.toLowerCase();
      let p = loaded.get(hash);
      if (!p) {
        p = load(hash, model.name);
        loaded.set(hash, p);
        // A failure is not kept: the operator may add the file.
        p.catch(() => loaded.delete(hash));
      }
      return p;
    },
    async close(): Promise<void> {
      closed = true;
      const all = [...loaded.values()];
      loaded.clear();
      await Promise.all(all.map((p) => p.then((t) => t.close()).catch(() => {})));
    },
  };
}
