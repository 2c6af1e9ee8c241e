import { type ChildProcess, execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { imageInfo } from '@aipg/core';
import { afterAll, describe, expect, it } from 'vitest';

const run = promisify(execFile);
const BIN = resolve(import.meta.dirname, '../bin/aipg.js');

// `npm start` is `aipg devnet`: run the real command, paste the curl line it prints, Ctrl-C it.
describe('aipg devnet (the npm start command)', () => {
  let child: ChildProcess | undefined;
  let dir: string | undefined;
  afterAll(async () => {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('starts, answers the printed curl line with a completion and a fee, and stops everything on Ctrl-C', async () => {
    dir = await mkdtemp(join(tmpdir(), 'aipg-devnet-cli-'));
    const proc = spawn(
      process.execPath,
      [BIN, 'devnet', '--port', '0', '--rpc-port', '0', '--dir', dir, '--model', 'tiny'],
      {
        stdio: ['ignore', 'pipe', 'pipe'],
      },
    );
    child = proc;
    let out = '';
    proc.stdout!.on('data', (d) => {
      out += d;
    });
    proc.stderr!.on('data', (d) => {
      out += d;
    });
    const exited = new Promise<number | null>((r) => proc.on('exit', (code) => r(code)));
    const deadline = Date.now() + 90_000;
    while (!out.includes('Press Ctrl-C to stop.')) {
      if (proc.exitCode !== null || Date.now() > deadline) throw new Error(`devnet did not come up:\n${out}`);
      await new Promise((r) => setTimeout(r, 200));
    }
    // progress lines while starting
    expect(out).toMatch(/✓ Starting local chain/);
    expect(out).toMatch(/✓ Starting the worker/);
    expect(out).toContain("anvil's public test keys");

    // The printed curl lines, as a person pastes them: the chat one, then the image one.
    const block = (from: number) =>
      out.slice(out.indexOf('curl ', from), out.indexOf('\n\n', out.indexOf('curl ', from)));
    const curl = block(0);
    const imageCurl = block(out.indexOf('curl ') + curl.length);
    expect(imageCurl).toContain('/v1/images/generations');
    const { stdout } = await run('bash', ['-c', `${curl} --silent --show-error --fail-with-body`]);
    const body = JSON.parse(stdout) as {
      choices: { message: { content: string } }[];
      grid: { fee_wei: string };
    };
    expect(body.choices[0]!.message.content).toEqual(expect.any(String));
    expect(BigInt(body.grid.fee_wei)).toBeGreaterThan(0n);

    const info = JSON.parse(await readFile(join(dir, 'devnet.json'), 'utf8')) as {
      rpcUrl: string;
      gatewayUrl: string;
    };
    const balance = await fetch(`${info.gatewayUrl}/v1/balance`, {
      headers: { authorization: curl.match(/Authorization: (Bearer [^"]+)/)![1]! },
    }).then((r) => r.json() as Promise<{ unsettled: { wei: string } }>);
    expect(balance.unsettled.wei).toBe(body.grid.fee_wei);

    // The image line: a link to a real PNG the worker made, its fee in grid.
    const image = JSON.parse(
      (await run('bash', ['-c', `${imageCurl} --silent --show-error --fail-with-body`])).stdout,
    ) as { data: { url: string }[]; grid: { fee_wei: string } };
    expect(BigInt(image.grid.fee_wei)).toBeGreaterThan(0n);
    const png = new Uint8Array(await (await fetch(image.data[0]!.url)).arrayBuffer());
    expect(imageInfo(png)).toEqual({ format: 'png', width: 256, height: 256 });

    proc.kill('SIGINT');
    expect(await exited).toBe(0);
    expect(out).toContain('devnet stopped');
    // nothing left listening: the gateway and anvil are gone
    await expect(fetch(`${info.gatewayUrl}/healthz`)).rejects.toThrow();
    await expect(
      fetch(info.rpcUrl, { method: 'POST', body: '{"jsonrpc":"2.0","id":1,"method":"eth_chainId"}' }),
    ).rejects.toThrow();
  }, 150_000);
});
