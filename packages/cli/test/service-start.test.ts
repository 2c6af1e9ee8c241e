import { describe, expect, it } from 'vitest';
import { main } from '../src/main.ts';

function io() {
  const out = { stdout: '', stderr: '' };
  return {
    out,
    streams: {
      stdout: { write: (s: string) => (out.stdout += s) },
      stderr: { write: (s: string) => (out.stderr += s) },
    },
  };
}

describe('aipg worker start', () => {
  it('is listed and has help', async () => {
    const { out, streams } = io();
    expect(await main(['worker', 'start', '--help'], { env: {}, ...streams })).toBe(0);
    expect(out.stdout).toContain('aipg worker start');
    expect(out.stdout).toContain('--gguf');
  });

  it('refuses a malformed --grid before starting anything', async () => {
    const { out, streams } = io();
    expect(await main(['worker', 'start', '--grid', 'nope'], { env: {}, ...streams })).toBe(1);
    expect(out.stderr).toMatch(/^error: invalid address "nope" for --grid/);
  });

  it('refuses to start without an operator key, with one clear line and exit 1', async () => {
    const { out, streams } = io();
    const code = await main(
      [
        'worker',
        'start',
        '--model',
        'm',
        '--gguf',
        '/nonexistent.gguf',
        '--grid',
        '0x5FbDB2315678afecb367f032d93F642f64180aa3',
      ],
      {
        env: {},
        ...streams,
      },
    );
    expect(code).toBe(1);
    expect(out.stderr).toMatch(/^aipg worker: .*(operator key|AIPG_OPERATOR_KEY)/i);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
    expect(out.stderr).not.toMatch(/\n\s+at /);
  });
});

describe('aipg validator start', () => {
  it('is listed and has help', async () => {
    const { out, streams } = io();
    expect(await main(['validator', 'start', '--help'], { env: {}, ...streams })).toBe(0);
    expect(out.stdout).toContain('aipg validator start');
    expect(out.stdout).toContain('--mode reexecute|crosscheck');
  });

  it('refuses to start without an operator key, with one clear line and exit 1', async () => {
    const { out, streams } = io();
    const code = await main(['validator', 'start', '--grid', '0x5FbDB2315678afecb367f032d93F642f64180aa3'], {
      env: {},
      ...streams,
    });
    expect(code).toBe(1);
    expect(out.stderr).toMatch(/^aipg validator: .*(operator key|AIPG_OPERATOR_KEY)/i);
    expect(out.stderr.trim().split('\n')).toHaveLength(1);
  });
});

describe('aipg devnet on a busy port', () => {
  it('names the port and how to choose another, exit 1', async () => {
    const { createServer } = await import('node:net');
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { join } = await import('node:path');
    const server = createServer();
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const busy = (server.address() as { port: number }).port;
    const dir = await mkdtemp(join(tmpdir(), 'aipg-busy-'));
    try {
      const { out, streams } = io();
      const code = await main(['devnet', '--rpc-port', String(busy), '--port', '0', '--dir', dir], {
        env: {},
        ...streams,
      });
      expect(code).toBe(1);
      expect(out.stderr).toContain(`the chain RPC port ${busy} is already in use`);
      expect(out.stderr).toContain('--rpc-port 0');
      expect(out.stderr).not.toMatch(/\n\s+at /);
    } finally {
      server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
