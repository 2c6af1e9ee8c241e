import { mkdtemp, rm } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createTokenizer, ensureModel, MODEL_PRESETS, type ModelPresetName } from '@aipg/inference';
import { INJECTED_TEXT } from '@aipg/worker';
import type { Address } from 'viem';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startDishonestGateway } from '../src/devnet/dishonest-gateway.ts';
import {
  ensureSubstituteModel,
  ensureTwinModel,
  type TrafficResponse,
  watchGateway,
} from '../src/devnet/red-team.ts';
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
  const ensure = (preset: ModelPresetName) => ensureModel({ dir, preset });

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

describe('the twin models', () => {
  it('re-quantize the served preset: other weights, one file per bit count, the same vocabulary and template', async () => {
    const served = await ensureModel({ dir, preset: 'small' });
    const hashes = new Set<string>([served.weightsHash]);
    for (const bits of [4, 6]) {
      const t = await ensureTwinModel(dir, 'small', bits);
      expect(t.name).toBe(`aipg-small-llama-q${bits}`);
      hashes.add(t.weightsHash);
      // written once, the same bytes on the next start
      expect((await ensureTwinModel(dir, 'small', bits)).weightsHash).toBe(t.weightsHash);
      const a = await createTokenizer({ modelPath: t.path });
      const b = await createTokenizer({ modelPath: served.path });
      try {
        expect(a.vocabSize).toBe(b.vocabSize);
        const messages = [{ role: 'user' as const, content: 'What does it cost?' }];
        expect(a.chatPromptTokenIds(messages)).toEqual(b.chatPromptTokenIds(messages));
      } finally {
        await a.close();
        await b.close();
      }
    }
    expect(hashes.size).toBe(3);
    await expect(ensureTwinModel(dir, 'small', 8)).rejects.toThrow(RangeError);
  });
});

describe('the dishonest gateway front', () => {
  /** A stand-in gateway serving one job's evidence (the fields the front alters) and echoing anything else. */
  async function upstream() {
    const evidence = (id: string) => ({
      job_id: id,
      request: {
        input: { messages: [{ role: 'user', content: 'hi' }] },
        params: { temperature: 0, topP: 1, maxTokens: 8, seed: null, stop: [] },
        pricing: { inputPerMTokens: '500', outputPerMTokens: '1500', confidentialPremiumBps: 0 },
      },
      prompt_token_ids: [1, 2, 3],
    });
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const m = /^\/v1\/audit\/jobs\/(\w+)$/.exec(req.url ?? '');
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(
          JSON.stringify(
            m
              ? evidence(m[1]!)
              : {
                  method: req.method,
                  url: req.url,
                  body: Buffer.concat(chunks).toString(),
                  auth: req.headers.authorization,
                },
          ),
        );
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, evidence };
  }

  it('passes everything through until told to tamper, then alters each job one way in turn, the same way on every fetch', async () => {
    const up = await upstream();
    const front = await startDishonestGateway({ target: up.url });
    try {
      const get = async (path: string) => (await fetch(`${front.url}${path}`)).json();
      expect(await get('/v1/audit/jobs/a1')).toEqual(up.evidence('a1'));
      const echoed = await (
        await fetch(`${front.url}/v1/audit/score`, {
          method: 'POST',
          headers: { authorization: 'AIPG-Audit x', 'content-type': 'application/json' },
          body: '{"k":1}',
        })
      ).json();
      expect(echoed).toEqual({
        method: 'POST',
        url: '/v1/audit/score',
        body: '{"k":1}',
        auth: 'AIPG-Audit x',
      });
      front.tamper(true);
      const a = (await get('/v1/audit/jobs/j1')) as ReturnType<typeof up.evidence>;
      const b = (await get('/v1/audit/jobs/j2')) as ReturnType<typeof up.evidence>;
      const c = (await get('/v1/audit/jobs/j3')) as ReturnType<typeof up.evidence>;
      expect(a.request.params.temperature).toBe(0.5);
      expect(a.request.input).toEqual(up.evidence('j1').request.input);
      expect(b.request.input.messages[0]!.content).not.toBe('hi');
      expect(b.request.params).toEqual(up.evidence('j2').request.params);
      expect(BigInt(c.request.pricing.outputPerMTokens)).toBeGreaterThan(1500n);
      // never the ids or anything the worker signed
      for (const e of [a, b, c]) expect(e.prompt_token_ids).toEqual([1, 2, 3]);
      expect(await get('/v1/audit/jobs/j2')).toEqual(b);
      expect(front.tampered).toEqual([
        { jobId: 'j1', how: 'params' },
        { jobId: 'j2', how: 'input' },
        { jobId: 'j3', how: 'pricing' },
      ]);
      front.tamper(false);
      expect(await get('/v1/audit/jobs/j1')).toEqual(up.evidence('j1'));
    } finally {
      await front.stop();
      await new Promise((r) => up.server.close(r));
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

  it('--help lists --validators and --adversary with what each adversary does and what becomes of it', async () => {
    const { code, stdout } = await run(['devnet', '--help']);
    expect(code).toBe(0);
    expect(stdout).toContain('--validators <n>');
    expect(stdout).toContain('--adversary <kind>');
    expect(stdout).toMatch(/^ {2}substitute +\(slashed\) +runs a smaller model/m);
    expect(stdout).toMatch(/^ {2}fabricate +\(slashed\) +/m);
    expect(stdout).toMatch(/^ {2}truncate +\(refused\) +/m);
    expect(stdout).toMatch(/^ {2}inflate +\(refused\) +/m);
    expect(stdout).toMatch(/^ {2}prompt-overbiller +\(refused\) +bills a prompt/m);
    expect(stdout).toMatch(/^ {2}text-injector +\(harmless\) +signs honest tokens/m);
    for (const bits of [4, 5, 6])
      expect(stdout).toMatch(
        new RegExp(
          `^ {2}twin-${bits}bit +\\(slashed\\) +runs the registered model re-quantized to ${bits} bits`,
          'm',
        ),
      );
    expect(stdout).toMatch(
      /^ {2}system-prompt-dropper +\(slashed\) +runs chat jobs without their system message/m,
    );
    expect(stdout).toMatch(/^ {2}sybil-scorer +\(overruled\) +serves honestly but lies/m);
    expect(stdout).toMatch(/^ {2}dishonest-gateway +\(reported\) +alters the audit evidence/m);
  });

  it('refuses an unknown adversary and too many validators before starting anything', async () => {
    const bad = await run(['devnet', '--adversary', 'lie', '--dir', dir]);
    expect(bad.code).toBe(1);
    expect(bad.stderr).toMatch(
      /unknown --adversary "lie".*substitute, truncate, fabricate, inflate, text-injector, prompt-overbiller/s,
    );
    const many = await run(['devnet', '--validators', '6', '--adversary', 'fabricate', '--dir', dir]);
    expect(many.code).toBe(1);
    expect(many.stderr).toMatch(/invalid --validators "6"/);
    const junk = await run(['devnet', '--validators', 'three', '--dir', dir]);
    expect(junk.stderr).toMatch(/invalid --validators "three"/);
  });
});

describe('what the gateway stops itself', () => {
  const address = '0x00000000000000000000000000000000000000a9' as Address;
  const refusal = (reason: string): TrafficResponse => ({
    ok: false,
    pinned: true,
    status: 502,
    code: 'invalid_receipt',
    message: `the worker's receipt did not verify (${reason}); nothing was charged`,
  });
  const answer = (content: string, worker: Address | null = address): TrafficResponse => ({
    ok: true,
    pinned: true,
    worker,
    content,
  });

  it('a refused kind: one line after 3 receipts refused, with the first reason, never again', () => {
    const lines: string[] = [];
    const w = watchGateway({
      adversary: { address, kind: 'prompt-overbiller' },
      write: (l) => lines.push(l),
    });
    w.onResponse(refusal('the prompt ids (1200) are not the 24 the gateway tokenized and sent'));
    w.onResponse(answer('an honest answer', '0x00000000000000000000000000000000000000b2'));
    w.onResponse({ ok: false, pinned: false, status: 503, code: 'no_worker', message: 'busy' });
    w.onResponse(refusal('another reason'));
    expect(lines).toEqual([]);
    w.onResponse(refusal('another reason'));
    expect(lines).toEqual([
      '✗ refused by the gateway: prompt-overbiller — 3 receipts rejected (the prompt ids (1200) are not the 24 the gateway tokenized and sent); nothing charged, nothing to slash',
    ]);
    for (let i = 0; i < 5; i++) w.onResponse(refusal('again'));
    expect(lines).toHaveLength(1);
  });

  it('text-injector: one line after 3 of its answers came without the injected text', () => {
    const lines: string[] = [];
    const w = watchGateway({ adversary: { address, kind: 'text-injector' }, write: (l) => lines.push(l) });
    w.onResponse(answer('Hello from the grid.'));
    w.onResponse(answer('from another worker', '0x00000000000000000000000000000000000000b2'));
    w.onResponse(answer(''));
    expect(lines).toEqual([]);
    w.onResponse(answer('A star.'));
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^✓ text-injector: 3 answers served, none carried its injected text/);
  });

  it('text-injector: says at once when its text reached a user', () => {
    const lines: string[] = [];
    const w = watchGateway({ adversary: { address, kind: 'text-injector' }, write: (l) => lines.push(l) });
    w.onResponse(answer(`Hello.${INJECTED_TEXT}`));
    expect(lines).toEqual(['✗ text-injector: its injected text reached a user (answer 1)']);
  });

  it('a slashed kind: nothing here (the slash watcher reports it)', () => {
    const lines: string[] = [];
    const w = watchGateway({ adversary: { address, kind: 'substitute' }, write: (l) => lines.push(l) });
    for (let i = 0; i < 5; i++) {
      w.onResponse(answer('x'));
      w.onResponse(refusal('x'));
    }
    expect(lines).toEqual([]);
  });
});
