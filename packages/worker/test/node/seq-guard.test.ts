import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { createReceiptSeqGuard, SEQ_STATE_FILE } from '../../src/jobs/seq-guard.ts';

const gatewayA = '0x15d34AAf54267DB7D7c367839AAf71A00a2C6A65';
const gatewayB = '0x9965507D1a55bcC2695C58ba16FB37d819B0A4dc';
const dirs: string[] = [];

afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

describe('receipt number guard', () => {
  it('accepts each (gateway, seq) once, per gateway', async () => {
    const guard = await createReceiptSeqGuard();
    expect(guard.accept(gatewayA, 5n)).toBe(true);
    expect(guard.accept(gatewayA, 5n)).toBe(false);
    expect(guard.accept(gatewayA.toLowerCase() as typeof gatewayA, 5n)).toBe(false);
    expect(guard.accept(gatewayB, 5n)).toBe(true);
    // Out of order is fine (a gateway dispatches concurrently).
    expect(guard.accept(gatewayA, 3n)).toBe(true);
  });

  it('stays bounded: past the limit the lowest number is forgotten and becomes the floor', async () => {
    const guard = await createReceiptSeqGuard({ maxPerGateway: 3 });
    for (const s of [10n, 11n, 12n, 13n]) expect(guard.accept(gatewayA, s)).toBe(true);
    expect(guard.accept(gatewayA, 10n)).toBe(false);
    expect(guard.accept(gatewayA, 9n)).toBe(false);
    expect(guard.accept(gatewayA, 13n)).toBe(false);
    expect(guard.accept(gatewayA, 14n)).toBe(true);
  });

  it('remembers the highest number signed per gateway in its data directory across restarts', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aipg-worker-seq-'));
    dirs.push(dir);
    const first = await createReceiptSeqGuard({ dataDir: dir });
    expect(first.accept(gatewayA, 8n)).toBe(true);
    first.signed(gatewayA, 8n);
    first.signed(gatewayA, 6n); // lower: nothing to write
    expect(JSON.parse(await readFile(join(dir, SEQ_STATE_FILE), 'utf8'))).toEqual({
      [gatewayA.toLowerCase()]: '8',
    });

    const restarted = await createReceiptSeqGuard({ dataDir: dir });
    expect(restarted.highestSigned(gatewayA)).toBe(8n);
    expect(restarted.accept(gatewayA, 8n)).toBe(false);
    expect(restarted.accept(gatewayA, 2n)).toBe(false);
    expect(restarted.accept(gatewayA, 9n)).toBe(true);
    expect(restarted.accept(gatewayB, 1n)).toBe(true);
  });

  it('rewrites its file in place: a longer file from before reads back as exactly the new state', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aipg-worker-seq-'));
    dirs.push(dir);
    const { writeFile } = await import('node:fs/promises');
    // A state with a long number and a second gateway, as an earlier run may have left it.
    const long = { [gatewayA.toLowerCase()]: '5', [gatewayB.toLowerCase()]: '123456789012345' };
    await writeFile(join(dir, SEQ_STATE_FILE), `${JSON.stringify(long, null, 8)}\n`);
    const guard = await createReceiptSeqGuard({ dataDir: dir });
    expect(guard.accept(gatewayA, 6n)).toBe(true);
    guard.signed(gatewayA, 6n);
    guard.signed(gatewayA, 7n);
    expect(JSON.parse(await readFile(join(dir, SEQ_STATE_FILE), 'utf8'))).toEqual({
      [gatewayA.toLowerCase()]: '7',
      [gatewayB.toLowerCase()]: '123456789012345',
    });
    guard.close();
    const restarted = await createReceiptSeqGuard({ dataDir: dir });
    expect(restarted.accept(gatewayA, 7n)).toBe(false);
    expect(restarted.accept(gatewayB, 123456789012345n)).toBe(false);
    expect(restarted.accept(gatewayB, 123456789012346n)).toBe(true);
  });

  it('refuses to start on a corrupt state file rather than forget what it signed', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'aipg-worker-seq-'));
    dirs.push(dir);
    const { writeFile } = await import('node:fs/promises');
    await writeFile(join(dir, SEQ_STATE_FILE), '{"0xabc": 12}');
    await expect(createReceiptSeqGuard({ dataDir: dir })).rejects.toThrow(/is not a number/);
  });
});
