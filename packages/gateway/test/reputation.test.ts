/**
 * Routing by audit history: the policy, the log decoding, the follower against a real anvil (its
 * "Grid" a tiny contract that emits any log it is given, to script verdicts, reorgs and restarts),
 * and the whole path through the real AuditFacet: settle, fix randomness, commit and reveal FAIL, finalize,
 * and the gateway stops routing to the slashed worker.
 */
import {
  announceAuditConfig,
  commitVote,
  finalizeAudit,
  fixRandomness,
  getBatchAudit,
  getGridParams,
  isAudited,
  revealVote,
  type StartAnvilReturnType,
  setAuditConfig,
  startAnvil,
  voteCommitment,
} from '@aipg/chain';
import { parseAipg, type ReceiptJson, receiptFromJson } from '@aipg/core';
import { createNetwork, migrateNetwork } from '@aipg/indexer';
import {
  type Address,
  concat,
  createTestClient,
  createWalletClient,
  encodeAbiParameters,
  encodeEventTopics,
  getAddress,
  type Hex,
  http,
  keccak256,
  numberToHex,
  pad,
  publicActions,
  toEventSelector,
  toHex,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  AUDIT_HEADERS,
  type AuditRecord,
  auditRequestMessage,
  createLogger,
  createMetrics,
  createReputation,
  createRouting,
  decodeReputationLog,
  type RoutableWorker,
  reputationAbi,
  reputationFactor,
  type StartGatewayReturnType,
  startGateway,
} from '../src/index.ts';
import { type Database, openDatabase } from '../src/storage/db.ts';
import { migrate } from '../src/storage/migrations.ts';
import {
  createApiKey,
  dropTestSchema,
  MODEL,
  MODEL_ID,
  roles,
  startTestGrid,
  type TestGrid,
  testGatewayOptions,
} from './helpers/grid.ts';
import { ScriptedWorker } from './helpers/worker.ts';

const HOUR = 3_600_000;
const policy = { failCooldownMs: 24 * HOUR, penaltyWindowMs: 7 * 24 * HOUR };
const A = getAddress('0x00000000000000000000000000000000000000a1');
const B = getAddress('0x00000000000000000000000000000000000000b2');
const C = getAddress('0x00000000000000000000000000000000000000c3');
const D = getAddress('0x00000000000000000000000000000000000000d4');
const E = getAddress('0x00000000000000000000000000000000000000e5');
const LEAF = `0x${'ab'.repeat(32)}` as Hex;

function record(r: Partial<AuditRecord>): AuditRecord {
  return {
    owner: A,
    passes: 0,
    fails: 0,
    inconclusive: 0,
    slashes: 0,
    slashed: 0n,
    lastFailAt: null,
    lastSlashAt: null,
    lastEventBlock: 1n,
    ...r,
  };
}

describe('the routing factor of an audit history', () => {
  test('neutral when never audited, preferred when clean, excluded after a FAIL, penalised after', () => {
    const now = 1_000 * HOUR;
    expect(reputationFactor(undefined, now, policy)).toBe(1);
    expect(reputationFactor(record({ inconclusive: 3 }), now, policy)).toBe(1);
    const clean = [1, 8, 100].map((passes) => reputationFactor(record({ passes }), now, policy));
    expect(clean[0]).toBeGreaterThan(1);
    expect(clean[1]).toBeCloseTo(1.125);
    expect(clean[2]).toBeLessThanOrEqual(1.25);
    expect(clean[2]).toBeGreaterThan(clean[1]!);

    const failed = (at: number, passes = 0) =>
      record({ passes, fails: 1, slashes: 1, lastFailAt: at, lastSlashAt: at });
    expect(reputationFactor(failed(now - HOUR), now, policy)).toBe(0);
    expect(reputationFactor(failed(now - 23 * HOUR, 50), now, policy)).toBe(0);
    // After the cool-down: heavily penalised for the window, then the history term alone.
    expect(reputationFactor(failed(now - 25 * HOUR), now, policy)).toBeCloseTo((1 / 11) * 0.05);
    expect(reputationFactor(failed(now - 9 * 24 * HOUR), now, policy)).toBeCloseTo(1 / 11);
    // Many PASSes since live a FAIL down, but never above a clean history.
    const livedDown = reputationFactor(failed(now - 30 * 24 * HOUR, 200), now, policy);
    expect(livedDown).toBeGreaterThan(0.9);
    expect(livedDown).toBeLessThan(1);
    // A slash without a FAIL verdict (another slashing path) counts the same.
    expect(reputationFactor(record({ slashes: 1, lastSlashAt: now - HOUR }), now, policy)).toBe(0);
  });

  test('routing avoids a worker in its cool-down, and still uses it when nobody else can run the job', () => {
    const model = `0x${'01'.repeat(32)}` as Hex;
    const worker = (id: string, owner: Address): RoutableWorker => ({
      id,
      owner,
      operator: owner,
      bond: 10n ** 21n,
      models: new Map([[model, { maxConcurrency: 4, inFlight: 0 }]]),
    });
    const factors = new Map<string, number>([
      [A, 0],
      [B, 1],
    ]);
    const routing = createRouting({
      common: { logger: createLogger('silent') },
      storage: { workers: { get: async () => undefined, save: async () => {} } } as never,
      reputation: { factor: (owner) => factors.get(owner) ?? 1 },
    });
    const a = worker('a', A);
    const b = worker('b', B);
    for (let i = 0; i < 5; i++)
      expect(routing.pick([a, b], model, { exclude: new Set(), expectedTokens: 16 })?.id).toBe('b');
    expect(routing.pick([a], model, { exclude: new Set(), expectedTokens: 16 })?.id).toBe('a');
    factors.set(A, 1.2);
    expect(routing.pick([a, b], model, { exclude: new Set(), expectedTokens: 16 })?.id).toBe('a');
  });
});

describe('decoding Grid logs', () => {
  test('AuditFinalized verdicts and worker BondSlashed; anything else is ignored', () => {
    const verdict = (v: number) => ({
      blockNumber: 7n,
      logIndex: 2,
      topics: encodeEventTopics({
        abi: reputationAbi,
        eventName: 'AuditFinalized',
        args: { batchId: 5n, leaf: LEAF, worker: A },
      }) as Hex[],
      data: encodeAbiParameters([{ type: 'uint8' }, { type: 'uint256' }], [v, 123n]),
    });
    expect(decodeReputationLog(verdict(1))).toEqual({
      type: 'verdict',
      worker: A,
      verdict: 'pass',
      batchId: 5n,
      leaf: LEAF,
      slashed: 123n,
      blockNumber: 7n,
      logIndex: 2,
    });
    expect(decodeReputationLog(verdict(2))).toMatchObject({ verdict: 'fail' });
    expect(decodeReputationLog(verdict(3))).toMatchObject({ verdict: 'inconclusive' });
    expect(decodeReputationLog(verdict(0))).toBeUndefined();
    expect(decodeReputationLog(verdict(9))).toBeUndefined();
    const slash = (role: number) => ({
      blockNumber: 8n,
      logIndex: 0,
      topics: encodeEventTopics({
        abi: reputationAbi,
        eventName: 'BondSlashed',
        args: { role, owner: B },
      }) as Hex[],
      data: encodeAbiParameters([{ type: 'uint256' }], [10n ** 18n]),
    });
    expect(decodeReputationLog(slash(0))).toEqual({
      type: 'slash',
      worker: B,
      amount: 10n ** 18n,
      blockNumber: 8n,
      logIndex: 0,
    });
    expect(decodeReputationLog(slash(1))).toBeUndefined(); // a validator's bond
    expect(
      decodeReputationLog({ blockNumber: 1n, logIndex: 0, topics: [`0x${'12'.repeat(32)}`], data: '0x' }),
    ).toBeUndefined();
    expect(decodeReputationLog({ ...verdict(1), blockNumber: null })).toBeUndefined(); // pending
  });

  test('the events are those of IAudit.sol and IBonding.sol', () => {
    expect(reputationAbi.map((e) => toEventSelector(e))).toEqual([
      toEventSelector(
        'event AuditFinalized(uint256 indexed batchId, bytes32 indexed leaf, address indexed worker, uint8 verdict, uint256 slashed)',
      ),
      toEventSelector('event BondSlashed(uint8 indexed role, address indexed owner, uint256 amount)'),
    ]);
  });
});

/**
 * Runtime code that emits `LOG4` with the calldata's topics and data, or `LOG3` when its first word
 * is 3. Calldata: uint256 n, n topics, then the data.
 */
function emitterCode(): Hex {
  const log = (n: 3 | 4) => {
    const topics: string[] = [];
    for (let i = n; i >= 1; i--) topics.push(`60${(i * 32).toString(16).padStart(2, '0')}35`); // PUSH1 off CALLDATALOAD
    const dataOffset = ((n + 1) * 32).toString(16).padStart(2, '0');
    return [
      ...topics,
      `60${dataOffset}3603`, // size = CALLDATASIZE - dataOffset
      `8060${dataOffset}600037`, // CALLDATACOPY(0, dataOffset, size)
      '6000', // offset 0
      n === 4 ? 'a4' : 'a3',
      '00',
    ].join('');
  };
  const log4 = log(4);
  const header = (jump: number) =>
    `600035600314 60${jump.toString(16).padStart(2, '0')} 57`.replace(/ /g, '');
  const jump = header(0).length / 2 + log4.length / 2;
  return `0x${header(jump)}${log4}5b${log(3)}`;
}

describe('following the chain', () => {
  const EMITTER = '0x00000000000000000000000000000000000a0d17' as Address;
  const deployer = privateKeyToAccount('0xac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80');
  let anvil: StartAnvilReturnType;
  let client: ReturnType<typeof makeClient>;
  let db: Database;
  let startBlock: bigint;
  let clock = 0;
  const stops: (() => Promise<void>)[] = [];

  function makeClient(rpcUrl: string) {
    return createTestClient({ mode: 'anvil', transport: http(rpcUrl) }).extend(publicActions);
  }
  const wallet = () => createWalletClient({ account: deployer, transport: http(anvil.rpcUrl) });

  async function emit(topics: Hex[], data: Hex) {
    const hash = await wallet().sendTransaction({
      chain: null,
      to: EMITTER,
      data: concat([pad(numberToHex(topics.length)), ...topics, data]),
    });
    const receipt = await client.waitForTransactionReceipt({ hash });
    expect(receipt.logs).toHaveLength(1);
    return receipt;
  }
  const verdict = (worker: Address, v: 'pass' | 'fail' | 'inconclusive') =>
    emit(
      encodeEventTopics({
        abi: reputationAbi,
        eventName: 'AuditFinalized',
        args: { batchId: 1n, leaf: LEAF, worker },
      }) as Hex[],
      encodeAbiParameters(
        [{ type: 'uint8' }, { type: 'uint256' }],
        [{ pass: 1, fail: 2, inconclusive: 3 }[v], v === 'fail' ? 10n ** 20n : 0n],
      ),
    );
  const slash = (owner: Address, role: 0 | 1) =>
    emit(
      encodeEventTopics({ abi: reputationAbi, eventName: 'BondSlashed', args: { role, owner } }) as Hex[],
      encodeAbiParameters([{ type: 'uint256' }], [10n ** 20n]),
    );

  /**
   * A gateway's pair on `db`: the network indexer (the one follower of the Grid's logs) and reputation, which
   * counts what that indexer stores. Two pairs on one database are two gateway processes.
   */
  function follower(
    options: Partial<Parameters<typeof createReputation>[0]['options']> & {
      /** The indexer's first block and log range. */
      fromBlock?: number | undefined;
      maxBlockRange?: number;
    } = {},
    grid = EMITTER,
  ) {
    const network = createNetwork({
      db,
      publicClient: client,
      deployment: {
        grid,
        chainId: anvil.chainId,
        deployBlock: 'fromBlock' in options ? options.fromBlock : Number(startBlock),
      },
      options: { indexer: { maxBlockRange: options.maxBlockRange ?? 2, confirmations: 0 } },
    });
    const rep = createReputation({
      common: { logger: createLogger('silent'), metrics: createMetrics() },
      db,
      grid,
      chainId: anvil.chainId,
      source: () => network,
      options: {
        enabled: true,
        pollIntervalMs: 60_000,
        ...policy,
        ...(({ fromBlock: _from, maxBlockRange: _range, ...rest }) => rest)(options),
      },
      now: () => clock,
    });
    stops.push(async () => {
      await rep.stop();
      await network.stop();
    });
    return Object.assign(rep, { network });
  }

  beforeAll(async () => {
    anvil = await startAnvil();
    client = makeClient(anvil.rpcUrl);
    await client.setCode({ address: EMITTER, bytecode: emitterCode() });
    db = await openDatabase({ url: undefined, dir: 'memory://', schema: 'public', poolSize: 1 });
    await migrate(db);
    await migrateNetwork(db);
    startBlock = await client.getBlockNumber({ cacheTime: 0 });
  });

  afterAll(async () => {
    for (const s of stops) await s();
    await db?.close();
    await anvil?.stop();
  });

  test('counts verdicts and worker slashes in bounded ranges, resumes from its cursor, never counts twice', async () => {
    for (let i = 0; i < 3; i++) await verdict(A, 'pass');
    await slash(B, 0);
    const failed = await verdict(B, 'fail');
    await verdict(C, 'inconclusive');
    await slash(D, 1); // a validator: not routing's business
    await emit(
      [`0x${'99'.repeat(32)}`, `0x${'98'.repeat(32)}`, `0x${'97'.repeat(32)}`, `0x${'96'.repeat(32)}`],
      '0x',
    ); // another event
    const failedAt = Number((await client.getBlock({ blockNumber: failed.blockNumber })).timestamp) * 1000;

    const rep = follower();
    await rep.start();
    expect(await rep.syncNow()).toBe(6);
    expect(rep.status()).toMatchObject({
      fromBlock: startBlock,
      syncedBlock: await client.getBlockNumber({ cacheTime: 0 }),
    });
    expect(rep.record(A)).toMatchObject({ passes: 3, fails: 0, slashes: 0 });
    expect(rep.record(B)).toMatchObject({
      passes: 0,
      fails: 1,
      slashes: 1,
      slashed: 10n ** 20n,
      lastFailAt: failedAt,
    });
    expect(rep.record(C)).toMatchObject({ inconclusive: 1 });
    expect(rep.record(D)).toBeUndefined();

    clock = failedAt + HOUR;
    expect(rep.factor(A)).toBeCloseTo(1 + (0.25 * 3) / 11);
    expect(rep.factor(B)).toBe(0);
    expect(rep.factor(C)).toBe(1);
    expect(rep.factor(E)).toBe(1);
    clock = failedAt + 25 * HOUR;
    expect(rep.factor(B)).toBeCloseTo((1 / 11) * 0.05);
    clock = failedAt + 9 * 24 * HOUR;
    expect(rep.factor(B)).toBeCloseTo(1 / 11);

    // Nothing new: nothing counted again.
    expect(await rep.syncNow()).toBe(0);
    expect(rep.record(A)?.passes).toBe(3);

    // A restart (another process on the same database) starts from the stored counts and cursor.
    const again = follower();
    await again.start();
    expect(again.record(A)?.passes).toBe(3);
    expect(again.record(B)?.fails).toBe(1);
    await verdict(A, 'pass');
    // One of them indexes the verdict's block (once: the indexers share one cursor); each reads it from the
    // stored events and counts it once, and nothing more on a later look.
    expect(await again.syncNow()).toBe(1);
    expect(await rep.syncNow()).toBe(1);
    expect(await again.syncNow()).toBe(0);
    expect(await rep.syncNow()).toBe(0);
    expect(again.record(A)?.passes).toBe(4);
    expect(rep.record(A)?.passes).toBe(4);
    const stored = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM network_events WHERE name = 'AuditFinalized' AND account = $1`,
      [A.toLowerCase()],
    );
    expect(stored[0]?.n).toBe(4);
  });

  test('a chain that lost the blocks it counted (reorg, restarted devnet) is recounted', async () => {
    const rep = follower();
    await rep.start();
    await rep.syncNow();
    const snapshot = await client.snapshot();
    await verdict(E, 'fail');
    await rep.syncNow();
    expect(rep.record(E)?.fails).toBe(1);
    await client.revert({ id: snapshot });
    await client.mine({ blocks: 3 });
    await rep.syncNow();
    expect(rep.record(E)).toBeUndefined();
    expect(rep.record(A)?.passes).toBe(4); // everything still on the chain is counted again
  });

  test('a new Grid (another deployment) starts over', async () => {
    const other = '0x00000000000000000000000000000000000b0d17' as Address;
    await client.setCode({ address: other, bytecode: emitterCode() });
    const rep = follower({ fromBlock: undefined, maxBlockRange: 1_000 }, other);
    await rep.start();
    expect(rep.record(A)).toBeUndefined(); // what is stored is another Grid's: not this one's history
    await rep.syncNow();
    expect(rep.record(A)).toBeUndefined();
    expect(rep.status().fromBlock).toBeGreaterThan(startBlock);
  });
});

describe('a FAIL verdict of the real AuditFacet', () => {
  let grid: TestGrid;
  let gw: StartGatewayReturnType;
  let key: string;
  const workers: ScriptedWorker[] = [];

  beforeAll(async () => {
    grid = await startTestGrid();
    // Every receipt audited by the one validator; a worker slash small enough to keep B's bond active.
    const { audit } = await getGridParams(grid.publicClient, { grid: grid.grid });
    const config = {
      ...audit,
      auditRateBps: 10_000,
      validatorsPerAudit: 1,
      quorum: 1,
      randomnessDelay: 1,
      workerSlashAmount: parseAipg('10'),
    };
    // A rule change is announced, waits the cut delay, then applies (within the change window).
    const owner = grid.client(roles.owner.privateKey);
    const { executableAt } = await announceAuditConfig(owner, { grid: grid.grid, config });
    const test = createTestClient({ mode: 'anvil', transport: http(grid.rpcUrl) });
    await test.setNextBlockTimestamp({ timestamp: BigInt(executableAt) });
    await test.mine({ blocks: 1 });
    await setAuditConfig(owner, { grid: grid.grid, config });
    const options = testGatewayOptions(grid, { 'audit.maxSkewSec': 3_600 });
    gw = await startGateway(options, { logger: createLogger(options.log.level) });
    for (const [owner, operator] of [
      [roles.workerA, roles.operatorA],
      [roles.workerB, roles.operatorB],
    ] as const) {
      const w = new ScriptedWorker({
        url: gw.workerUrl,
        operatorKey: operator.privateKey,
        owner: owner.address,
        models: [MODEL],
      });
      await w.connect();
      workers.push(w);
    }
    key = await createApiKey(gw, roles.payer.privateKey);
  });

  afterAll(async () => {
    for (const w of workers) await w.close();
    const options = gw?.common.options;
    await gw?.stop();
    if (options) await dropTestSchema(options);
    await grid?.stop();
  });

  async function complete(pin?: Address) {
    const res = await fetch(`${gw.url}/v1/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: MODEL.name,
        prompt: 'audit me',
        max_tokens: 3,
        ...(pin ? { grid: { workers: [pin] } } : {}),
      }),
    });
    expect(res.status).toBe(200);
    return ((await res.json()) as { grid: { job_id: Hex; worker: Address } }).grid;
  }

  test('slashes the worker; the gateway then routes around it (and never lets it cross-check)', async () => {
    const job = await complete(roles.workerB.address);
    expect(job.worker).toBe(roles.workerB.address);
    await gw.settleNow();

    // The validator's path: the settled batch from the audit API, randomness, attestation, verdict.
    const validator = privateKeyToAccount(roles.validatorOperator.privateKey);
    const evidencePath = `/v1/audit/jobs/${job.job_id}`;
    let ts = Math.floor(Date.now() / 1000);
    const sign = async (method: string, path: string) => {
      ts += 1;
      return {
        [AUDIT_HEADERS.validator]: validator.address,
        [AUDIT_HEADERS.timestamp]: String(ts),
        [AUDIT_HEADERS.signature]: await validator.signMessage({
          message: auditRequestMessage({ method, path, timestamp: ts, gateway: gw.gateway }),
        }),
      };
    };
    const ev = (await (
      await gw.app.request(evidencePath, { headers: await sign('GET', evidencePath) })
    ).json()) as {
      batch: { root: Hex; batch_id: string };
    };
    const batchPath = `/v1/audit/batches/${ev.batch.root}`;
    const listing = (await (
      await gw.app.request(batchPath, { headers: await sign('GET', batchPath) })
    ).json()) as {
      batch_id: string;
      receipts: { job_id: Hex; leaf: Hex; receipt: ReceiptJson; signature: Hex; proof: Hex[] }[];
    };
    const batchId = BigInt(listing.batch_id);
    const entry = listing.receipts.find((r) => r.job_id === job.job_id)!;
    const test = createTestClient({ mode: 'anvil', transport: http(grid.rpcUrl) });
    await test.mine({ blocks: 2 });
    await fixRandomness(grid.client(roles.payer.privateKey), { grid: grid.grid, batchId });
    expect(
      await isAudited(grid.publicClient, {
        grid: grid.grid,
        batchId,
        leaf: entry.leaf,
        worker: roles.workerB.address,
      }),
    ).toBe(true);
    // Commit, then reveal once the commit window has closed: the vote stays hidden until then.
    const evidenceHash = keccak256(toHex('truncated'));
    const salt = keccak256(toHex('salt'));
    const validatorOwner = roles.validator.address;
    await commitVote(grid.client(roles.validatorOperator.privateKey), {
      grid: grid.grid,
      batchId,
      receipt: receiptFromJson(entry.receipt),
      signature: entry.signature,
      proof: entry.proof,
      commitment: voteCommitment({
        leaf: entry.leaf,
        validator: validatorOwner,
        vote: 'fail',
        evidenceHash,
        salt,
      }),
    });
    const windows = await getBatchAudit(grid.publicClient, { grid: grid.grid, batchId });
    await test.setNextBlockTimestamp({ timestamp: BigInt(windows.deadline + 1) });
    await test.mine({ blocks: 1 });
    await revealVote(grid.client(roles.validatorOperator.privateKey), {
      grid: grid.grid,
      leaf: entry.leaf,
      vote: 'fail',
      evidenceHash,
      salt,
    });
    await test.setNextBlockTimestamp({ timestamp: BigInt(windows.revealDeadline + 1) });
    await test.mine({ blocks: 1 });
    const verdict = await finalizeAudit(grid.client(roles.payer.privateKey), {
      grid: grid.grid,
      leaf: entry.leaf,
    });
    expect(verdict).toMatchObject({
      verdict: 'fail',
      worker: roles.workerB.address,
      slashed: parseAipg('10'),
    });

    await gw.reputation!.syncNow();
    expect(gw.reputation!.record(roles.workerB.address)).toMatchObject({ fails: 1, slashes: 1, passes: 0 });
    expect(gw.reputation!.factor(roles.workerB.address)).toBe(0);
    expect(gw.reputation!.factor(roles.workerA.address)).toBe(1);

    // B holds four times A's stake, yet gets nothing while A can run the job…
    for (let i = 0; i < 6; i++) expect((await complete()).worker).toBe(roles.workerA.address);
    // …unless nobody else can (pinned here).
    expect((await complete(roles.workerB.address)).worker).toBe(roles.workerB.address);
    // Nor is it drawn to cross-check another worker's job while someone else can.
    for (let i = 0; i < 4; i++) {
      const res = await gw.app.request('/v1/audit/score', {
        method: 'POST',
        headers: { ...(await sign('POST', '/v1/audit/score')), 'content-type': 'application/json' },
        body: JSON.stringify({
          job_id: `0x${'42'.repeat(32)}`,
          model_id: MODEL_ID,
          prompt_token_ids: [1],
          output_token_ids: [2],
          top_k: 1,
          exclude_worker: roles.payer.address,
        }),
      });
      expect(((await res.json()) as { worker: Address }).worker).toBe(roles.workerA.address);
    }
  });
});
