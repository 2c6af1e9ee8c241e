import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { getBond } from '@aipg/chain';
import type { Address } from 'viem';
import { generatePrivateKey } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVERSARY_FATES } from '../src/devnet/red-team.ts';
import type { DevnetAdversary, StartDevnetReturnType } from '../src/devnet/start-devnet.ts';
import {
  abstentions,
  type ChatResult,
  type Finalized,
  PROMPTS,
  redTeam,
  runJobs,
  startRedTeamDevnet,
  validatorAudits,
} from './helpers/red-team.ts';

// Prompt tampering, end to end: a worker that runs chat jobs without their system message (cheaper,
// the operator's instructions ignored) but commits the gateway's full prompt ids, so the gateway's
// prompt check passes. On the `context` preset, a model whose answers depend on its context (the
// `small` one barely reads its prompt: validator README), the validators' re-execution fails every
// such job and the worker is slashed; the honest worker serving the same requests is never failed.

const WINDOW = 3_600;
const JOBS = 6;
const SYSTEMS = [
  'You write about rivers, bridges and the sea.',
  'Speak of stake, proof and every validator of the chain.',
  'Talk about music and stars.',
];

let net: StartDevnetReturnType;
let dir: string;
let dropper: DevnetAdversary;
let rt: ReturnType<typeof redTeam>;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-redteam-context-'));
  net = await startRedTeamDevnet(dir, WINDOW, {
    model: 'context',
    validators: 2,
  });
  rt = redTeam(net, WINDOW);
  dropper = await net.startAdversary('system-prompt-dropper', {
    privateKey: generatePrivateKey(),
    maxConcurrency: 1,
  });
}, 240_000);

afterAll(async () => {
  await net?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

/** A chat with a system message: greedy and seeded in turn, both replayable by the validators. */
const body = (i: number) => ({
  messages: [
    { role: 'system', content: SYSTEMS[i % SYSTEMS.length] },
    { role: 'user', content: `${PROMPTS[i % PROMPTS.length]} (${i})` },
  ],
  max_tokens: 48,
  ...(i % 2 === 0 ? { temperature: 0 } : { temperature: 0.8, seed: 300 + i }),
});

describe('red team on the context preset: the system-prompt dropper', () => {
  let finalized: Finalized[] = [];
  const honestJobs: ChatResult[] = [];
  const dropperJobs: ChatResult[] = [];
  let bondBefore: bigint;

  it(`runs ${JOBS} jobs on each worker with the same requests, and the validators judge them all`, async () => {
    expect(net.model.name).toBe('aipg-context-llama');
    expect(ADVERSARY_FATES['system-prompt-dropper']).toBe('slashed');
    bondBefore = (
      await getBond(rt.publicClient, { grid: net.contracts.grid, role: 'worker', owner: dropper.address })
    ).amount;
    const from = (await rt.publicClient.getBlockNumber()) + 1n;
    await Promise.all([
      runJobs(JOBS, 1, async (i) => honestJobs.push(await rt.chat(net.accounts.worker, i, body(i)))),
      runJobs(JOBS, 1, async (i) => dropperJobs.push(await rt.chat(dropper.address, i, body(i)))),
    ]);
    // it really ran without the system turn: its prompt was shorter than the one it signed
    expect(dropper.events).toHaveLength(JOBS);
    for (const e of dropper.events) expect(e.honest!.promptTokens).toBeLessThan(e.claimed.promptTokens);
    // and the same request got another answer than the honest worker's on most jobs
    const differ = honestJobs.filter((h, i) => h.content !== dropperJobs[i]?.content).length;
    expect(differ).toBeGreaterThan(0);
    await rt.settleAndCommit(net.validatorNodes, [2 * JOBS, 2 * JOBS]);
    for (const v of net.validatorNodes) expect(await abstentions(v)).toEqual({ abstained: 0, reasons: [] });
    await rt.closeWindow(net.validatorNodes);
    finalized = await rt.finalizedSince(from);
    expect(finalized).toHaveLength(2 * JOBS);
  }, 600_000);

  it('the honest worker is never failed', () => {
    const mine = finalized.filter((f) => f.worker === net.accounts.worker);
    expect(mine).toHaveLength(JOBS);
    expect(mine.map((f) => f.verdict)).toEqual(Array(JOBS).fill(1));
  });

  it('every dropper job is failed by both validators on its output (not its prompt ids), and slashed', async () => {
    const mine = finalized.filter((f) => f.worker === dropper.address);
    expect(mine).toHaveLength(JOBS);
    expect(mine.map((f) => f.verdict)).toEqual(Array(JOBS).fill(2));
    const codes = new Set<string>();
    for (const v of net.validatorNodes) {
      const audits = await validatorAudits(v);
      for (const f of mine) {
        const audit = audits[f.leaf]!;
        expect(audit.vote).toBe('fail');
        const found = audit.reasons!.map((r) => r.code);
        // the prompt ids are the gateway's and right: the output is what betrays it
        expect(found).not.toContain('PROMPT_MISMATCH');
        expect(
          found.some((c) => ['REPEATED_MISMATCH', 'GREEDY_MISMATCH', 'SEEDED_MISMATCH'].includes(c)),
        ).toBe(true);
        for (const c of found) codes.add(c);
      }
    }
    const bond = await getBond(rt.publicClient, {
      grid: net.contracts.grid,
      role: 'worker',
      owner: dropper.address as Address,
    });
    expect(bond.amount).toBe(bondBefore - BigInt(JOBS) * net.auditConfig.workerSlashAmount);
    console.log(
      `system-prompt-dropper: ${mine.length}/${JOBS} jobs failed and slashed, reasons ${[...codes].join(', ')}`,
    );
  });
});
