import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encryptKeystore } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { runValidatorStart } from '../src/cli.ts';
import { createValidatorOptions, parseGateways, VALIDATOR_ENV } from '../src/node/options.ts';
import { openStateStore } from '../src/node/state.ts';

const KEY = '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a';
const GRID = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-validator-options-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('options', () => {
  test('flags, then environment, then defaults', async () => {
    const o = await createValidatorOptions(
      { grid: GRID, mode: 'crosscheck', gguf: ['a.gguf', 'b.gguf'], dataDir: dir, withdrawMin: '2.5' },
      {
        [VALIDATOR_ENV.operatorKey]: KEY,
        [VALIDATOR_ENV.mode]: 'reexecute',
        [VALIDATOR_ENV.gateway]: 'https://gw.example.org/',
      },
    );
    expect(o.mode).toBe('crosscheck');
    expect(o.chainId).toBe(31337);
    expect(o.gateways).toEqual([{ url: 'https://gw.example.org', address: null }]);
    expect(o.gguf.map((p) => p.endsWith('.gguf'))).toEqual([true, true]);
    expect(o.withdrawMin).toBe(parseAipg('2.5'));
    expect(o.modelDir).toBe(join(dir, 'models'));
    expect(o.finalize).toBe('mine');
    expect(o).not.toHaveProperty('replaySeeded'); // each job is judged by its own sampler
    expect(o.metrics).toBeNull();
    const env = await createValidatorOptions(
      { grid: GRID, dataDir: dir },
      { [VALIDATOR_ENV.operatorKey]: KEY, [VALIDATOR_ENV.mode]: 'crosscheck' },
    );
    expect(env.mode).toBe('crosscheck');
  });

  test('one-line errors for bad settings', async () => {
    const env = { [VALIDATOR_ENV.operatorKey]: KEY };
    await expect(createValidatorOptions({ grid: GRID, mode: 'guess' }, env)).rejects.toThrow(
      /--mode guess is not one of reexecute, crosscheck/,
    );
    await expect(createValidatorOptions({}, env)).rejects.toThrow(/no Grid address/);
    await expect(createValidatorOptions({ grid: GRID }, {})).rejects.toThrow(/no operator key/);
    await expect(
      createValidatorOptions({ grid: GRID }, { [VALIDATOR_ENV.operatorKey]: '0x1234' }),
    ).rejects.toThrow(/not a 32-byte hex key/);
    await expect(createValidatorOptions({ grid: GRID, withdrawMin: 'lots' }, env)).rejects.toThrow(
      /--withdraw-min/,
    );
    await expect(createValidatorOptions({ grid: GRID, gateway: 'ws://x' }, env)).rejects.toThrow(/http/);
  });

  test('the one environment vocabulary: earlier names still read, each noted once; several RPC URLs', async () => {
    const o = await createValidatorOptions(
      {},
      {
        AIPG_OPERATOR_KEY: KEY,
        AIPG_GRID_ADDRESS: GRID,
        AIPG_VALIDATOR_DATA: dir,
        AIPG_RPC_URL: 'http://a:8545, http://b:8545',
        AIPG_METRICS_PORT: '9465',
        AIPG_METRICS_HOST: '0.0.0.0',
      },
    );
    expect(o.grid).toBe(GRID);
    expect(o.dataDir).toBe(dir);
    expect(o.rpcUrl).toBe('http://a:8545');
    expect(o.rpcUrls).toEqual(['http://a:8545', 'http://b:8545']);
    expect(o.metrics).toEqual({ port: 9465, host: '0.0.0.0' });
    expect(o.deprecations).toEqual([
      'AIPG_GRID_ADDRESS is deprecated: rename it AIPG_GRID',
      'AIPG_VALIDATOR_DATA is deprecated: rename it AIPG_DATA_DIR',
    ]);
    const env = { AIPG_OPERATOR_KEY: KEY, AIPG_GRID: GRID };
    await expect(createValidatorOptions({}, { ...env, AIPG_LOG_LEVEL: 'loud' })).rejects.toThrow(
      'AIPG_LOG_LEVEL loud is not one of fatal, error, warn, info, debug, trace, silent',
    );
    await expect(createValidatorOptions({ dataDir: dir }, { ...env, AIPG_GRID: 'nope' })).rejects.toThrow(
      'AIPG_GRID nope is not an address',
    );
    await expect(createValidatorOptions({ dataDir: dir, rpcUrl: 'localhost:8545' }, env)).rejects.toThrow(
      '--rpc-url localhost:8545: use http://, https://, ws:// or wss://',
    );
    const old = await createValidatorOptions({ dataDir: dir, rpc: 'http://c:8545' }, env);
    expect(old.rpcUrl).toBe('http://c:8545');
    expect(old.deprecations).toEqual(['the validator flag "rpc" is deprecated: pass "rpcUrl" (--rpc-url)']);
  });

  test('gateways: a URL, or address=URL, comma-separated', () => {
    expect(
      parseGateways('http://a:8080, 0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc=https://b.example/'),
    ).toEqual([
      { url: 'http://a:8080', address: null },
      { url: 'https://b.example', address: '0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc' },
    ]);
  });

  test('the operator key from a keystore', async () => {
    const path = join(dir, 'key.json');
    await writeFile(path, JSON.stringify(await encryptKeystore(KEY, 'pw', { n: 1024 })));
    const o = await createValidatorOptions(
      { grid: GRID, keystore: path, dataDir: dir },
      { [VALIDATOR_ENV.keystorePassword]: 'pw' },
    );
    expect(o.operatorKey).toBe(KEY);
  });

  test('runValidatorStart prints one line and exits 1 when it cannot start', async () => {
    let err = '';
    const code = await runValidatorStart(
      { grid: GRID, rpcUrl: 'http://127.0.0.1:9', dataDir: dir },
      { env: { [VALIDATOR_ENV.operatorKey]: KEY }, stderr: { write: (s: string) => (err += s) } },
    );
    expect(code).toBe(1);
    expect(err.split('\n').filter(Boolean)).toHaveLength(1);
    expect(err).toMatch(/^aipg validator: /);
  });
});

describe('state file', () => {
  const id = { chainId: 31337, grid: GRID as `0x${string}`, owner: GRID as `0x${string}`, startBlock: 7n };

  test('created with the start block, saved atomically, reopened', async () => {
    const path = join(dir, 'state', 'a.json');
    const s = await openStateStore(path, id);
    expect(s.state.cursor).toBe('7');
    s.state.cursor = '42';
    await Promise.all([s.save(), s.save(), s.save()]);
    expect(JSON.parse(await readFile(path, 'utf8')).cursor).toBe('42');
    expect((await readdir(join(dir, 'state'))).filter((f) => f.endsWith('.tmp'))).toEqual([]);
    const again = await openStateStore(path, id);
    expect(again.state.cursor).toBe('42');
  });

  test('refuses a malformed file or one of another validator', async () => {
    const path = join(dir, 'b.json');
    await writeFile(path, '{ not json');
    await expect(openStateStore(path, id)).rejects.toMatchObject({ code: 'VALIDATOR_STATE_FILE' });
    await rm(path);
    await openStateStore(path, id);
    await expect(openStateStore(path, { ...id, chainId: 8453 })).rejects.toThrow(
      /another validator or chain/,
    );
  });
});
