import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anvilTestAccounts, getBond } from '@aipg/chain';
import type { ImageAdversaryKind } from '@aipg/worker';
import type { Address, Hex } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DevnetAdversary, StartDevnetReturnType } from '../src/devnet/start-devnet.ts';
import {
  abstentions,
  type Finalized,
  redTeam,
  runJobs,
  startRedTeamDevnet,
  validatorAudits,
} from './helpers/red-team.ts';

// Image audits in cross-check mode (validators that never run the model): each drawn computation (the
// seed's noise, two denoising steps per image, the final decode) is run by another bonded worker serving
// the model, drawn from the batch's randomness, and signed by it; a FAIL needs the next drawn worker to
// find it too. The cheats are FAILed and slashed, the honest worker's jobs all PASS.

const WINDOW = 3_600;
const HONEST_JOBS = 4;
const JOBS_PER_ADVERSARY = 2;
const KINDS = [
  'image-fewer-steps',
  'image-other-seed',
  'image-random',
] as const satisfies readonly ImageAdversaryKind[];

let net: StartDevnetReturnType;
let dir: string;
let rt: ReturnType<typeof redTeam>;
const adversaries = new Map<ImageAdversaryKind, DevnetAdversary>();

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-image-crosscheck-'));
  net = await startRedTeamDevnet(dir, WINDOW, { model: 'tiny', validators: 3, validatorMode: 'crosscheck' });
  rt = redTeam(net, WINDOW);
  for (const [i, kind] of KINDS.entries())
    adversaries.set(
      kind,
      await net.startImageAdversary(kind, { privateKey: anvilTestAccounts[7 + i]!.privateKey as Hex }),
    );
}, 240_000);

afterAll(async () => {
  await net?.stop();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function image(worker: Address, i: number) {
  const res = await fetch(`${net.gatewayUrl}/v1/images/generations`, {
    method: 'POST',
    headers: { authorization: `Bearer ${net.apiKey}`, 'content-type': 'application/json' },
    body: JSON.stringify({
      model: net.imageModel.name,
      prompt: `a crosschecked lighthouse ${i}`,
      size: '256x256',
      steps: 4,
      seed: 500 + i,
      response_format: 'url',
      grid: { workers: [worker] },
    }),
  });
  if (!res.ok) throw new Error(`image ${i}: HTTP ${res.status} ${await res.text()}`);
}

async function checksAnswered(): Promise<number> {
  const text = await (await fetch(`${net.gatewayUrl}/metrics`)).text();
  return [
    ...text.matchAll(/aipg_gateway_audit_image_checks_total\{[^}]*outcome="answered"[^}]*\} (\d+)/g),
  ].reduce((n, m) => n + Number(m[1]), 0);
}

describe('image audits by cross-check', () => {
  let finalized: Finalized[] = [];

  it('the validators judge every job through checks by drawn workers', async () => {
    const from = await rt.publicClient.getBlockNumber();
    await Promise.all([
      runJobs(HONEST_JOBS, 1, (i) => image(net.accounts.worker, i)),
      ...[...adversaries.values()].map((a) =>
        runJobs(JOBS_PER_ADVERSARY, 1, (i) => image(a.address, 100 + i)),
      ),
    ]);
    const total = HONEST_JOBS + KINDS.length * JOBS_PER_ADVERSARY;
    await rt.settleAndCommit(net.validatorNodes, [total, total, total]);
    for (const v of net.validatorNodes) expect(await abstentions(v)).toEqual({ abstained: 0, reasons: [] });
    // every computation came from a worker (none of these validators runs the model)
    expect(await checksAnswered()).toBeGreaterThanOrEqual(3 * total * 4);
    await rt.closeWindow(net.validatorNodes);
    finalized = await rt.finalizedSince(from + 1n);
    expect(finalized).toHaveLength(total);
  }, 480_000);

  it('honest image jobs all PASS; each cheat is FAILed, confirmed by a second drawn worker, and slashed', async () => {
    expect(finalized.filter((f) => f.worker === net.accounts.worker).map((f) => f.verdict)).toEqual(
      Array(HONEST_JOBS).fill(1),
    );
    for (const [kind, a] of adversaries) {
      const mine = finalized.filter((f) => f.worker === a.address);
      expect(
        mine.map((f) => f.verdict),
        kind,
      ).toEqual(Array(JOBS_PER_ADVERSARY).fill(2));
      const bond = await getBond(rt.publicClient, {
        grid: net.contracts.grid,
        role: 'worker',
        owner: a.address,
      });
      expect(bond.slashed).toBe(mine.reduce((n, f) => n + f.slashed, 0n));
      for (const v of net.validatorNodes) {
        const audits = await validatorAudits(v);
        for (const f of mine) expect(audits[f.leaf.toLowerCase()]?.vote ?? audits[f.leaf]?.vote).toBe('fail');
      }
    }
  });
});
