import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  anvilTestAccounts,
  commitVote,
  createGridClients,
  getAudit,
  getBond,
  gridAbi,
  revealVote,
  voteCommitment,
} from '@aipg/chain';
import { receiptLeafHash } from '@aipg/core';
import { createTokenizer } from '@aipg/inference';
import { createAuditClient } from '@aipg/validator';
import { type AdversaryKind, INJECTED_TEXT } from '@aipg/worker';
import { type Address, type Hex, hexToString, keccak256, parseEventLogs, zeroHash } from 'viem';
import { generatePrivateKey, privateKeyToAccount } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVERSARY_FATES } from '../src/devnet/red-team.ts';
import type { DevnetAdversary, StartDevnetReturnType } from '../src/devnet/start-devnet.ts';
import {
  abstentions,
  type ChatResult,
  type Finalized,
  judgedCount,
  type Refusal,
  redTeam,
  runJobs,
  startRedTeamDevnet,
  validatorAudits,
} from './helpers/red-team.ts';

// The red team (docs/DESIGN.md §5): on a devnet that audits every job, each lie only a validator's
// re-execution can see is failed by the validators and slashed on chain; each lie the gateway can
// see in the receipt itself is refused there (HTTP 502, nothing charged, nothing on chain to slash);
// text a worker slips next to honest signed ids never reaches a user (its audits pass); the honest
// worker is never failed across 200+ audited jobs; near copies of the model (its weights re-quantized
// to 4, 5 or 6 bits) are caught on long outputs; a dishonest gateway's altered evidence makes the
// validators abstain and report the gateway on chain, never fail the worker; and a validator that
// attests falsely is slashed. One devnet, one batch for all the workers at once; blocks and time are
// mined with anvil's RPC, never waited for.

const HONEST_JOBS = 200;
const JOBS_PER_ADVERSARY = 5;
/** Lies only the validators' re-execution can see: they reach the chain and are slashed. */
const SLASHED = [
  'substitute',
  'fabricate',
  'twin-4bit',
  'twin-5bit',
  'twin-6bit',
] as const satisfies readonly AdversaryKind[];
type SlashedKind = (typeof SLASHED)[number];
/** Lies the gateway sees in the receipt (prompt ids, the way the output ends) and refuses. */
const REFUSED = ['truncate', 'inflate', 'prompt-overbiller'] as const satisfies readonly AdversaryKind[];
type RefusedKind = (typeof REFUSED)[number];
/** Honest signed ids with a scam line in the frames' text: served, audited, never shown. */
const INJECTOR = 'text-injector' satisfies AdversaryKind;
const KINDS: readonly AdversaryKind[] = [...SLASHED, ...REFUSED, INJECTOR];
/** Commit and reveal windows: long, chain time is moved past them (evm_increaseTime). */
const WINDOW = 3_600;
/** The hard evidence each lie leaves (the validator's judge codes); jobs alternate greedy and seeded. */
const EXPECTED_REASONS: Record<SlashedKind, string[]> = {
  substitute: ['GREEDY_MISMATCH', 'SEEDED_MISMATCH'],
  fabricate: ['GREEDY_MISMATCH', 'SEEDED_MISMATCH'],
  // a near copy's drift adds up over the output: several tokens each a little off
  'twin-4bit': ['REPEATED_MISMATCH', 'GREEDY_MISMATCH'],
  'twin-5bit': ['REPEATED_MISMATCH', 'GREEDY_MISMATCH'],
  'twin-6bit': ['REPEATED_MISMATCH', 'GREEDY_MISMATCH'],
};
/** Near copies: greedy jobs of 300 tokens, where a 6-bit copy was caught 100/100 in calibration (validator README). */
const isTwin = (kind: AdversaryKind) => kind.startsWith('twin-');
/**
 * A 6-bit copy's answer that ends early (its own end token within a few dozen tokens) can stay within
 * the honest noise: short jobs are where a near copy still hides (3–25 % caught at 16 tokens,
 * validator README). Such jobs must not be failed by rule; every one that ran its 300 tokens must be.
 */
const mayHide = (kind: AdversaryKind, job: ChatResult) =>
  kind === 'twin-6bit' && job.finishReason !== 'length';
/** What the gateway's refusal names: the lie it saw. */
const REFUSAL_REASONS: Record<RefusedKind, RegExp> = {
  // a `stop` finish without an end token or a stop string at the end
  truncate: /finish "?stop/,
  // tokens after the end token, or (a `length` finish) the prompt billed twice
  inflate: /end token|prompt ids/,
  'prompt-overbiller': /prompt ids \(\d+\) are not the \d+/,
};

let net: StartDevnetReturnType;
let dir: string;
const adversaries = new Map<AdversaryKind, DevnetAdversary>();
let rt: ReturnType<typeof redTeam>;
let publicClient: ReturnType<typeof redTeam>['publicClient'];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-redteam-'));
  net = await startRedTeamDevnet(dir, WINDOW, {
    // the registered model is `small`: a substitute runs `tiny` under its name
    model: 'small',
    validators: 3,
    // the validators fetch evidence through a front that alters it once told to (the last phase)
    dishonestGateway: true,
  });
  rt = redTeam(net, WINDOW);
  publicClient = rt.publicClient;
  // Three adversaries from anvil's spare accounts, the others from fresh keys the devnet funds.
  const keys = [7, 8, 9].map((i) => anvilTestAccounts[i]!.privateKey as Hex);
  while (keys.length < KINDS.length) keys.push(generatePrivateKey());
  for (const [i, kind] of KINDS.entries())
    adversaries.set(kind, await net.startAdversary(kind, { privateKey: keys[i]!, maxConcurrency: 1 }));
}, 240_000);

afterAll(async () => {
  await net?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** Every sampling mode an honest user sends: greedy, seeded (two temperatures), unseeded. */
function honestParams(i: number) {
  const max_tokens = 8 + (i % 5) * 6;
  switch (i % 4) {
    case 0:
      return { max_tokens, temperature: 0 };
    case 1:
      return { max_tokens, temperature: 0.8, top_p: 0.95, seed: 1_000 + i };
    case 2:
      return { max_tokens, temperature: 1, seed: 2_000 + i };
    default:
      return { max_tokens, temperature: 0.7, top_p: 0.9 };
  }
}

/** Replayable jobs: the validator holds exact evidence against each kind of lie. */
const adversaryParams = (i: number) =>
  i % 2 === 0 ? { max_tokens: 32, temperature: 0 } : { max_tokens: 32, temperature: 0.8, seed: 77 + i };
const twinParams = () => ({ max_tokens: 300, temperature: 0 });

describe('red team: every job audited by 3 validators re-executing the registered model', () => {
  let finalized: Finalized[] = [];
  const served = new Map<SlashedKind, ChatResult[]>();
  const bondsBefore = new Map<Address, bigint>();
  const earningsBefore = new Map<Address, bigint>();
  let phase1Block = 0n;
  const refusals = new Map<RefusedKind, Refusal[]>();
  let balanceBeforeRefused: Awaited<ReturnType<ReturnType<typeof redTeam>['balance']>>;
  let balanceAfterRefused: Awaited<ReturnType<ReturnType<typeof redTeam>['balance']>>;
  let balanceAfterServed: Awaited<ReturnType<ReturnType<typeof redTeam>['balance']>>;
  const injected: (ChatResult & { deltas?: string[] })[] = [];

  it(`runs ${HONEST_JOBS} honest jobs and ${JOBS_PER_ADVERSARY} per adversary, settles them, and the validators judge them all`, async () => {
    // the devnet says the same of each kind
    for (const k of SLASHED) expect(ADVERSARY_FATES[k]).toBe('slashed');
    for (const k of REFUSED) expect(ADVERSARY_FATES[k]).toBe('refused');
    expect(ADVERSARY_FATES[INJECTOR]).toBe('harmless');
    const started = performance.now();
    const honest = net.accounts.worker;
    for (const a of [honest, ...[...adversaries.values()].map((x) => x.address)]) {
      bondsBefore.set(
        a,
        (await getBond(publicClient, { grid: net.contracts.grid, role: 'worker', owner: a })).amount,
      );
      earningsBefore.set(a, await rt.earningsOf(a));
    }
    for (const v of net.validators) earningsBefore.set(v, await rt.earningsOf(v));
    phase1Block = await publicClient.getBlockNumber();

    // The refused kinds first, alone, so the payer's balance shows what they cost: nothing.
    balanceBeforeRefused = await rt.balance();
    await Promise.all(
      REFUSED.map(async (kind) => {
        const a = adversaries.get(kind)!;
        const mine: Refusal[] = [];
        refusals.set(kind, mine);
        await runJobs(JOBS_PER_ADVERSARY, 1, async (i) =>
          mine.push(await rt.refusedChat(a.address, i, adversaryParams(i))),
        );
      }),
    );
    balanceAfterRefused = await rt.balance();

    await Promise.all([
      runJobs(HONEST_JOBS, 2, (i) => rt.chat(honest, i, honestParams(i))),
      ...SLASHED.map((kind) =>
        runJobs(JOBS_PER_ADVERSARY, 1, async (i) => {
          const r = await rt.chat(
            adversaries.get(kind)!.address,
            i,
            isTwin(kind) ? twinParams() : adversaryParams(i),
          );
          served.set(kind, [...(served.get(kind) ?? []), r]);
        }),
      ),
      // every other answer of the injector streamed: the deltas are where injected text would show first
      runJobs(JOBS_PER_ADVERSARY, 1, async (i) => {
        const a = adversaries.get(INJECTOR)!.address;
        injected.push(
          await (i % 2 === 0 ? rt.chat(a, i, adversaryParams(i)) : rt.streamChat(a, i, adversaryParams(i))),
        );
      }),
    ]);
    const jobsMs = performance.now() - started;
    balanceAfterServed = await rt.balance();
    // every adversary lied on every job (the lie is in its own log of what it did)
    for (const a of adversaries.values()) expect(a.events).toHaveLength(JOBS_PER_ADVERSARY);

    // the refused jobs never reach a batch: honest, slashed kinds and the injector's
    const total = HONEST_JOBS + (SLASHED.length + 1) * JOBS_PER_ADVERSARY;
    await rt.settleAndCommit(net.validatorNodes, [total, total, total]);
    for (const v of net.validatorNodes) expect(await abstentions(v)).toEqual({ abstained: 0, reasons: [] });
    const attestMs = performance.now() - started - jobsMs;
    await rt.closeWindow(net.validatorNodes);
    finalized = await rt.finalizedSince(phase1Block + 1n);
    expect(finalized).toHaveLength(total);
    console.log(
      `red team: ${total} audited jobs (and ${REFUSED.length * JOBS_PER_ADVERSARY} refused by the gateway) in ${(jobsMs / 1000).toFixed(1)} s, judged and attested by 3 validators in ${(attestMs / 1000).toFixed(1)} s, finalized after ${((performance.now() - started) / 1000).toFixed(1)} s`,
    );
  }, 720_000);

  it(`the honest worker is never failed: all ${HONEST_JOBS} verdicts PASS, its bond untouched`, async () => {
    const honest = finalized.filter((f) => f.worker === net.accounts.worker);
    expect(honest).toHaveLength(HONEST_JOBS);
    const verdicts = honest.map((f) => f.verdict);
    expect(verdicts.filter((v) => v !== 1)).toEqual([]);
    console.log(
      `honest worker: ${honest.length} audited jobs (greedy, seeded and unseeded), ${verdicts.filter((v) => v === 1).length} PASS`,
    );
    const bond = await getBond(publicClient, {
      grid: net.contracts.grid,
      role: 'worker',
      owner: net.accounts.worker,
    });
    expect(bond.amount).toBe(bondsBefore.get(net.accounts.worker));
    expect(bond.slashed).toBe(0n);
  });

  it.each(SLASHED)(
    '%s: every job attested FAIL by its validators, the bond slashed, the finders paid',
    async (kind) => {
      const a = adversaries.get(kind)!;
      const all = finalized.filter((f) => f.worker === a.address);
      expect(all).toHaveLength(JOBS_PER_ADVERSARY);
      // the validators' records name each audit's job
      const records = await validatorAudits(net.validatorNodes[0]!);
      const hiding = new Set(
        served
          .get(kind)!
          .filter((j) => mayHide(kind, j))
          .map((j) => j.grid.job_id),
      );
      const mine = all.filter((f) => !hiding.has(records[f.leaf]!.jobId as Hex));
      // most jobs run their whole length: the rule below is never vacuous
      expect(mine.length).toBeGreaterThanOrEqual(JOBS_PER_ADVERSARY - 2);
      const slash = net.auditConfig.workerSlashAmount;
      for (const f of mine) {
        const audit = await getAudit(publicClient, {
          grid: net.contracts.grid,
          leaf: f.leaf,
          validators: net.validators,
        });
        expect(audit.verdict).toBe('fail');
        expect(audit.failVotes).toBe(3);
        expect(Object.values(audit.votes)).toEqual(['fail', 'fail', 'fail']);
        expect(f.slashed).toBe(slash);
      }
      // why: every validator's recorded reasons name the evidence this lie leaves
      const codes = new Set<string>();
      for (const v of net.validatorNodes) {
        const audits = await validatorAudits(v);
        for (const f of mine) {
          const audit = audits[f.leaf]!;
          expect(audit.vote).toBe('fail');
          const found = audit.reasons!.map((r) => r.code);
          expect(found.some((c) => EXPECTED_REASONS[kind].includes(c))).toBe(true);
          for (const c of found) codes.add(c);
        }
      }
      const failed = all.filter((f) => f.verdict === 2).length;
      console.log(
        `${kind}: ${failed}/${all.length} jobs failed${hiding.size > 0 ? ` (${hiding.size} ended early, ${all.length - failed} of them passed)` : ''}, reasons ${[...codes].join(', ')}`,
      );
      const bond = await getBond(publicClient, {
        grid: net.contracts.grid,
        role: 'worker',
        owner: a.address,
      });
      expect(bond.amount).toBe(bondsBefore.get(a.address)! - BigInt(failed) * slash);
      expect(bond.active).toBe(false);
    },
  );

  it.each(REFUSED)(
    '%s: every receipt refused by the gateway (HTTP 502), nothing on chain, the bond untouched, nothing earned',
    async (kind) => {
      const a = adversaries.get(kind)!;
      const mine = refusals.get(kind)!;
      expect(mine).toHaveLength(JOBS_PER_ADVERSARY);
      for (const r of mine) {
        expect(r.status).toBe(502);
        expect(r.code).toBe('invalid_receipt');
        expect(r.message).toMatch(/nothing was charged/);
        expect(r.message).toMatch(REFUSAL_REASONS[kind]);
      }
      console.log(`${kind}: ${mine.length} receipts refused by the gateway, e.g. "${mine[0]!.message}"`);
      // no receipt kept, so no batch, no audit, no verdict names it
      expect(finalized.filter((f) => f.worker === a.address)).toEqual([]);
      const bond = await getBond(publicClient, {
        grid: net.contracts.grid,
        role: 'worker',
        owner: a.address,
      });
      expect(bond.amount).toBe(bondsBefore.get(a.address));
      expect(bond.slashed).toBe(0n);
      expect(bond.active).toBe(true);
      expect(await rt.earningsOf(a.address)).toBe(earningsBefore.get(a.address));
    },
  );

  it('the payer was charged nothing for the refused jobs (and was for the served ones)', () => {
    expect(balanceAfterRefused.unsettled).toBe(balanceBeforeRefused.unsettled);
    expect(balanceAfterRefused.reserved).toBe(0n);
    expect(balanceAfterRefused.available).toBe(balanceBeforeRefused.available);
    // the same figure moves when receipts are kept
    expect(balanceAfterServed.unsettled).toBeGreaterThan(balanceAfterRefused.unsettled);
    expect(balanceAfterServed.available).toBeLessThan(balanceAfterRefused.available);
  });

  it(`${INJECTOR}: every answer is the gateway's rendering of the signed ids, never the injected text; audited PASS, the bond untouched`, async () => {
    const a = adversaries.get(INJECTOR)!;
    expect(injected).toHaveLength(JOBS_PER_ADVERSARY);
    const line = INJECTED_TEXT.trim();
    // the evidence a validator fetches: the signed receipt and its output ids
    const auditor = createAuditClient({
      url: net.gatewayUrl,
      gateway: net.gateway.gateway,
      account: privateKeyToAccount(anvilTestAccounts[4]!.privateKey as Hex),
    });
    const tokenizer = await createTokenizer({ modelPath: net.model.path });
    try {
      for (const r of injected) {
        expect(r.content).not.toContain('evil.example');
        expect(r.content).not.toContain(line);
        for (const d of r.deltas ?? []) expect(d).not.toContain('evil.example');
        const job = await auditor.getJob(r.grid.job_id);
        expect(job.outputTokenIds.length).toBeGreaterThan(0);
        // no stop strings: the text is the decoding of every id but the end token
        const rendered = tokenizer.detokenize(job.outputTokenIds.filter((id) => !tokenizer.isEndToken(id)));
        expect(r.content).toBe(rendered);
      }
    } finally {
      await tokenizer.close();
    }
    expect(injected.filter((r) => r.content.length > 0).length).toBeGreaterThan(0);
    const mine = finalized.filter((f) => f.worker === a.address);
    expect(mine).toHaveLength(JOBS_PER_ADVERSARY);
    expect(mine.map((f) => f.verdict)).toEqual(Array(JOBS_PER_ADVERSARY).fill(1));
    const bond = await getBond(publicClient, { grid: net.contracts.grid, role: 'worker', owner: a.address });
    expect(bond.amount).toBe(bondsBefore.get(a.address));
    expect(bond.slashed).toBe(0n);
    // paid for the honest work its receipts sign
    expect(await rt.earningsOf(a.address)).toBeGreaterThan(earningsBefore.get(a.address)!);
    console.log(
      `${INJECTOR}: ${injected.length} answers (${injected.filter((r) => r.deltas).length} streamed), none with its injected text; ${mine.length} audits PASS`,
    );
  });

  it('the FAIL voters were paid their share of every slash', async () => {
    const rewards = parseEventLogs({
      abi: gridAbi,
      eventName: 'ValidatorRewarded',
      logs: await publicClient.getLogs({ address: net.contracts.grid, fromBlock: phase1Block + 1n }),
    });
    const failLeaves = new Map(finalized.filter((f) => f.verdict === 2).map((f) => [f.leaf, f.slashed]));
    const hiding = SLASHED.flatMap((k) => served.get(k)!.filter((j) => mayHide(k, j)));
    expect(failLeaves.size).toBeGreaterThanOrEqual(SLASHED.length * JOBS_PER_ADVERSARY - hiding.length);
    for (const v of net.validators) {
      const mine = rewards.filter((r) => r.args.validator === v);
      // each FAIL leaf pays its 3 FAIL voters an equal part of the finder share
      for (const [leaf, slashed] of failLeaves) {
        const paid = mine.filter((r) => r.args.leaf === leaf).map((r) => r.args.amount);
        expect(paid).toEqual([(slashed * BigInt(net.auditConfig.finderShareBps)) / 10_000n / 3n]);
      }
      // and the earnings on chain rose by exactly what was paid (finder shares and PASS rewards)
      const rise = (await rt.earningsOf(v)) - earningsBefore.get(v)!;
      expect(rise).toBe(mine.reduce((s, r) => s + r.args.amount, 0n));
      expect(rise).toBeGreaterThan(0n);
    }
  });

  it("a dishonest gateway's altered evidence: every validator abstains and reports the gateway on chain; the worker is never failed", async () => {
    const front = net.dishonestGateway!;
    const nodes = net.validatorNodes;
    const honest = net.accounts.worker;
    const before = nodes.map(judgedCount);
    const abstained = nodes.map((v) => v.status().audits.abstained);
    const faults = nodes.map((v) => v.status().gatewayFaults.total);
    const bondBefore = await getBond(publicClient, {
      grid: net.contracts.grid,
      role: 'worker',
      owner: honest,
    });
    const fromBlock = (await publicClient.getBlockNumber()) + 1n;
    const jobs: ChatResult[] = [];
    front.tamper(true);
    try {
      await runJobs(6, 1, async (i) => jobs.push(await rt.chat(honest, 700 + i, honestParams(i))));
      await rt.settleAndCommit(
        nodes,
        before.map((n) => n + jobs.length),
      );
    } finally {
      front.tamper(false);
    }
    // every job's evidence altered, each way twice: params, input, pricing
    expect(front.tampered.map((t) => t.jobId).sort()).toEqual(jobs.map((j) => j.grid.job_id).sort());
    const ways = front.tampered.map((t) => t.how);
    for (const how of ['params', 'input', 'pricing']) expect(ways.filter((w) => w === how)).toHaveLength(2);
    const gw = net.gateway.gateway.toLowerCase();
    for (const [i, v] of nodes.entries()) {
      const st = v.status();
      expect(st.audits.abstained).toBe(abstained[i]! + jobs.length);
      expect(st.gatewayFaults.total).toBeGreaterThanOrEqual(faults[i]! + jobs.length);
      expect(Object.keys(st.gatewayFaults.byGateway[gw] ?? {})).toEqual(
        expect.arrayContaining(['RECEIPT_REQUEST_HASH', 'PROMPT_MISMATCH', 'FEE_MISMATCH']),
      );
    }
    // on chain, for every job: the gateway reported by each validator, with the reason it saw
    const reports = parseEventLogs({
      abi: gridAbi,
      eventName: 'GatewayFaultReported',
      logs: await publicClient.getLogs({ address: net.contracts.grid, fromBlock }),
    });
    const byJob = new Map(jobs.map((j) => [j.grid.job_id, j]));
    expect(reports.length).toBe(jobs.length * nodes.length);
    const reasons = new Set<string>();
    for (const r of reports) {
      expect(r.args.gateway).toBe(net.gateway.gateway);
      expect(net.validators).toContain(r.args.validator);
      reasons.add(hexToString(r.args.reason, { size: 32 }));
    }
    expect([...reasons].sort()).toEqual(['FEE_MISMATCH', 'PROMPT_MISMATCH', 'RECEIPT_REQUEST_HASH']);
    expect(new Set(reports.map((r) => r.args.leaf)).size).toBe(byJob.size);
    // nobody voted, so nothing fails the worker
    await rt.closeWindow(nodes);
    const verdicts = (await rt.finalizedSince(fromBlock)).filter((f) => f.worker === honest);
    expect(verdicts.filter((f) => f.verdict === 2)).toEqual([]);
    const bondAfter = await getBond(publicClient, {
      grid: net.contracts.grid,
      role: 'worker',
      owner: honest,
    });
    expect(bondAfter.amount).toBe(bondBefore.amount);
    expect(bondAfter.slashed).toBe(0n);
    console.log(
      `dishonest gateway: ${jobs.length} jobs' evidence altered (${ways.join(', ')}); ${reports.length} fault reports on chain (${[...reasons].join(', ')}), 0 FAIL`,
    );
  }, 600_000);

  it('a validator that attests FAIL on honest jobs is slashed for false attestation', async () => {
    const [liarAddress] = net.validators.slice(-1) as [Address];
    const liarKey = anvilTestAccounts[4 + net.validators.length - 1]!.privateKey as Hex;
    const liar = privateKeyToAccount(liarKey);
    expect(liar.address).toBe(liarAddress);
    // The liar's node stops; the liar attests by hand, against what the jobs deserve.
    await net.validatorNodes[2]!.stop();
    const nodes = net.validatorNodes.slice(0, 2);
    const before = nodes.map(judgedCount);
    const bondBefore = await getBond(publicClient, {
      grid: net.contracts.grid,
      role: 'validator',
      owner: liar.address,
    });
    const fromBlock = (await publicClient.getBlockNumber()) + 1n;
    const jobs: ChatResult[] = [];
    await runJobs(3, 1, async (i) => jobs.push(await rt.chat(net.accounts.worker, 500 + i, honestParams(i))));
    await rt.settleAndCommit(
      nodes,
      before.map((n) => n + 3),
    );

    const wallet = createGridClients({ rpcUrl: net.rpcUrl, chainId: net.chainId, account: liar })
      .walletClient!;
    const client = createAuditClient({ url: net.gatewayUrl, gateway: net.gateway.gateway, account: liar });
    const batchIds = parseEventLogs({
      abi: gridAbi,
      eventName: 'BatchSettled',
      logs: await publicClient.getLogs({ address: net.contracts.grid, fromBlock }),
    });
    const reveals = [];
    for (const { grid } of jobs) {
      const job = await client.getJob(grid.job_id);
      const settled = batchIds.find((b) => b.args.root === job.batch!.root)!;
      const leaf = receiptLeafHash(job.receipt);
      const reveal = {
        grid: net.contracts.grid,
        leaf,
        vote: 'fail' as const,
        evidenceHash: zeroHash,
        salt: keccak256(leaf),
      };
      await commitVote(wallet, {
        grid: net.contracts.grid,
        batchId: settled.args.batchId,
        receipt: job.receipt,
        signature: job.signature,
        proof: job.batch!.proof,
        commitment: voteCommitment({ ...reveal, validator: liar.address }),
      });
      reveals.push(reveal);
    }
    await rt.openReveals(nodes);
    for (const r of reveals) await revealVote(wallet, r);
    await rt.closeReveals(nodes);
    const verdicts = await rt.finalizedSince(fromBlock);
    expect(verdicts).toHaveLength(3);
    expect(verdicts.map((f) => f.verdict)).toEqual([1, 1, 1]);
    const bondAfter = await getBond(publicClient, {
      grid: net.contracts.grid,
      role: 'validator',
      owner: liar.address,
    });
    expect(bondBefore.amount - bondAfter.amount).toBe(3n * net.auditConfig.falseAttestationSlash);
    const slashes = parseEventLogs({
      abi: gridAbi,
      eventName: 'FalseAttestationSlashed',
      logs: await publicClient.getLogs({ address: net.contracts.grid, fromBlock }),
    });
    expect(slashes.map((s) => s.args.validator)).toEqual([liar.address, liar.address, liar.address]);
  }, 240_000);
});
