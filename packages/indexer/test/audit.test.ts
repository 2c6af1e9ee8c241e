import {
  announceAuditConfig,
  anvilTestAccounts,
  approveToken,
  bond,
  commitVote,
  createGridClients,
  deposit,
  finalizeAudit,
  fixRandomness,
  getAssignedValidators,
  getNextReceiptSeq,
  increaseGatewayCap,
  reportGatewayFault,
  revealVote,
  type StartDevChainReturnType,
  settleBatch,
  startDevChain,
  voteCommitment,
} from '@aipg/chain';
import {
  buildReceiptTree,
  CANONICAL_SAMPLER,
  computeModelId,
  computeOutputHash,
  computeRequestHash,
  parseAipg,
  type Receipt,
  receiptLeafHash,
  receiptTypedData,
} from '@aipg/core';
import { createTestClient, type Hex, http, keccak256, toHex } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import type { Database } from '../../gateway/test/helpers/database.ts';
import { createNetwork, type Network } from '../src/index.ts';
import type { GatewayItem } from '../src/queries.ts';
import { openTestDb, rpc } from './helpers.ts';

// The REAL AuditFacet on anvil (every receipt audited, k = 3 of 3 validators, quorum 2): one batch of two
// signed receipts; receipt 0 gets FAIL, FAIL and a false PASS (verdict FAIL), receipt 1 three PASS votes.
// Votes are committed, then revealed after the commit deadline; the indexer serves both per audit.
const [, workerOwner, workerOperator, v1, v2, v3, payer, gateway, stranger] = anvilTestAccounts;
const validators = [v1, v2, v3];

let chain: StartDevChainReturnType;
let network: Network;
let db: Database;

const clientFor = (account: (typeof anvilTestAccounts)[number]) =>
  createGridClients({
    rpcUrl: chain.anvil.rpcUrl,
    chainId: chain.anvil.chainId,
    account: privateKeyToAccount(account.privateKey),
    pollingInterval: 50,
  }).walletClient!;

async function mine(blocks: number, seconds = 0) {
  const t = createTestClient({ mode: 'anvil', transport: http(chain.anvil.rpcUrl) });
  if (seconds > 0) await t.increaseTime({ seconds });
  await t.mine({ blocks });
}

async function get<T>(path: string): Promise<T> {
  const res = await network.router.request(path);
  expect(res.status, path).toBe(200);
  return (await res.json()) as T;
}

type AmountJson = { wei: string; aipg: string };

beforeAll(async () => {
  chain = await startDevChain({ init: { audit: { auditRateBps: 10_000 } } });
  const { grid, token } = chain.deployment;
  const w = clientFor(workerOwner);
  await approveToken(w, { token, spender: grid, amount: parseAipg('2000') });
  await bond(w, { grid, role: 'worker', amount: parseAipg('2000'), operator: workerOperator.address });
  for (const v of validators) {
    const c = clientFor(v);
    await approveToken(c, { token, spender: grid, amount: parseAipg('10000') });
    await bond(c, { grid, role: 'validator', amount: parseAipg('10000') });
  }
  const p = clientFor(payer);
  await approveToken(p, { token, spender: grid, amount: parseAipg('1000') });
  await deposit(p, { grid, amount: parseAipg('1000') });
  await increaseGatewayCap(p, { grid, gateway: gateway.address, amount: parseAipg('1000') });

  db = await openTestDb();
  network = createNetwork({
    db,
    publicClient: createGridClients({ rpcUrl: chain.anvil.rpcUrl, chainId: chain.anvil.chainId })
      .publicClient,
    deployment: { grid, chainId: chain.anvil.chainId, deployBlock: chain.deployment.deployBlock },
    options: { indexer: { maxBlockRange: 50 }, cacheMs: 0 },
  });
  await network.migrate();
}, 120_000);

afterAll(async () => {
  await network?.stop();
  await db?.close();
  await chain?.stop();
});

describe('audits in the network indexer (real AuditFacet)', () => {
  test('attestations, verdicts, rewards and false-attestation slashes reach validators, workers, operator and activity', async () => {
    const { grid } = chain.deployment;
    const modelId = computeModelId('tiny-llama', keccak256(toHex('weights')));
    const sampling = { maxTokens: 16, temperature: 0, topP: 1, seed: 7, stop: [] };
    const readClient = createGridClients({
      rpcUrl: chain.anvil.rpcUrl,
      chainId: chain.anvil.chainId,
    }).publicClient;
    const firstSeq = await getNextReceiptSeq(readClient, { grid, gateway: gateway.address });
    const receipts: Receipt[] = [1, 2].map((i) => ({
      jobId: keccak256(toHex(`network-audit-job-${i}`)),
      gateway: gateway.address,
      payer: payer.address,
      worker: workerOwner.address,
      modelId,
      requestHash: computeRequestHash([1, 2, 3, i], sampling, CANONICAL_SAMPLER),
      outputHash: computeOutputHash([4, 5, i], 'stop'),
      inputUnits: 4n,
      outputUnits: 3n,
      fee: parseAipg('1'),
      completedAt: 1_800_000_000n + BigInt(i),
      confidential: false,
      seq: firstSeq + BigInt(i - 1),
    }));
    const operator = privateKeyToAccount(workerOperator.privateKey);
    const signatures = await Promise.all(
      receipts.map((r) => operator.signTypedData(receiptTypedData(r, chain.anvil.chainId, grid))),
    );
    const tree = buildReceiptTree(receipts);
    const total = receipts.reduce((s, r) => s + r.fee, 0n);
    const { batchId } = await settleBatch(clientFor(gateway), {
      grid,
      root: tree.root as Hex,
      firstSeq,
      receiptCount: receipts.length,
      debits: [{ payer: payer.address, amount: total }],
      credits: [{ worker: workerOwner.address, gross: total }],
    });
    await mine(chain.deployment.params.audit!.randomnessDelay);
    await fixRandomness(clientFor(stranger), { grid, batchId });

    const leaves = receipts.map((r) => receiptLeafHash(r));
    for (const leaf of leaves) {
      const assigned = await getAssignedValidators(
        createGridClients({ rpcUrl: chain.anvil.rpcUrl, chainId: chain.anvil.chainId }).publicClient,
        { grid, batchId, leaf },
      );
      expect([...assigned].sort()).toEqual(validators.map((v) => v.address).sort());
    }
    const votes = [
      ['fail', 'pass', 'fail'],
      ['pass', 'pass', 'pass'],
    ] as const;
    const salt = (i: number, j: number) => keccak256(toHex(`salt ${i} ${j}`));
    const evidenceHash = keccak256(toHex('report'));
    // Receipt 0: all three commit; receipt 1: two commit first (the third later).
    const commitOf = async (i: number, j: number) =>
      commitVote(clientFor(validators[j]!), {
        grid,
        batchId,
        receipt: receipts[i]!,
        signature: signatures[i]!,
        proof: tree.getProof(i) as Hex[],
        commitment: voteCommitment({
          leaf: leaves[i]!,
          validator: validators[j]!.address,
          vote: votes[i]![j]!,
          evidenceHash,
          salt: salt(i, j),
        }),
      });
    for (const j of [0, 1, 2]) await commitOf(0, j);
    for (const j of [0, 1]) await commitOf(1, j);
    await network.indexer.syncNow();
    type AuditJson = {
      leaf: string;
      worker: string;
      seats: string[];
      committed: string[];
      revealed: { validator: string; vote: string | null }[];
      counts: { seats: number; committed: number; revealed: number };
      commit_deadline: string | null;
      verdict: string | null;
    };
    const audits0 = await get<{ data: AuditJson[] }>('/audits');
    const byLeaf0 = Object.fromEntries(audits0.data.map((a) => [a.leaf, a]));
    expect(byLeaf0[leaves[0]!]).toMatchObject({
      worker: workerOwner.address,
      counts: { seats: 3, committed: 3, revealed: 0 },
      verdict: null,
    });
    expect(byLeaf0[leaves[0]!]!.commit_deadline).not.toBeNull();
    expect([...byLeaf0[leaves[0]!]!.seats].sort()).toEqual(validators.map((v) => v.address).sort());
    expect(byLeaf0[leaves[1]!]).toMatchObject({
      counts: { seats: 3, committed: 2, revealed: 0 },
      committed: [v1.address, v2.address],
    });
    await commitOf(1, 2);

    await mine(1, chain.deployment.params.audit!.commitWindow + 1);
    for (const [i] of receipts.entries())
      for (const [j, v] of validators.entries())
        if (!(i === 1 && j === 2))
          await revealVote(clientFor(v), {
            grid,
            leaf: leaves[i]!,
            vote: votes[i]![j]!,
            evidenceHash,
            salt: salt(i, j),
          });
    await network.indexer.syncNow();
    const audits1 = await get<{ data: AuditJson[] }>('/audits');
    const byLeaf1 = Object.fromEntries(audits1.data.map((a) => [a.leaf, a]));
    expect(byLeaf1[leaves[0]!]!.counts).toEqual({ seats: 3, committed: 3, revealed: 3 });
    expect(byLeaf1[leaves[1]!]!.counts).toEqual({ seats: 3, committed: 3, revealed: 2 });
    expect(byLeaf1[leaves[0]!]!.revealed).toEqual(
      validators.map((v, j) => ({ validator: v.address, vote: votes[0]![j] })),
    );
    const open = await get<{
      data: { address: string; audits: { committed: number; done: number; pending: number } }[];
    }>('/validators');
    const openBy = Object.fromEntries(open.data.map((v) => [v.address, v.audits]));
    expect(openBy[v1.address]).toMatchObject({ committed: 2, done: 2, pending: 2 });
    expect(openBy[v3.address]).toMatchObject({ committed: 2, done: 1, pending: 1 });
    // v3 reveals its second vote too before the reveal deadline.
    await revealVote(clientFor(v3), {
      grid,
      leaf: leaves[1]!,
      vote: votes[1]![2]!,
      evidenceHash,
      salt: salt(1, 2),
    });

    await mine(1, chain.deployment.params.audit!.revealWindow + 1);
    for (const leaf of leaves) await finalizeAudit(clientFor(stranger), { grid, leaf });
    await network.indexer.syncNow();

    const slash = parseAipg('100');
    const finder = (slash * 5_000n) / 10_000n / 2n; // two FAIL voters share half the worker slash
    const pass = parseAipg('0.01');
    const falseSlash = parseAipg('500');

    type V = {
      address: string;
      audits: {
        done: number;
        agreed: number;
        agreement_rate: number | null;
        rewards: { count: number; amount: AmountJson };
        false_attestations: { count: number; amount: AmountJson };
      };
      rewards: { earned: AmountJson };
      slashes: { count: number };
    };
    const vs = await get<{ audits_enabled: boolean; data: V[] }>('/validators');
    expect(vs.audits_enabled).toBe(true);
    const byV = Object.fromEntries(vs.data.map((v) => [v.address, v]));
    for (const v of [v1, v3]) {
      const a = byV[v.address]!;
      expect(a.audits).toMatchObject({ done: 2, agreed: 2, agreement_rate: 1 });
      expect(a.audits.rewards).toMatchObject({ count: 2, amount: { wei: (finder + pass).toString() } });
      expect(a.audits.false_attestations.count).toBe(0);
      expect(a.rewards.earned.wei).toBe((finder + pass).toString());
    }
    const b = byV[v2.address]!;
    expect(b.audits).toMatchObject({ done: 2, agreed: 1, agreement_rate: 0.5 });
    expect(b.audits.rewards.amount.wei).toBe(pass.toString());
    expect(b.audits.false_attestations).toMatchObject({ count: 1, amount: { wei: falseSlash.toString() } });
    expect(b.slashes.count).toBe(1);

    const ws = await get<{
      data: {
        address: string;
        audits: { total: number; passed: number; failed: number; pass_rate: number | null };
        slashes: { count: number };
      }[];
    }>('/workers');
    const worker = ws.data.find((w) => w.address === workerOwner.address)!;
    expect(worker.audits).toMatchObject({ total: 2, passed: 1, failed: 1, pass_rate: 0.5 });
    expect(worker.slashes.count).toBe(1);

    const op = await get<{
      audits: { recent: { role: string; verdict: string; vote: string | null; agreed: boolean | null }[] };
    }>(`/operators/${v2.address}`);
    expect(op.audits.recent).toHaveLength(2);
    expect(op.audits.recent.map((r) => [r.verdict, r.vote, r.agreed]).sort()).toEqual([
      ['fail', 'pass', false],
      ['pass', 'pass', true],
    ]);
    const wop = await get<{ audits: { recent: { role: string; verdict: string }[] } }>(
      `/operators/${workerOwner.address}`,
    );
    expect(wop.audits.recent.map((r) => `${r.role}:${r.verdict}`).sort()).toEqual([
      'worker:fail',
      'worker:pass',
    ]);

    const activity = await get<{
      data: { type: string; kind: string; account: string; details: Record<string, unknown> }[];
    }>('/activity?limit=200');
    const attested = activity.data.filter((i) => i.type === 'attested');
    expect(attested).toHaveLength(6);
    expect(attested.every((i) => i.kind === 'attestation')).toBe(true);
    expect(new Set(attested.map((i) => i.account))).toEqual(new Set(validators.map((v) => v.address)));
    const verdicts = activity.data.filter((i) => i.type === 'audit_finalized');
    expect(verdicts.map((i) => Number(i.details.verdict)).sort()).toEqual([1, 2]);
    expect(verdicts.every((i) => i.account === workerOwner.address)).toBe(true);
    const falseAttestations = activity.data.filter((i) => i.type === 'false_attestation_slashed');
    expect(falseAttestations.map((i) => i.account)).toEqual([v2.address]);
    expect(activity.data.filter((i) => i.type === 'validator_rewarded')).toHaveLength(5);

    expect(activity.data.filter((i) => i.type === 'vote_committed')).toHaveLength(6);
    expect(activity.data.filter((i) => i.type === 'audit_opened')).toHaveLength(2);

    const summary = await get<{ slashes: { count: number } }>('/summary');
    expect(summary.slashes.count).toBe(2); // the worker's FAIL slash and v2's false attestation, once each
  }, 120_000);

  test('gateway fault reports: counted per gateway and reason, in the activity feed, rewound on a reorg, decoded again after an upgrade', async () => {
    const { grid } = chain.deployment;
    const readClient = createGridClients({
      rpcUrl: chain.anvil.rpcUrl,
      chainId: chain.anvil.chainId,
    }).publicClient;
    const modelId = computeModelId('tiny-llama', keccak256(toHex('weights')));
    const sampling = { maxTokens: 16, temperature: 0, topP: 1, seed: 7, stop: [] };
    const firstSeq = await getNextReceiptSeq(readClient, { grid, gateway: gateway.address });
    const receipts: Receipt[] = [1, 2, 3].map((i) => ({
      jobId: keccak256(toHex(`network-fault-job-${i}`)),
      gateway: gateway.address,
      payer: payer.address,
      worker: workerOwner.address,
      modelId,
      requestHash: computeRequestHash([9, 8, i], sampling, CANONICAL_SAMPLER),
      outputHash: computeOutputHash([7, i], 'stop'),
      inputUnits: 3n,
      outputUnits: 2n,
      fee: parseAipg('1'),
      completedAt: 1_800_000_100n + BigInt(i),
      confidential: false,
      seq: firstSeq + BigInt(i - 1),
    }));
    const tree = buildReceiptTree(receipts);
    const { batchId } = await settleBatch(clientFor(gateway), {
      grid,
      root: tree.root as Hex,
      firstSeq,
      receiptCount: receipts.length,
      debits: [{ payer: payer.address, amount: parseAipg('3') }],
      credits: [{ worker: workerOwner.address, gross: parseAipg('3') }],
    });
    await mine(chain.deployment.params.audit!.randomnessDelay);
    await fixRandomness(clientFor(stranger), { grid, batchId });
    const leaves = receipts.map((r) => receiptLeafHash(r));
    const report = (v: (typeof anvilTestAccounts)[number], i: number, reason: string) =>
      reportGatewayFault(clientFor(v), {
        grid,
        batchId,
        leaf: leaves[i]!,
        proof: tree.getProof(i) as Hex[],
        reason,
        evidenceHash: keccak256(toHex(`evidence ${v.address} ${i}`)),
      });
    // v2 was slashed below the minimum above: v1 and v3 are the active validators.
    await report(v1, 0, 'RECEIPT_REQUEST_HASH');
    await report(v3, 0, 'PROMPT_MISMATCH');
    const last = await report(v1, 1, 'RECEIPT_REQUEST_HASH');
    await network.indexer.syncNow();

    const gateways = await get<{ object: string; data: GatewayItem[] }>('/gateways');
    expect(gateways.object).toBe('list');
    expect(gateways.data).toHaveLength(1);
    const g = gateways.data[0]!;
    expect(g.address).toBe(gateway.address);
    expect(g.batches).toMatchObject({ count: 2, receipts: '5', last_batch_id: batchId.toString() });
    expect(g.batches.total.wei).toBe(parseAipg('5').toString());
    expect(g.faults).toMatchObject({
      reports: 3,
      receipts: 2,
      validators: 2,
      batches: 1,
      by_reason: [
        { reason: 'RECEIPT_REQUEST_HASH', count: 2 },
        { reason: 'PROMPT_MISMATCH', count: 1 },
      ],
    });
    expect(g.faults.latest.map((f) => [f.validator, f.leaf, f.reason])).toEqual([
      [v1.address, leaves[1], 'RECEIPT_REQUEST_HASH'],
      [v3.address, leaves[0], 'PROMPT_MISMATCH'],
      [v1.address, leaves[0], 'RECEIPT_REQUEST_HASH'],
    ]);
    expect(g.faults.latest[0]).toMatchObject({
      batch_id: batchId.toString(),
      block: Number(last.blockNumber),
      tx: last.hash,
    });
    expect((await get<{ data: GatewayItem[] }>('/gateways?reports=1')).data[0]!.faults.latest).toHaveLength(
      1,
    );
    const bad = await network.router.request('/gateways?reports=51');
    expect(bad.status).toBe(400);

    // the activity feed: about the gateway, by the validator, with the decoded code
    type Item = {
      type: string;
      kind: string;
      account: string;
      related: string;
      batch_id: string;
      details: Record<string, unknown>;
    };
    const activity = await get<{ data: Item[] }>('/activity?kind=audit&limit=200');
    const reported = activity.data.filter((i) => i.type === 'gateway_fault_reported');
    expect(reported).toHaveLength(3);
    expect(reported[0]).toMatchObject({
      kind: 'audit',
      account: gateway.address,
      related: v1.address,
      batch_id: batchId.toString(),
      details: { event: 'GatewayFaultReported', reason_code: 'RECEIPT_REQUEST_HASH', leaf: leaves[1] },
    });
    const byV3 = await get<{ data: Item[] }>(`/activity?address=${v3.address}&limit=200`);
    expect(byV3.data.filter((i) => i.type === 'gateway_fault_reported')).toHaveLength(1);
    // in the default feed too
    const feed = await get<{ data: Item[] }>('/activity?limit=200');
    expect(feed.data.filter((i) => i.type === 'gateway_fault_reported')).toHaveLength(3);

    // A reorg drops a report: the branch with it is replaced, the counts follow.
    const snapshot = await rpc<Hex>(chain.anvil.rpcUrl, 'anvil_snapshot');
    await report(v3, 2, 'FEE_MISMATCH');
    await network.indexer.syncNow();
    expect((await get<{ data: GatewayItem[] }>('/gateways')).data[0]!.faults.reports).toBe(4);
    const reorgsBefore = network.indexer.status().reorgs;
    await rpc(chain.anvil.rpcUrl, 'anvil_revert', [snapshot]);
    await rpc(chain.anvil.rpcUrl, 'anvil_mine', ['0x3']);
    await network.indexer.syncNow();
    expect(network.indexer.status().reorgs).toBe(reorgsBefore + 1);
    const after = (await get<{ data: GatewayItem[] }>('/gateways')).data[0]!;
    expect(after.faults.reports).toBe(3);
    expect(after.faults.by_reason.map((r) => r.reason)).not.toContain('FEE_MISMATCH');

    // A database written by a build that did not know the event (kept raw) is decoded again at start.
    await db.query(
      `UPDATE network_events SET name = NULL, kind = 'unknown', account = NULL, related = NULL, batch_id = NULL,
         args = '{}'::jsonb WHERE name = 'GatewayFaultReported'`,
    );
    await db.query('DELETE FROM network_gateway_faults');
    const older = createNetwork({
      db,
      publicClient: readClient,
      deployment: { grid, chainId: chain.anvil.chainId, deployBlock: chain.deployment.deployBlock },
      options: { cacheMs: 0 },
    });
    expect((await get<{ data: GatewayItem[] }>('/gateways')).data[0]!.faults.reports).toBe(0);
    await older.indexer.syncNow();
    await older.stop();
    const again = (await get<{ data: GatewayItem[] }>('/gateways')).data[0]!;
    expect(again.faults).toMatchObject({ reports: 3, receipts: 2, validators: 2 });
    const decoded = await db.query<{ account: string; related: string }>(
      `SELECT account, related FROM network_events WHERE name = 'GatewayFaultReported'`,
    );
    expect(decoded.every((r) => r.account === gateway.address.toLowerCase())).toBe(true);
  }, 120_000);

  test('governance: the owner and an announced audit config, pending until executed', async () => {
    const { grid } = chain.deployment;
    const owner = clientFor(anvilTestAccounts[0]!);
    type G = {
      owner: string;
      pending_owner: string | null;
      pending_changes: {
        id: string;
        kind: string;
        summary: string;
        status: string;
        executable_at: string;
        expires_at: string;
        content: Record<string, unknown>;
      }[];
    };
    const before = await get<G>('/governance');
    expect(before).toMatchObject({
      owner: anvilTestAccounts[0]!.address,
      pending_owner: null,
      pending_changes: [],
    });
    const config = { ...chain.deployment.params.audit!, auditRateBps: 2_500 };
    const a = await announceAuditConfig(owner, { grid, config });
    await network.indexer.syncNow();
    const g = await get<G>('/governance');
    expect(g.pending_changes).toEqual([
      expect.objectContaining({
        id: a.id,
        kind: 'audit_config',
        status: 'waiting',
        executable_at: new Date(a.executableAt * 1000).toISOString(),
        expires_at: new Date(a.expiresAt * 1000).toISOString(),
      }),
    ]);
    expect(g.pending_changes[0]!.summary).toMatch(/audit 25%/);
    expect(g.pending_changes[0]!.content).toMatchObject({ auditRateBps: 2_500 });
  });
});
