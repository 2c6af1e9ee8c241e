import type { Io } from '../command.ts';

/**
 * Step-by-step progress for long start-ups: `▸ step…` when it begins, `✓ step (1.2 s)` or
 * `✗ step: reason` when it ends. Plain lines (no cursor tricks), so logs and CI read it too.
 */
export type Progress = {
  step<T>(title: string, run: () => Promise<T>): Promise<T>;
};

export function createProgress(io: Io | undefined): Progress {
  return {
    async step(title, run) {
      const started = performance.now();
      io?.stdout.write(`▸ ${title}…\n`);
      try {
        const result = await run();
        io?.stdout.write(`✓ ${title} (${((performance.now() - started) / 1000).toFixed(1)} s)\n`);
        return result;
      } catch (error) {
        io?.stdout.write(`✗ ${title}\n`);
        throw error;
      }
    },
  };
}
