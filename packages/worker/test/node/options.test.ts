import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anvilTestAccounts, encryptKeystore, serializeDeployment } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createWorkerOptions, normalizeGatewayUrl, WORKER_DEFAULTS } from '../../src/index.ts';

const KEY = anvilTestAccounts[2].privateKey;
const GRID = '0x5fbdb2315678afecb367f032d93f642f64180aa3';
const HASH = `0x${'ab'.repeat(32)}` as const;

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-worker-options-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const env = { AIPG_OPERATOR_KEY: KEY };

async function errorOf(p: Promise<unknown>) {
  try {
    await p;
  } catch (error) {
    return error as Error & { code?: string; shortMessage?: string };
  }
  throw new Error('expected a rejection');
}

describe('createWorkerOptions', () => {
  it('builds a devnet worker with one model from flags and defaults', async () => {
    const o = await createWorkerOptions(
      { grid: GRID, model: 'aipg-tiny', gguf: 'models/tiny.gguf', threads: '2' },
      env,
    );
    expect(o).toMatchObject({
      network: 'devnet',
      chainId: 31337,
      devnet: true,
      gatewayUrl: WORKER_DEFAULTS.gatewayUrl,
      rpcUrl: 'http://127.0.0.1:8545',
      grid: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
      operatorKey: KEY,
      metrics: null,
      logLevel: 'info',
    });
    expect(o.models).toEqual([
      expect.objectContaining({
        backend: 'llama-cpp',
        name: 'aipg-tiny',
        gguf: join(process.cwd(), 'models/tiny.gguf'),
        weightsHash: undefined,
        maxConcurrency: 1,
        threads: 2,
      }),
    ]);
  });

  it('takes image models: the embedded pipeline by its directory, ComfyUI and A1111 by checkpoint and weights hash', async () => {
    const hash = `0x${'ab'.repeat(32)}`;
    const d = await createWorkerOptions(
      { grid: GRID, model: 'aipg-tiny-ldm', backend: 'diffusion', modelDir: 'models/ldm' },
      env,
    );
    expect(d.models[0]).toMatchObject({
      backend: 'diffusion',
      modelDir: join(process.cwd(), 'models/ldm'),
      backendModel: undefined,
    });
    const c = await createWorkerOptions(
      {
        grid: GRID,
        model: 'sdxl',
        backend: 'comfyui',
        weightsHash: hash,
        backendModel: 'sd_xl_base_1.0.safetensors',
      },
      env,
    );
    expect(c.models[0]).toMatchObject({
      backend: 'comfyui',
      url: 'http://127.0.0.1:8188',
      backendModel: 'sd_xl_base_1.0.safetensors',
      weightsHash: hash,
    });
    const a = await createWorkerOptions(
      { grid: GRID, model: 'sdxl', backend: 'a1111', weightsHash: hash },
      env,
    );
    expect(a.models[0]).toMatchObject({
      backend: 'a1111',
      url: 'http://127.0.0.1:7860',
      backendModel: 'sdxl',
    });
  });

  it('reads several models on several backends from a config file; flags win over the file', async () => {
    const config = join(dir, 'worker.json');
    await writeFile(
      config,
      JSON.stringify({
        network: 'devnet',
        gateway: 'https://gw.example.org',
        grid: GRID,
        metricsPort: 9464,
        models: [
          {
            backend: 'llama-cpp',
            name: 'aipg-tiny',
            gguf: 'models/tiny.gguf',
            maxConcurrency: 2,
            threads: 2,
          },
          {
            backend: 'ollama',
            name: 'llama3.1-8b',
            weightsHash: HASH,
            backendModel: 'llama3.1:8b',
            maxConcurrency: 4,
          },
          {
            backend: 'openai',
            name: 'qwen2.5-7b',
            weightsHash: HASH,
            url: 'http://gpu-box:8000/v1',
            backendModel: 'Qwen/Qwen2.5-7B-Instruct',
            apiKeyEnv: 'VLLM_KEY',
            maxConcurrency: 16,
          },
        ],
      }),
    );
    const o = await createWorkerOptions(
      { config, gateway: 'ws://127.0.0.1:9999', metricsHost: '0.0.0.0' },
      { ...env, VLLM_KEY: 'sk-local' },
    );
    expect(o.gatewayUrl).toBe('ws://127.0.0.1:9999/v1/workers/connect');
    expect(o.metrics).toEqual({ port: 9464, host: '0.0.0.0' });
    expect(o.models.map((m) => [m.backend, m.name, m.maxConcurrency])).toEqual([
      ['llama-cpp', 'aipg-tiny', 2],
      ['ollama', 'llama3.1-8b', 4],
      ['openai', 'qwen2.5-7b', 16],
    ]);
    expect(o.models[0]?.gguf).toBe(join(dir, 'models/tiny.gguf'));
    expect(o.models[1]).toMatchObject({
      url: 'http://127.0.0.1:11434',
      backendModel: 'llama3.1:8b',
      weightsHash: HASH,
    });
    expect(o.models[2]).toMatchObject({ url: 'http://gpu-box:8000/v1', apiKey: 'sk-local' });
  });

  it('takes the chain and Grid from a deployment file', async () => {
    const path = join(dir, 'deployment.json');
    await writeFile(
      path,
      serializeDeployment({
        network: 'base',
        chainId: 8453,
        grid: '0x5FbDB2315678afecb367f032d93F642f64180aa3',
        token: '0xa1c0deCaFE3E9Bf06A5F29B7015CD373a9854608',
        deployBlock: 1,
        owner: anvilTestAccounts[0].address,
        treasury: anvilTestAccounts[0].address,
        facets: {},
        params: {
          workerMinimumBond: parseAipg('1000'),
          validatorMinimumBond: parseAipg('10000'),
          unbondDelay: 1,
          depositWithdrawDelay: 1,
          cutDelay: 2,
          changeWindow: 2,
          workerBps: 8000,
          validatorBps: 1500,
          protocolBps: 500,
          confidentialPremiumBps: 2500,
          auditLimits: {
            maxWorkerSlashBps: 2000,
            maxFalseAttestationSlashBps: 1000,
            maxFinderShareBps: 5000,
            minValidatorsPerAudit: 3,
            minQuorum: 2,
            minCommitWindow: 43_200,
            minRevealWindow: 43_200,
          },
        },
      }),
    );
    const o = await createWorkerOptions(
      { deployment: path, model: 'm', backend: 'ollama', weightsHash: HASH },
      { ...env, AIPG_RPC_URL: 'http://rpc.example.org' },
    );
    expect(o).toMatchObject({
      network: 'base',
      chainId: 8453,
      devnet: false,
      rpcUrl: 'http://rpc.example.org',
    });
    expect(o.grid).toBe('0x5FbDB2315678afecb367f032d93F642f64180aa3');
    const mismatch = await errorOf(
      createWorkerOptions(
        { deployment: path, network: 'devnet', model: 'm', backend: 'ollama', weightsHash: HASH },
        env,
      ),
    );
    expect(mismatch.message).toMatch(/is for chain 8453, not devnet/);
  });

  it('decrypts a keystore with the password from the environment or a file', async () => {
    const keystore = join(dir, 'operator.json');
    await writeFile(keystore, JSON.stringify(await encryptKeystore(KEY, 'correct horse', { n: 1024 })));
    const flags = { grid: GRID, keystore, model: 'm', gguf: '/m.gguf' };
    const o = await createWorkerOptions(flags, { AIPG_KEYSTORE_PASSWORD: 'correct horse' });
    expect(o.operatorKey).toBe(KEY);

    const passwordFile = join(dir, 'password.txt');
    await writeFile(passwordFile, 'correct horse\n');
    expect((await createWorkerOptions({ ...flags, passwordFile }, {})).operatorKey).toBe(KEY);

    const wrong = await errorOf(createWorkerOptions(flags, { AIPG_KEYSTORE_PASSWORD: 'nope' }));
    expect(wrong.code).toBe('KEYSTORE_WRONG_PASSWORD');
    const none = await errorOf(createWorkerOptions(flags, {}));
    expect(none.message).toMatch(/AIPG_KEYSTORE_PASSWORD or pass --password-file/);
  });

  it.each([
    [
      { grid: GRID, model: 'm', gguf: '/m.gguf' },
      {},
      /no operator key: set AIPG_OPERATOR_KEY or pass --keystore/,
    ],
    [
      { grid: GRID, model: 'm', gguf: '/m.gguf' },
      { AIPG_OPERATOR_KEY: '0x1234' },
      /AIPG_OPERATOR_KEY is not a 32-byte hex key/,
    ],
    [{ model: 'm', gguf: '/m.gguf' }, env, /no Grid address: pass --grid/],
    [{ grid: GRID }, env, /no model to serve/],
    [{ grid: GRID, model: 'm' }, env, /llama-cpp backend needs a GGUF file/],
    [{ grid: GRID, model: 'm', backend: 'ollama' }, env, /ollama backend needs --weights-hash/],
    [{ grid: GRID, model: 'm', backend: 'comfyui' }, env, /comfyui backend needs --weights-hash/],
    [{ grid: GRID, model: 'm', backend: 'diffusion' }, env, /diffusion backend needs its model directory/],
    [
      { grid: GRID, model: 'm', backend: 'vllm' },
      env,
      /--backend vllm is not one of llama-cpp, ollama, openai, diffusion, comfyui, a1111/,
    ],
    [
      { grid: GRID, model: 'm', gguf: '/m', maxConcurrency: '0' },
      env,
      /--max-concurrency 0 must be an integer/,
    ],
    [{ grid: GRID, model: 'm', gguf: '/m', network: 'mainnet' }, env, /--network mainnet is not one of/],
    [{ grid: GRID, model: 'm', gguf: '/m', gateway: 'ftp://x' }, env, /use ws:\/\/, wss:\/\//],
  ])('refuses bad settings with one line: %j', async (flags, e, message) => {
    const error = await errorOf(createWorkerOptions(flags, e));
    expect(error.code).toBe('WORKER_CONFIG_INVALID');
    expect(error.shortMessage).toMatch(message);
    expect(error.shortMessage).not.toContain('\n');
  });

  it('rejects config files with unknown keys or duplicate models, naming the place', async () => {
    const typo = join(dir, 'typo.json');
    await writeFile(
      typo,
      JSON.stringify({
        grid: GRID,
        models: [{ backend: 'llama-cpp', name: 'm', gguf: 'x', maxConcurency: 2 }],
      }),
    );
    expect((await errorOf(createWorkerOptions({ config: typo }, env))).message).toMatch(
      /typo\.json: models\.0/,
    );
    const dup = join(dir, 'dup.json');
    const m = { backend: 'llama-cpp', name: 'm', gguf: 'x' };
    await writeFile(dup, JSON.stringify({ grid: GRID, models: [m, m] }));
    expect((await errorOf(createWorkerOptions({ config: dup }, env))).message).toMatch(
      /model m is listed twice/,
    );
  });

  it('never echoes the operator key, even a mistyped one', async () => {
    const almost = `${KEY.slice(0, -1)}z`;
    const error = await errorOf(
      createWorkerOptions({ grid: GRID, model: 'm', gguf: '/m' }, { AIPG_OPERATOR_KEY: almost }),
    );
    expect(error.message).not.toContain(almost.slice(2, 20));
    const both = await errorOf(
      createWorkerOptions({ grid: GRID, model: 'm', gguf: '/m', keystore: '/k' }, env),
    );
    expect(both.message).toMatch(/both AIPG_OPERATOR_KEY and a keystore are set/);
  });
});

describe('the one environment vocabulary', () => {
  it('reads earlier names with a notice each, several RPC URLs, the metrics host', async () => {
    const o = await createWorkerOptions(
      { model: 'm', gguf: '/m.gguf' },
      {
        ...env,
        AIPG_GRID_ADDRESS: GRID,
        AIPG_WORKER_DATA_DIR: dir,
        AIPG_RPC_URL: 'http://a:8545,http://b:8545',
        AIPG_METRICS_PORT: '9464',
        AIPG_METRICS_HOST: '0.0.0.0',
      },
    );
    expect(o.grid).toBe('0x5FbDB2315678afecb367f032d93F642f64180aa3');
    expect(o.dataDir).toBe(dir);
    expect(o.rpcUrls).toEqual(['http://a:8545', 'http://b:8545']);
    expect(o.rpcUrl).toBe('http://a:8545');
    expect(o.metrics).toEqual({ port: 9464, host: '0.0.0.0' });
    expect(o.deprecations).toEqual([
      'AIPG_GRID_ADDRESS is deprecated: rename it AIPG_GRID',
      'AIPG_WORKER_DATA_DIR is deprecated: rename it AIPG_DATA_DIR',
    ]);
  });

  it('names the variable a bad value came from', async () => {
    const flags = { grid: GRID, model: 'm', gguf: '/m.gguf' };
    expect(
      (await errorOf(createWorkerOptions(flags, { ...env, AIPG_METRICS_PORT: '99999' }))).shortMessage,
    ).toBe('AIPG_METRICS_PORT 99999 must be an integer from 0 to 65535');
    expect((await errorOf(createWorkerOptions(flags, { ...env, AIPG_LOG_LEVEL: 'loud' }))).code).toBe(
      'WORKER_CONFIG_INVALID',
    );
    const keystore = await errorOf(
      createWorkerOptions(flags, { AIPG_KEYSTORE: join(dir, 'missing.json'), AIPG_KEYSTORE_PASSWORD: 'pw' }),
    );
    expect(keystore.code).toBe('WORKER_KEYSTORE_INVALID');
  });

  it('still reads the earlier "rpc" flag and config key, with a notice', async () => {
    const old = await createWorkerOptions(
      { grid: GRID, model: 'm', gguf: '/m.gguf', rpc: 'http://c:8545' },
      env,
    );
    expect(old.rpcUrl).toBe('http://c:8545');
    expect(old.deprecations).toEqual(['the worker flag "rpc" is deprecated: pass "rpcUrl" (--rpc-url)']);
    const file = join(dir, 'old-rpc.json');
    await writeFile(
      file,
      JSON.stringify({
        grid: GRID,
        rpc: 'http://d:8545',
        models: [{ backend: 'llama-cpp', name: 'm', gguf: 'x' }],
      }),
    );
    const fromFile = await createWorkerOptions({ config: file }, env);
    expect(fromFile.rpcUrl).toBe('http://d:8545');
    expect(fromFile.deprecations).toEqual([`config file ${file}: "rpc" is deprecated: rename it "rpcUrl"`]);
  });
});

describe('normalizeGatewayUrl', () => {
  it.each([
    ['http://localhost:8080', 'ws://localhost:8080/v1/workers/connect'],
    ['https://gw.aipowergrid.io', 'wss://gw.aipowergrid.io/v1/workers/connect'],
    ['ws://10.0.0.2:8080/', 'ws://10.0.0.2:8080/v1/workers/connect'],
    ['wss://gw.example.org/custom/path', 'wss://gw.example.org/custom/path'],
  ])('%s → %s', (input, output) => {
    expect(normalizeGatewayUrl(input)).toBe(output);
  });
});
