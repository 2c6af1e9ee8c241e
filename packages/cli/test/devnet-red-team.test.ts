import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTokenizer, ensureModel, MODEL_PRESETS } from '@aipg/inference';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSubstituteModel } from '../src/devnet/red-team.ts';
import { maxDevnetValidators, startDevnet } from '../src/devnet/start-devnet.ts';
import { main } from '../src/main.ts';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-devnet-red-team-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('the substitute model', () => {
  const ensure = (preset: 'tiny' | 'small') => ensureModel({ dir, preset });

  it('serving small, a substitute runs tiny', async () => {
    const m = await ensureSubstituteModel(dir, 'small', ensure);
    expect(m.weightsHash).toBe(MODEL_PRESETS.tiny.weightsHash);
  });

  it('serving tiny, a substitute runs a reseeded tiny: other weights, the same vocabulary and template', async () => {
    const m = await ensureSubstituteModel(dir, 'tiny', ensure);
    expect(m.weightsHash).not.toBe(MODEL_PRESETS.tiny.weightsHash);
    // written once, the same bytes on the next start
    expect((await ensureSubstituteModel(dir, 'tiny', ensure)).weightsHash).toBe(m.weightsHash);
    const a = await createTokenizer({ modelPath: m.path });
    const b = await createTokenizer({ modelPath: (await ensure('tiny')).path });
    try {
      expect(a.vocabSize).toBe(b.vocabSize);
      const messages = [{ role: 'user' as const, content: 'What does it cost? 5€, near the road.' }];
      expect(a.chatPromptTokenIds(messages)).toEqual(b.chatPromptTokenIds(messages));
    } finally {
      await a.close();
      await b.close();
    }
  });
});

describe('devnet accounts', () => {
  it('validators take accounts 4… and stop short of the adversary’s 9', async () => {
    expect(maxDevnetValidators(false)).toBe(6);
    expect(maxDevnetValidators(true)).toBe(5);
    await expect(startDevnet({ dir, validators: 6, adversary: 'truncate' })).rejects.toMatchObject({
      code: 'USAGE',
      shortMessage: 'cannot run 6 validators on the devnet',
    });
    await expect(startDevnet({ dir, validators: 7 })).rejects.toMatchObject({ code: 'USAGE' });
  });
});

describe('aipg devnet flags', () => {
  async function run(argv: string[]) {
    let stdout = '';
    let stderr = '';
    const code = await main(argv, {
      env: {},
      stdout: { write: (c: string) => (stdout += c) },
      stderr: { write: (c: string) => (stderr += c) },
    });
    return { code, stdout, stderr };
  }

  it('--help lists --validators and --adversary with what each adversary does', async () => {
    const { code, stdout } = await run(['devnet', '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--validators <n>');
    expect(stdout).toContain('--adversary <kind>');
    for (const kind of ['substitute', 'truncate', 'fabricate', 'inflate']) expect(stdout).toContain(kind);
  });

  it('refuses an unknown adversary and too many validators before starting anything', async () => {
    const bad = await run(['devnet', '--adversary', 'lie', '--dir', dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(/unknown --adversary "lie".*substitute, truncate, fabricate, inflate/s);
    const many = await run(['devnet', '--validators', '6', '--adversary', 'fabricate', '--dir', dir]);
    expect(many.code).toBe(1);
    expect(many.stderr).toMatch(/invalid --validators "6"/);
    const junk = await run(['devnet', '--validators', 'three', '--dir', dir]);
    expect(junk.stderr).toMatch(/invalid --validators "three"/);
  });
});
