import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anvilTestAccounts, getBond } from '@aipg/chain';
import { IMAGE_ADVERSARY_KINDS, type ImageAdversaryKind } from '@aipg/worker';
import type { Address, Hex } from 'viem';
import { generatePrivateKey } from 'viem/accounts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ADVERSARY_FATES } from '../src/devnet/red-team.ts';
import type { DevnetAdversary, StartDevnetReturnType } from '../src/devnet/start-devnet.ts';
import {
  abstentions,
  type Finalized,
  redTeam,
  runJobs,
  startRedTeamDevnet,
  validatorAudits,
} from './helpers/red-team.ts';

// The image red team: on a devnet that audits every job, each image cheat (half the steps, another
// seed, another model, a random image) is delivered and billed by the gateway (its trajectory opens),
// then FAILed by the validators re-running drawn steps and slashed on chain; the honest worker's
// image jobs all PASS. Blocks and time are mined with anvil's RPC, never waited for.

const WINDOW = 3_600;
const HONEST_JOBS = 8;
const JOBS_PER_ADVERSARY = 2;
const EXPECTED: Record<ImageAdversaryKind, string> = {
  'image-fewer-steps': 'IMAGE_STEP',
  'image-other-seed': 'IMAGE_SEED',
  'image-substitute': 'IMAGE_STEP',
  'image-random': 'IMAGE_DECODE',
};

let net: StartDevnetReturnType;
let dir: string;
let rt: ReturnType<typeof redTeam>;
const adversaries = new Map<ImageAdversaryKind, DevnetAdversary>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-image-redteam-'));
  net = await startRedTeamDevnet(dir, WINDOW, { model: 'tiny', validators: 3 });
  rt = redTeam(net, WINDOW);
  const keys = [7, 8, 9].map((i) => anvilTestAccounts[i]!.privateKey as Hex);
  while (keys.length < IMAGE_ADVERSARY_KINDS.length) keys.push(generatePrivateKey());
  for (const [i, kind] of IMAGE_ADVERSARY_KINDS.entries())
    adversaries.set(kind, await net.startImageAdversary(kind, { privateKey: keys[i]! }));
}, 240_000);

afterAll(async () => {
  await net?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function image(worker: Address, i: number): Promise<{ job_id: Hex; worker: Address; fee_wei: string }> {
  const res = await fetch(`${net.gatewayUrl}/v1/images/generations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${net.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: net.imageModel.name,
      prompt: `a lighthouse, take ${i}`,
      size: '256x256',
      steps: 4 + (i % 3) * 2,
      seed: 1_000 + i,
      scheduler: i % 2 ? 'euler' : 'ddim',
      response_format: 'url',
      grid: { workers: [worker] },
    }),
  });
  const body = (await res.json()) as {
    grid: { job_id: Hex; worker: Address; fee_wei: string };
    error?: { message: string };
  };
  if (!res.ok) throw new Error(`image ${i} to ${worker}: HTTP ${res.status} ${body.error?.message}`);
  expect(body.grid.worker).toBe(worker);
  return body.grid;
}

describe('image red team: every image job audited by 3 validators re-running drawn steps', () => {
  let finalized: Finalized[] = [];
  const bondsBefore = new Map<Address, bigint>();

  it('serves honest and dishonest image jobs alike, settles them, and the validators judge them all', async () => {
    for (const k of IMAGE_ADVERSARY_KINDS) expect(ADVERSARY_FATES[k]).toBe('slashed');
    const honest = net.accounts.worker;
    for (const a of [honest, ...[...adversaries.values()].map((x) => x.address)])
      bondsBefore.set(
        a,
        (await getBond(rt.publicClient, { grid: net.contracts.grid, role: 'worker', owner: a })).amount,
      );
    const from = await rt.publicClient.getBlockNumber();
    await Promise.all([
      runJobs(HONEST_JOBS, 1, (i) => image(honest, i)),
      ...[...adversaries.values()].map((a) =>
        runJobs(JOBS_PER_ADVERSARY, 1, (i) => image(a.address, 100 + i)),
      ),
    ]);
    const total = HONEST_JOBS + IMAGE_ADVERSARY_KINDS.length * JOBS_PER_ADVERSARY;
    await rt.settleAndCommit(net.validatorNodes, [total, total, total]);
    for (const v of net.validatorNodes) expect(await abstentions(v)).toEqual({ abstained: 0, reasons: [] });
    await rt.closeWindow(net.validatorNodes);
    finalized = await rt.finalizedSince(from + 1n);
    expect(finalized).toHaveLength(total);
  }, 480_000);

  it(`the honest worker's ${HONEST_JOBS} image jobs all PASS, its bond untouched`, async () => {
    const honest = finalized.filter((f) => f.worker === net.accounts.worker);
    expect(honest.map((f) => f.verdict)).toEqual(Array(HONEST_JOBS).fill(1));
    const bond = await getBond(rt.publicClient, {
      grid: net.contracts.grid,
      role: 'worker',
      owner: net.accounts.worker,
    });
    expect(bond.amount).toBe(bondsBefore.get(net.accounts.worker));
    expect(bond.slashed).toBe(0n);
  });

  it.each(IMAGE_ADVERSARY_KINDS)(
    '%s: every job FAILed on the evidence its lie leaves, the bond slashed',
    async (kind) => {
      const a = adversaries.get(kind)!;
      const mine = finalized.filter((f) => f.worker === a.address);
      expect(mine).toHaveLength(JOBS_PER_ADVERSARY);
      expect(mine.every((f) => f.verdict === 2 && f.slashed > 0n)).toBe(true);
      const bond = await getBond(rt.publicClient, {
        grid: net.contracts.grid,
        role: 'worker',
        owner: a.address,
      });
      expect(bond.slashed).toBe(mine.reduce((n, f) => n + f.slashed, 0n));
      // each validator's reasons name the check that caught it
      for (const v of net.validatorNodes) {
        const audits = await validatorAudits(v);
        for (const f of mine) {
          const x = audits[f.leaf.toLowerCase()] ?? audits[f.leaf];
          expect(x?.vote).toBe('fail');
          expect(x?.reasons?.map((r) => r.code)).toContain(EXPECTED[kind]);
        }
      }
    },
  );
});
