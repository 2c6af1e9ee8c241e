import { getAccountStatus, withdrawBond, withdrawEarnings } from '@aipg/chain';
import { defineCommand } from '../command.ts';
import { connectSigner } from '../connect.ts';
import { CliError } from '../errors.ts';
import { aipg, formatDuration, formatTime } from '../output.ts';

const targets = ['worker', 'validator', 'earnings'] as const;

export const withdraw = defineCommand({
  path: ['withdraw'],
  usage: '<worker|validator|earnings>',
  summary: 'withdraw an unbonded bond once its delay has passed, or your settled earnings',
  description: [
    'worker / validator: sends what is unbonding back to your wallet once the unbond delay has passed.',
    'earnings: sends your settled earnings to your wallet. Both work even while the Grid is paused.',
  ].join('\n'),
  positionals: { min: 1, max: 1 },
  examples: ['aipg withdraw worker', 'aipg withdraw validator', 'aipg withdraw earnings'],
  async run({ args, config, io }) {
    const target = args[0] as (typeof targets)[number];
    if (!targets.includes(target)) {
      throw new CliError(`expected worker, validator or earnings, got "${target}"`, 'USAGE');
    }
    const c = await connectSigner(config);
    const status = await getAccountStatus(c.publicClient, {
      grid: c.grid,
      account: c.account.address,
      token: c.token,
    });
    const w = (line: string) => io.stdout.write(`${line}\n`);
    if (target === 'earnings') {
      if (status.earnings === 0n) throw new CliError('no earnings to withdraw', 'PRECONDITION');
      const { hash, amount } = await withdrawEarnings(c.walletClient, { grid: c.grid });
      w(`withdrew ${aipg(amount)} of earnings (tx ${hash})`);
      return 0;
    }
    const bond = status[target];
    if (bond.unbonding === 0n) {
      throw new CliError(
        `nothing is unbonding from your ${target} bond`,
        'PRECONDITION',
        `run aipg unbond ${target} first`,
      );
    }
    if (bond.unbondSecondsLeft > 0) {
      throw new CliError(
        `${aipg(bond.unbonding)} is withdrawable in ${formatDuration(bond.unbondSecondsLeft)} (at ${formatTime(bond.unbondReadyAt)})`,
        'PRECONDITION',
      );
    }
    const { hash, amount } = await withdrawBond(c.walletClient, { grid: c.grid, role: target });
    w(`withdrew ${aipg(amount)} from your ${target} bond (tx ${hash})`);
    return 0;
  },
});
