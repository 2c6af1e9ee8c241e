import { resolve } from 'node:path';
import { ChainError, startDevChain, writeDeployment } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import { defineCommand } from '../command.ts';
import { CliError } from '../errors.ts';
import { aipg, table } from '../output.ts';

function port(value: string | undefined): number {
  if (value === undefined) return 8545;
  const n = Number(value);
  if (!/^\d+$/.test(value) || n > 65_535)
    throw new CliError(`invalid --port "${value}"`, 'USAGE', 'expected 0..65535 (0: any free port)');
  return n;
}

function blockTime(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0)
    throw new CliError(`invalid --block-time "${value}"`, 'USAGE', 'expected seconds > 0');
  return n;
}

export const chainUp = defineCommand({
  path: ['chain', 'up'],
  summary: 'start a local chain (anvil) with the Grid deployed and test AIPG funded; Ctrl-C stops it',
  description: [
    'Starts anvil, deploys the whole Grid (devnet parameters: 30 s unbond and deposit delays) with a',
    'test AIPG token, mints test AIPG to anvil’s 10 public test accounts, writes the deployment file',
    'and stays up until Ctrl-C (SIGINT) or SIGTERM, then stops anvil cleanly.',
  ].join('\n'),
  options: {
    port: { type: 'string' },
    out: { type: 'string' },
    'block-time': { type: 'string' },
    fund: { type: 'string' },
  },
  optionsHelp: [
    ['--port <n>', 'RPC port (default 8545; 0 picks a free one)'],
    ['--out <file>', 'where to write the deployment (default: --deployment, i.e. .aipg/deployment.json)'],
    ['--block-time <s>', 'mine a block every s seconds (default: one block per transaction)'],
    ['--fund <amount>', 'test AIPG per account (default 1000000)'],
  ],
  examples: ['aipg chain up', 'aipg chain up --port 0 --out /tmp/grid.json'],
  async run({ flags, config, io, waitForShutdown }) {
    const out = resolve((flags.out as string | undefined) ?? config.deploymentPath);
    const fundAmount = parseAipg((flags.fund as string | undefined) ?? '1000000');
    // Listen before starting anvil: a Ctrl-C during the deployment still stops it cleanly.
    const shutdown = waitForShutdown();
    const rpcPort = port(flags.port as string | undefined);
    const dev = await startDevChain({
      port: rpcPort,
      blockTime: blockTime(flags['block-time'] as string | undefined),
      fundAmount,
    }).catch((error: unknown) => {
      if (
        error instanceof ChainError &&
        error.code === 'ANVIL_START' &&
        /in use/i.test(error.details ?? '')
      ) {
        throw new CliError(
          `port ${rpcPort} is already in use`,
          'USAGE',
          'pass --port <n>, or --port 0 for any free port',
        );
      }
      throw error;
    });
    try {
      const { anvil, deployment } = dev;
      await writeDeployment(out, { ...deployment, rpcUrl: anvil.rpcUrl });
      const w = (line = '') => io.stdout.write(`${line}\n`);
      w('AIPG devnet chain is up');
      w(
        table([
          ['RPC URL', anvil.rpcUrl],
          ['chain id', String(anvil.chainId)],
          ['Grid', deployment.grid],
          ['AIPG token', `${deployment.token} (test AIPG)`],
          ['owner', deployment.owner],
          ['deploy block', String(deployment.deployBlock)],
          ['deployment', out],
        ]),
      );
      w();
      w('Facets');
      w(table(Object.entries(deployment.facets)));
      w();
      w(`Funded accounts (${aipg(fundAmount)} and 10,000 ETH each)`);
      w("anvil's public test keys — never use them for real funds");
      w(
        table([
          ['#', 'address', 'private key'],
          ...dev.accounts.map((a, i) => [String(i), a.address, a.privateKey]),
        ]),
      );
      w();
      w(`Try: AIPG_PRIVATE_KEY=${dev.accounts[1].privateKey} aipg stake worker 1000`);
      w('Press Ctrl-C to stop.');
      const signal = await shutdown;
      w(`${signal}: stopping anvil…`);
    } finally {
      await dev.stop();
    }
    io.stdout.write('anvil stopped\n');
    return 0;
  },
});
