import { type BondStatus, getAccountStatus } from '@aipg/chain';
import type { Address } from 'viem';
import { defineCommand } from '../command.ts';
import { parseAddress } from '../config.ts';
import { connect, loadAccount } from '../connect.ts';
import { CliError } from '../errors.ts';
import { aipg, formatDuration, formatTime, table, toJson } from '../output.ts';

function bondRows(name: string, bond: BondStatus): string[][] {
  if (bond.amount === 0n && bond.unbonding === 0n) {
    return [
      [name, `none (minimum ${aipg(bond.minimum)})`],
      ...(bond.slashed > 0n ? [['  slashed', aipg(bond.slashed)]] : []),
    ];
  }
  const rows = [
    [name, `${aipg(bond.amount)} ${bond.active ? 'active' : 'inactive'} (minimum ${aipg(bond.minimum)})`],
    ['  operator', bond.operator],
  ];
  if (bond.unbonding > 0n) {
    const when =
      bond.unbondSecondsLeft > 0
        ? `withdrawable in ${formatDuration(bond.unbondSecondsLeft)} (${formatTime(bond.unbondReadyAt)})`
        : 'withdrawable now';
    rows.push(['  unbonding', `${aipg(bond.unbonding)}, ${when}`]);
  }
  rows.push(['  slashed', aipg(bond.slashed)]);
  return rows;
}

export const status = defineCommand({
  path: ['status'],
  usage: '[address]',
  summary: 'bonds (with unbonding time left), earnings, deposit, slashes and AIPG balance of an account',
  description: [
    'Shows an account’s worker and validator bonds (active amount, unbonding and the time left,',
    'operator key, total slashed), settled earnings, escrow deposit (and any pending withdrawal)',
    'and AIPG wallet balance. [address] defaults to your key’s address.',
    '--json prints one JSON object; amounts are wei as decimal strings, times unix seconds.',
  ].join('\n'),
  positionals: { min: 0, max: 1 },
  options: { json: { type: 'boolean' } },
  optionsHelp: [['--json', 'one JSON object (amounts as wei strings)']],
  examples: ['aipg status', 'aipg status 0x70997970C51812dc3A010C7d01b50e0d17dc79C8 --json'],
  async run({ args, flags, config, io }) {
    let account: Address;
    if (args[0] !== undefined) account = parseAddress(args[0], 'the account');
    else if (config.key) account = (await loadAccount(config.key)).address;
    else {
      throw new CliError('whose status?', 'USAGE', 'pass an address, or set AIPG_PRIVATE_KEY / --keystore');
    }
    const c = await connect(config);
    const s = await getAccountStatus(c.publicClient, { grid: c.grid, account, token: c.token });
    const totalSlashed = s.worker.slashed + s.validator.slashed;
    if (flags.json) {
      io.stdout.write(
        `${toJson({ ...s, chainId: c.chainId, grid: c.grid, rpcUrl: c.rpcUrl, totalSlashed })}\n`,
      );
      return 0;
    }
    const deposit =
      s.deposit.withdrawRequested > 0n
        ? `${aipg(s.deposit.balance)} (withdrawal of ${aipg(s.deposit.withdrawRequested)} ${
            s.deposit.withdrawSecondsLeft > 0
              ? `ready in ${formatDuration(s.deposit.withdrawSecondsLeft)}`
              : 'ready now'
          })`
        : aipg(s.deposit.balance);
    const rows = [
      ['account', account],
      ['chain', `${c.chainId} at ${c.rpcUrl}, Grid ${c.grid}`],
      ['chain time', formatTime(s.chainTime)],
      ['wallet', aipg(s.walletBalance)],
      ...bondRows('worker bond', s.worker),
      ...bondRows('validator bond', s.validator),
      ['earnings', aipg(s.earnings)],
      ['deposit', deposit],
      ['total slashed', aipg(totalSlashed)],
    ];
    io.stdout.write(`${table(rows, '')}\n`);
    return 0;
  },
});
