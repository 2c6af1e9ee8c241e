import { execFile } from 'node:child_process';
import { constants } from 'node:fs';
import { access } from 'node:fs/promises';
import { availableParallelism, totalmem } from 'node:os';
import { delimiter, join } from 'node:path';
import type { Hardware } from '@aipg/core';
import type { Logger } from 'pino';

export type Gpu = Hardware['gpus'][number];

export type DetectHardwareOptions = {
  /** The PATH searched for `nvidia-smi` and `rocm-smi` (from the worker options; no PATH: no GPU tools). */
  searchPath?: string | undefined;
  /** Per tool; a hung driver must not hang the start. */
  timeoutMs?: number | undefined;
  logger?: Logger | undefined;
};

const MIB = 1024 * 1024;

/**
 * What this machine offers: GPUs from `nvidia-smi` and `rocm-smi` (whichever are installed and
 * answer), CPU cores and memory. A tool that is missing, fails or prints something unparsable
 * contributes no GPU; the reason is logged at debug/warn level.
 */
export async function detectHardware(options: DetectHardwareOptions = {}): Promise<Hardware> {
  const { searchPath, timeoutMs = 10_000, logger } = options;
  const [nvidia, amd] = await Promise.all([
    probe('nvidia-smi', ['--query-gpu=name,memory.total', '--format=csv,noheader,nounits'], parseNvidiaSmi),
    probe('rocm-smi', ['--showproductname', '--showmeminfo', 'vram', '--json'], parseRocmSmi),
  ]);
  return {
    gpus: [...nvidia, ...amd],
    cpuCores: Math.max(1, availableParallelism()),
    memoryMb: Math.floor(totalmem() / MIB),
  };

  async function probe(tool: string, args: string[], parse: (stdout: string) => Gpu[]): Promise<Gpu[]> {
    const file = await findExecutable(tool, searchPath);
    if (!file) {
      logger?.debug({ tool }, 'GPU tool not found on PATH');
      return [];
    }
    try {
      const stdout = await run(file, args, timeoutMs);
      const gpus = parse(stdout);
      logger?.debug({ tool, gpus }, 'GPU tool answered');
      return gpus;
    } catch (error) {
      logger?.warn({ tool, error: (error as Error).message }, 'GPU tool failed: its GPUs are not counted');
      return [];
    }
  }
}

/**
 * `nvidia-smi --query-gpu=name,memory.total --format=csv,noheader,nounits`: one line per GPU,
 * `NVIDIA GeForce RTX 4090, 24564` (MiB). Memory reads `[N/A]` on unified-memory parts: counted
 * as 0 MiB of dedicated VRAM.
 */
export function parseNvidiaSmi(stdout: string): Gpu[] {
  const gpus: Gpu[] = [];
  for (const raw of stdout.split(/\r?\n/)) {
    const line = raw.trim();
    if (!line) continue;
    const comma = line.lastIndexOf(',');
    if (comma < 0) throw new Error(`unexpected nvidia-smi line: ${line.slice(0, 120)}`);
    const name = line.slice(0, comma).trim();
    const memory = line.slice(comma + 1).trim();
    const mib = /^\d+(\.\d+)?$/.test(memory) ? Math.floor(Number(memory)) : 0;
    gpus.push({ name: name.slice(0, 200) || 'NVIDIA GPU', vramMb: mib });
  }
  return gpus;
}

/**
 * `rocm-smi --showproductname --showmeminfo vram --json`: an object keyed `card0`, `card1`, … with
 * `"VRAM Total Memory (B)": "21458059264"` and `"Card Series"` (older releases: `"Card series"`).
 * Warnings printed before the JSON are skipped; a `system` entry is ignored.
 */
export function parseRocmSmi(stdout: string): Gpu[] {
  const start = stdout.indexOf('{');
  const end = stdout.lastIndexOf('}');
  if (start < 0 || end < start) throw new Error('rocm-smi printed no JSON');
  const json = JSON.parse(stdout.slice(start, end + 1)) as Record<string, unknown>;
  const gpus: Gpu[] = [];
  for (const [key, value] of Object.entries(json)) {
    if (!/^card\d+$/i.test(key) || !value || typeof value !== 'object') continue;
    const fields = new Map(
      Object.entries(value as Record<string, unknown>).map(([k, v]) => [k.toLowerCase(), String(v)]),
    );
    const bytes = fields.get('vram total memory (b)');
    const name =
      fields.get('card series') ??
      fields.get('card sku') ??
      fields.get('card model') ??
      fields.get('card vendor') ??
      'AMD GPU';
    gpus.push({
      name: name.slice(0, 200),
      vramMb: bytes && /^\d+$/.test(bytes) ? Math.floor(Number(bytes) / MIB) : 0,
    });
  }
  return gpus;
}

async function findExecutable(name: string, searchPath: string | undefined): Promise<string | undefined> {
  for (const dir of (searchPath ?? '').split(delimiter)) {
    if (!dir) continue;
    const file = join(dir, name);
    try {
      await access(file, constants.X_OK);
      return file;
    } catch {
      // not in this directory
    }
  }
  return undefined;
}

function run(file: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      file,
      args,
      { timeout: timeoutMs, maxBuffer: 1024 * 1024, windowsHide: true },
      (error, stdout, stderr) => {
        if (error) {
          const detail = String(stderr || stdout)
            .trim()
            .split('\n')[0];
          reject(
            new Error(detail ? `${error.message.split('\n')[0]}: ${detail}` : error.message.split('\n')[0]),
          );
        } else {
          resolve(String(stdout));
        }
      },
    );
  });
}
