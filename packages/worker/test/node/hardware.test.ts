import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  checkHardwareRule,
  detectHardware,
  HardwareRequirementError,
  parseRocmSmi,
  startWorker,
} from '../../src/index.ts';
import { setupChain, type TestChain } from './helpers/chain.ts';
import { createFakeBackend } from './helpers/fake-backend.ts';
import { type GatewayPeer, startGatewayPeer } from './helpers/gateway-peer.ts';
import { memoryLogger, workerOptions } from './helpers/worker.ts';

const NVIDIA_ARGS = '--query-gpu=name,memory.total --format=csv,noheader,nounits';
const ROCM_ARGS = '--showproductname --showmeminfo vram --json';

let root: string;
let n = 0;
beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'aipg-worker-hw-'));
});
afterAll(async () => {
  await rm(root, { recursive: true, force: true });
});

/**
 * A directory with fake `nvidia-smi` / `rocm-smi` executables that answer only the exact query the
 * worker makes (anything else fails like a usage error), with output in the real tools' formats.
 */
async function fakeTools(tools: { nvidia?: { stdout: string; exit?: number }; rocm?: { stdout: string } }) {
  const dir = join(root, `bin${n++}`);
  await mkdir(dir);
  const script = (args: string, stdout: string, exit = 0) =>
    `#!/bin/sh\nif [ "$*" != "${args}" ]; then echo "unexpected arguments: $*" >&2; exit 2; fi\ncat <<'EOF'\n${stdout}\nEOF\nexit ${exit}\n`;
  if (tools.nvidia) {
    await writeFile(join(dir, 'nvidia-smi'), script(NVIDIA_ARGS, tools.nvidia.stdout, tools.nvidia.exit));
    await chmod(join(dir, 'nvidia-smi'), 0o755);
  }
  if (tools.rocm) {
    await writeFile(join(dir, 'rocm-smi'), script(ROCM_ARGS, tools.rocm.stdout));
    await chmod(join(dir, 'rocm-smi'), 0o755);
  }
  return dir;
}

// rocm-smi 6.x (`Card Series`), as printed on a Radeon RX 7900 XT.
const ROCM_6 = JSON.stringify(
  {
    card0: {
      'VRAM Total Memory (B)': '21458059264',
      'VRAM Total Used Memory (B)': '27856896',
      'Card Series': 'Radeon RX 7900 XT',
      'Card Model': '0x744c',
      'Card Vendor': 'Advanced Micro Devices, Inc. [AMD/ATI]',
      'Card SKU': 'D70401XT',
      'Subsystem ID': '0x471e',
      'Device Rev': '0xcc',
      'Node ID': '1',
      GUID: '26967',
      'GFX Version': 'gfx1100',
    },
  },
  null,
  4,
);

describe('detectHardware', () => {
  it('reads every NVIDIA GPU from nvidia-smi', async () => {
    const searchPath = await fakeTools({
      nvidia: { stdout: 'NVIDIA GeForce RTX 4090, 24564\nNVIDIA GeForce RTX 3060, 12288' },
    });
    const hw = await detectHardware({ searchPath });
    expect(hw.gpus).toEqual([
      { name: 'NVIDIA GeForce RTX 4090', vramMb: 24564 },
      { name: 'NVIDIA GeForce RTX 3060', vramMb: 12288 },
    ]);
    expect(hw.cpuCores).toBeGreaterThanOrEqual(1);
    expect(hw.memoryMb).toBeGreaterThan(100);
  });

  it('reads AMD GPUs from rocm-smi JSON, and both vendors together', async () => {
    const searchPath = await fakeTools({ nvidia: { stdout: 'Tesla T4, 15360' }, rocm: { stdout: ROCM_6 } });
    expect((await detectHardware({ searchPath })).gpus).toEqual([
      { name: 'Tesla T4', vramMb: 15360 },
      { name: 'Radeon RX 7900 XT', vramMb: 20464 },
    ]);
  });

  it('parses older rocm-smi output (`Card series`, a warning line first, a system entry)', () => {
    const stdout = `WARNING: AMD GPU device(s) is/are in a low-power state. Check power control/runtime_status\n\n${JSON.stringify(
      {
        card0: {
          'Card series': 'Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]',
          'VRAM Total Memory (B)': '17163091968',
        },
        card1: {
          'Card series': 'Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]',
          'VRAM Total Memory (B)': '17163091968',
        },
        system: { 'Driver version': '6.2.4' },
      },
    )}`;
    expect(parseRocmSmi(stdout)).toEqual([
      { name: 'Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]', vramMb: 16368 },
      { name: 'Navi 21 [Radeon RX 6800/6800 XT / 6900 XT]', vramMb: 16368 },
    ]);
  });

  it('counts no GPU when nvidia-smi fails (no driver) or no tool is installed', async () => {
    const searchPath = await fakeTools({
      nvidia: {
        stdout:
          "NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. Make sure that the latest NVIDIA driver is installed and running.",
        exit: 9,
      },
    });
    const { logger, lines } = memoryLogger();
    expect((await detectHardware({ searchPath, logger })).gpus).toEqual([]);
    expect(lines.join('\n')).toMatch(/GPU tool failed/);
    expect((await detectHardware({ searchPath: await fakeTools({}) })).gpus).toEqual([]);
  });

  it('reads [N/A] memory (unified-memory parts) as 0 MiB of VRAM', async () => {
    const searchPath = await fakeTools({ nvidia: { stdout: 'NVIDIA GB10, [N/A]' } });
    expect((await detectHardware({ searchPath })).gpus).toEqual([{ name: 'NVIDIA GB10', vramMb: 0 }]);
  });
});

describe('checkHardwareRule', () => {
  const cpu = { gpus: [], cpuCores: 2, memoryMb: 24_000 };
  const gpu = (vramMb: number) => ({ gpus: [{ name: 'GPU', vramMb }], cpuCores: 8, memoryMb: 64_000 });
  const base = { devnet: false, network: 'base' };

  it('allows a CPU-only worker on a devnet', () => {
    expect(checkHardwareRule(cpu, { devnet: true, network: 'devnet' })).toEqual({
      bestGpu: undefined,
      warnings: [],
    });
  });

  it('refuses no GPU, or under 4 GB, on a public network', () => {
    expect(() => checkHardwareRule(cpu, base)).toThrow(
      /GPU with at least 4 GB of VRAM is required on base, and none was found/,
    );
    expect(() => checkHardwareRule(gpu(2048), base)).toThrow(
      /required on base; the largest found is GPU with 2 GB/,
    );
  });

  it('warns under 12 GB and accepts cards that report slightly less than their size', () => {
    expect(checkHardwareRule(gpu(8192), base).warnings).toEqual([
      expect.stringMatching(/has 8 GB of VRAM; 12 GB or more is recommended/),
    ]);
    expect(checkHardwareRule(gpu(12282), base).warnings).toEqual([]); // a "12 GB" RTX 4070
    expect(checkHardwareRule(gpu(4096), base).warnings).toHaveLength(1);
  });
});

describe('startWorker applies the hardware rule with nvidia-smi on PATH (Base Sepolia chain id)', () => {
  let chain: TestChain;
  let peer: GatewayPeer;
  beforeAll(async () => {
    chain = await setupChain({ chainId: 84532 });
    peer = await startGatewayPeer({ chainId: chain.chainId, grid: chain.grid });
    await chain.bondWorker(1);
  });
  afterAll(async () => {
    await peer?.close();
    await chain?.stop();
  });

  it('refuses to start with a 2 GB GPU', async () => {
    const searchPath = await fakeTools({ nvidia: { stdout: 'NVIDIA GeForce GT 1030, 2048' } });
    const options = await workerOptions({
      chain,
      operatorKey: chain.account(1).privateKey,
      gatewayUrl: peer.url,
      network: 'base-sepolia',
      searchPath,
    });
    const backend = createFakeBackend();
    const error = await startWorker(options, {
      backends: [{ backend, maxConcurrency: 1 }],
      logger: memoryLogger().logger,
    }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(HardwareRequirementError);
    expect((error as HardwareRequirementError).code).toBe('WORKER_VRAM_TOO_LOW');
    expect((error as HardwareRequirementError).shortMessage).toBe(
      'a GPU with at least 4 GB of VRAM is required on base-sepolia; the largest found is NVIDIA GeForce GT 1030 with 2 GB',
    );
    expect(backend.loads).toBe(0);
  });

  it('refuses a CPU-only worker on a public network', async () => {
    const options = await workerOptions({
      chain,
      operatorKey: chain.account(1).privateKey,
      gatewayUrl: peer.url,
      network: 'base-sepolia',
      searchPath: await fakeTools({}),
    });
    const backend = createFakeBackend();
    await expect(
      startWorker(options, { backends: [{ backend, maxConcurrency: 1 }], logger: memoryLogger().logger }),
    ).rejects.toMatchObject({ code: 'WORKER_NO_GPU' });
  });

  it('starts with a warning on an 8 GB GPU and advertises it', async () => {
    const searchPath = await fakeTools({ nvidia: { stdout: 'NVIDIA GeForce RTX 3070, 8192' } });
    const options = await workerOptions({
      chain,
      operatorKey: chain.account(1).privateKey,
      gatewayUrl: peer.url,
      network: 'base-sepolia',
      searchPath,
    });
    const backend = createFakeBackend({ name: 'hw-model' });
    await chain.registerModel(backend.model, 10_000);
    const { logger, lines } = memoryLogger();
    const login = peer.nextWorker();
    const worker = await startWorker(options, { backends: [{ backend, maxConcurrency: 1 }], logger });
    try {
      const conn = await login;
      expect(conn.hello.hardware.gpus).toEqual([{ name: 'NVIDIA GeForce RTX 3070', vramMb: 8192 }]);
      expect(worker.status().warnings).toEqual([
        'NVIDIA GeForce RTX 3070 has 8 GB of VRAM; 12 GB or more is recommended: larger models will not fit and this worker will get fewer jobs',
        'model hw-model is registered with a minimum of 9.8 GB of VRAM; the largest GPU here has 8 GB',
      ]);
      expect(lines.some((l) => l.includes('"level":40') && l.includes('12 GB or more is recommended'))).toBe(
        true,
      );
    } finally {
      await worker.stop();
    }
  });
});
