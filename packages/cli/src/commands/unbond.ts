import { cancelUnbond, getBond, requestUnbond } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import { defineCommand } from '../command.ts';
import { connectSigner } from '../connect.ts';
import { CliError } from '../errors.ts';
import { aipg, formatDuration, formatTime } from '../output.ts';
import { parseRole } from '../role.ts';

export const unbond = defineCommand({
  path: ['unbond'],
  usage: '<worker|validator> [amount]',
  summary: 'start unbonding (all of the active bond by default); --cancel moves it back',
  description: [
    'Moves [amount] AIPG (default: the whole active bond) of your bond to unbonding. It stays',
    'slashable during the unbond delay (7 days on Base, 30 s on a devnet); then `aipg withdraw`',
    'sends it to you. What stays bonded must be 0 or at least the minimum. A new request restarts',
    'the delay for everything unbonding.',
  ].join('\n'),
  positionals: { min: 1, max: 2 },
  options: { cancel: { type: 'boolean' } },
  optionsHelp: [['--cancel', 'move everything unbonding back to the active bond']],
  examples: ['aipg unbond worker', 'aipg unbond validator 2500', 'aipg unbond worker --cancel'],
  async run({ args, flags, config, io }) {
    const role = parseRole(args[0]);
    const requested = args[1] === undefined ? undefined : parseAipg(args[1]);
    if (requested === 0n) throw new CliError('the amount must be more than 0', 'USAGE');
    if (flags.cancel && requested !== undefined) throw new CliError('--cancel takes no amount', 'USAGE');
    const c = await connectSigner(config);
    const current = await getBond(c.publicClient, { grid: c.grid, role, owner: c.account.address });
    const w = (line: string) => io.stdout.write(`${line}\n`);

    if (flags.cancel) {
      if (current.unbonding === 0n)
        throw new CliError(`nothing is unbonding from your ${role} bond`, 'PRECONDITION');
      const { hash } = await cancelUnbond(c.walletClient, { grid: c.grid, role });
      w(`cancelled: ${aipg(current.unbonding)} is back in your ${role} bond (tx ${hash})`);
      return 0;
    }
    if (current.amount === 0n) {
      throw new CliError(
        `no active ${role} bond to unbond`,
        'PRECONDITION',
        current.unbonding > 0n ? `${aipg(current.unbonding)} is already unbonding` : undefined,
      );
    }
    const amount = requested ?? current.amount;
    if (amount > current.amount) {
      throw new CliError(
        `cannot unbond ${aipg(amount)}: your active ${role} bond is ${aipg(current.amount)}`,
        'PRECONDITION',
      );
    }
    const { hash, readyAt } = await requestUnbond(c.walletClient, { grid: c.grid, role, amount });
    const block = await c.publicClient.getBlock();
    const left = Math.max(0, readyAt - Number(block.timestamp));
    w(`unbonding ${aipg(amount)} of your ${role} bond (tx ${hash})`);
    if (current.unbonding > 0n)
      w(`with the ${aipg(current.unbonding)} already unbonding: ${aipg(current.unbonding + amount)} in all`);
    w(`withdrawable at ${formatTime(readyAt)} (in ${formatDuration(left)}): then run aipg withdraw ${role}`);
    return 0;
  },
});
