import { approveToken, bond, getAccountStatus, increaseBond, setOperator, testAipgAbi } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import { readContract } from 'viem/actions';
import { defineCommand } from '../command.ts';
import { parseAddress } from '../config.ts';
import { connectSigner } from '../connect.ts';
import { CliError } from '../errors.ts';
import { aipg } from '../output.ts';
import { parseRole } from '../role.ts';

export const stake = defineCommand({
  path: ['stake'],
  usage: '<worker|validator> <amount>',
  summary: 'bond AIPG as a worker or a validator (approves, then bonds or adds to your bond)',
  description: [
    'Bonds <amount> AIPG from your wallet as a worker (minimum 1,000) or a validator (minimum 10,000).',
    'It first approves the Grid to pull exactly what is needed. With an existing bond, the amount is',
    'added to it. Only you can ever withdraw your bond (`aipg unbond`, then `aipg withdraw`).',
  ].join('\n'),
  positionals: { min: 2, max: 2 },
  options: { operator: { type: 'string' }, 'no-approve': { type: 'boolean' } },
  optionsHelp: [
    ['--operator <address>', 'hot key on the rig that signs receipts / attestations (default: your own key)'],
    ['--no-approve', 'don’t send an approve: fail if the current allowance is too low'],
  ],
  examples: [
    'aipg stake worker 1000',
    'aipg stake worker 1000 --operator 0x90F79bf6EB2c4f870365E785982E1f101E93b906',
    'aipg stake validator 10000 --keystore ~/.aipg/validator.json',
  ],
  async run({ args, flags, config, io }) {
    const role = parseRole(args[0]);
    const amount = parseAipg(args[1] as string);
    if (amount === 0n) throw new CliError('the amount must be more than 0', 'USAGE');
    const operator =
      flags.operator === undefined ? undefined : parseAddress(flags.operator as string, '--operator');
    const c = await connectSigner(config);
    const me = c.account.address;
    const status = await getAccountStatus(c.publicClient, { grid: c.grid, account: me, token: c.token });
    const current = status[role];
    const existing = current.amount + current.unbonding > 0n;
    if (!existing && amount < current.minimum) {
      throw new CliError(
        `a ${role} bond needs at least ${aipg(current.minimum)}: ${aipg(amount)} is below the minimum`,
        'PRECONDITION',
      );
    }
    if (status.walletBalance < amount) {
      throw new CliError(
        `not enough AIPG: ${me} holds ${aipg(status.walletBalance)}, the stake needs ${aipg(amount)}`,
        'PRECONDITION',
      );
    }
    const w = (line: string) => io.stdout.write(`${line}\n`);
    if (flags['no-approve']) {
      const allowance = await readContract(c.publicClient, {
        address: c.token,
        abi: testAipgAbi,
        functionName: 'allowance',
        args: [me, c.grid],
      });
      if (allowance < amount) {
        throw new CliError(
          `allowance too low: the Grid may pull ${aipg(allowance)} of your AIPG, the stake needs ${aipg(amount)}`,
          'PRECONDITION',
          'approve the Grid first, or run without --no-approve',
        );
      }
    } else {
      const approval = await approveToken(c.walletClient, { token: c.token, spender: c.grid, amount });
      if (approval.hash) w(`approved the Grid to pull ${aipg(amount)} (tx ${approval.hash})`);
    }
    if (existing) {
      const { hash } = await increaseBond(c.walletClient, { grid: c.grid, role, amount });
      w(`added ${aipg(amount)} to your ${role} bond: now ${aipg(current.amount + amount)} (tx ${hash})`);
      if (operator && operator !== current.operator) {
        const set = await setOperator(c.walletClient, { grid: c.grid, role, operator });
        w(`operator set to ${operator} (tx ${set.hash})`);
      }
    } else {
      const { hash } = await bond(c.walletClient, { grid: c.grid, role, amount, operator });
      w(`bonded ${aipg(amount)} as a ${role} (tx ${hash})`);
      w(`operator: ${operator ?? me}`);
    }
    return 0;
  },
});
