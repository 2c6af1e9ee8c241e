import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  anvilTestAccounts,
  approveToken,
  bond,
  createGridClients,
  deposit,
  increaseGatewayCap,
  registerModel,
  type StartDevChainReturnType,
  startDevChain,
  type WriteClient,
} from '@aipg/chain';
import { computeModelId, parseAipg } from '@aipg/core';
import {
  createTokenizer,
  extractTokenizerFile,
  MODEL_PRESETS,
  makeGguf,
  type Tokenizer,
} from '@aipg/inference';
import { type Address, type Hex, keccak256, toBytes } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import {
  createGatewayOptions,
  createLogger,
  type GatewayOptions,
  type StartGatewayReturnType,
  startGateway,
} from '../../src/index.ts';

/**
 * Test roles over anvil's PUBLIC test accounts (never use these keys anywhere real):
 * 0 deploys and owns the Grid, 1 and 8 pay, 2 and 3 own worker bonds (signing with operator keys 5
 * and 6), 4 owns a validator bond (operator 7), 9 is the gateway.
 */
export const roles = {
  owner: anvilTestAccounts[0],
  payer: anvilTestAccounts[1],
  workerA: anvilTestAccounts[2],
  workerB: anvilTestAccounts[3],
  validator: anvilTestAccounts[4],
  operatorA: anvilTestAccounts[5],
  operatorB: anvilTestAccounts[6],
  validatorOperator: anvilTestAccounts[7],
  poorPayer: anvilTestAccounts[8],
  gateway: anvilTestAccounts[9],
} as const;

export const MODEL = {
  name: 'tiny-test',
  weightsHash: keccak256(toBytes('tiny-test weights')) as Hex,
  /** The tiny preset's real tokenizer: the gateway tokenizes prompts and renders text with it. */
  tokenizerHash: MODEL_PRESETS.tiny.tokenizerHash,
  /** 1 AIPG per million input tokens, 2 per million output tokens. */
  rates: { inputPerMTokens: parseAipg('1'), outputPerMTokens: parseAipg('2'), perMegapixelStep: 0n },
};
export const MODEL_ID = computeModelId(MODEL.name, MODEL.weightsHash);

/** A directory holding only the tiny preset's tokenizer file: the test gateways' `tokenizers.dir`. */
export const TOKENIZERS_DIR = join(tmpdir(), `aipg-test-tokenizers-${process.pid}`);
const TOKENIZER_PATH = join(TOKENIZERS_DIR, 'aipg-tiny-llama.tokenizer.gguf');
let tokenizerFile: Promise<string> | undefined;

/** Writes the tiny preset's tokenizer file (from its generated GGUF) into `TOKENIZERS_DIR`, once. */
export function ensureTestTokenizerFile(): Promise<string> {
  tokenizerFile ??= (async () => {
    await mkdir(TOKENIZERS_DIR, { recursive: true });
    await writeFile(TOKENIZER_PATH, extractTokenizerFile(makeGguf(MODEL_PRESETS.tiny.config).bytes));
    return TOKENIZER_PATH;
  })();
  return tokenizerFile;
}

let testTokenizer: Promise<Tokenizer> | undefined;
/** The test model's tokenizer, as the gateway loads it: tests compute expected ids and texts with it. */
export function loadTestTokenizer(): Promise<Tokenizer> {
  testTokenizer ??= ensureTestTokenizerFile().then((modelPath) => createTokenizer({ modelPath }));
  return testTokenizer;
}

export type TestGrid = {
  chain: StartDevChainReturnType;
  rpcUrl: string;
  grid: Address;
  /** A write client for `key` (the chain package's actions take it). */
  client(key: Hex): WriteClient;
  publicClient: ReturnType<typeof createGridClients>['publicClient'];
  stop(): Promise<void>;
};

/** anvil + a devnet Grid with the test model registered, two bonded workers, a validator and a funded payer. */
export async function startTestGrid(): Promise<TestGrid> {
  await ensureTestTokenizerFile();
  const chain = await startDevChain();
  const { rpcUrl, chainId } = chain.anvil;
  const grid = chain.deployment.grid;
  const token = chain.deployment.token;
  // `walletClient`'s declared type (a wallet ∩ public client intersection) collapses under TypeScript 7.
  const client = (key: Hex) =>
    createGridClients({ rpcUrl, chainId, account: privateKeyToAccount(key), pollingInterval: 50 })
      .walletClient as unknown as WriteClient;
  try {
    await registerModel(client(roles.owner.privateKey), {
      grid,
      name: MODEL.name,
      kind: 'text',
      weightsHash: MODEL.weightsHash,
      tokenizerHash: MODEL.tokenizerHash,
      parameterCount: 113_000n,
      minVramMb: 0,
      rates: MODEL.rates,
    });
    const workerBond = parseAipg('1000');
    for (const [owner, operator, amount] of [
      [roles.workerA, roles.operatorA, workerBond],
      [roles.workerB, roles.operatorB, workerBond * 4n],
    ] as const) {
      const c = client(owner.privateKey);
      await approveToken(c, { token, spender: grid, amount });
      await bond(c, { grid, role: 'worker', amount, operator: operator.address });
    }
    const v = client(roles.validator.privateKey);
    await approveToken(v, { token, spender: grid, amount: parseAipg('10000') });
    await bond(v, {
      grid,
      role: 'validator',
      amount: parseAipg('10000'),
      operator: roles.validatorOperator.address,
    });
    const p = client(roles.payer.privateKey);
    await approveToken(p, { token, spender: grid, amount: parseAipg('100') });
    await deposit(p, { grid, amount: parseAipg('100') });
    await increaseGatewayCap(p, { grid, gateway: roles.gateway.address, amount: parseAipg('50') });
  } catch (error) {
    await chain.stop();
    throw error;
  }
  const { publicClient } = createGridClients({ rpcUrl, chainId, pollingInterval: 50 });
  return { chain, rpcUrl, grid, client, publicClient, stop: () => chain.stop() };
}

/** Gateway options for tests: port 0, in-memory PGlite (or a fresh schema on DATABASE_URL), quiet logs. */
export function testGatewayOptions(grid: TestGrid, overrides: Record<string, unknown> = {}): GatewayOptions {
  return createGatewayOptions(
    {
      rpcUrl: grid.rpcUrl,
      grid: grid.grid,
      privateKey: roles.gateway.privateKey,
      port: 0,
      databaseDir: 'memory://',
      databaseUrl: process.env.DATABASE_URL || undefined,
      databaseSchema: process.env.DATABASE_URL ? `gw_test_${randomBytes(5).toString('hex')}` : undefined,
      logLevel: process.env.AIPG_TEST_LOG ?? 'silent',
      'chain.balanceCacheMs': 0,
      'settlement.intervalMs': 3_600_000,
      'settlement.minReceipts': 10_000,
      'hub.heartbeatMs': 1_000,
      'jobs.queueTimeoutMs': 500,
      'jobs.firstTokenTimeoutMs': 5_000,
      tokenizersDir: TOKENIZERS_DIR,
      ...overrides,
    },
    {},
  );
}

export async function startTestGateway(
  grid: TestGrid,
  overrides: Record<string, unknown> = {},
): Promise<StartGatewayReturnType> {
  const options = testGatewayOptions(grid, overrides);
  await ensureTestTokenizerFile();
  return startGateway(options, { logger: createLogger(options.log.level) });
}

/** Drops a test schema created on DATABASE_URL (no-op on PGlite). */
export async function dropTestSchema(options: GatewayOptions): Promise<void> {
  if (!options.database.url || options.database.schema === 'public') return;
  const pg = (await import('pg')).default;
  const client = new pg.Client({ connectionString: options.database.url });
  await client.connect();
  try {
    await client.query(`DROP SCHEMA IF EXISTS "${options.database.schema}" CASCADE`);
  } finally {
    await client.end();
  }
}

/** Signs the key message for `payer` and creates an API key through the HTTP API. */
export async function createApiKey(
  gw: { url: string; gateway: Address; chainId: number },
  payerKey: Hex,
  opts: { nonce?: string; name?: string } = {},
): Promise<string> {
  const { apiKeyMessage } = await import('../../src/index.ts');
  const account = privateKeyToAccount(payerKey);
  const message = apiKeyMessage({
    gateway: gw.gateway,
    chainId: gw.chainId,
    payer: account.address,
    nonce: opts.nonce ?? randomBytes(8).toString('hex'),
    expires: new Date(Date.now() + 600_000),
    name: opts.name,
  });
  const signature = await account.signMessage({ message });
  const res = await fetch(`${gw.url}/v1/keys`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ payer: account.address, message, signature }),
  });
  const body = (await res.json()) as { key: string };
  if (res.status !== 201) throw new Error(`key creation failed: ${res.status} ${JSON.stringify(body)}`);
  return body.key;
}
