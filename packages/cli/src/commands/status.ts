import {
  type BondStatus,
  type GetGovernanceReturnType,
  type GetPendingChangesReturnType,
  getAccountStatus,
  getGovernance,
  getPendingChanges,
  type PendingChange,
} from '@aipg/chain';
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

/** One line per announced change: what it does, when it may run, when it lapses. */
function changeRows(changes: readonly PendingChange[], now: number): string[][] {
  if (changes.length === 0) return [['pending changes', 'none announced']];
  return changes.map((c, i) => {
    const what =
      c.kind === 'cut'
        ? `contract upgrade: ${c.cut.map((f) => `${f.action} ${f.functionSelectors.length} selector(s) → ${f.facetAddress}`).join('; ')}${c.init === '0x0000000000000000000000000000000000000000' ? '' : `, init ${c.init}`}`
        : c.kind === 'auditConfig'
          ? `audit rules: rate ${c.config.auditRateBps / 100}%, k=${c.config.validatorsPerAudit}, quorum ${c.config.quorum}, commit ${formatDuration(c.config.commitWindow)}, reveal ${formatDuration(c.config.revealWindow)}, worker slash ${aipg(c.config.workerSlashAmount)}, false-vote slash ${aipg(c.config.falseAttestationSlash)}`
          : `randomness source → ${c.source}`;
    const when =
      c.executableAt > now
        ? `executable in ${formatDuration(c.executableAt - now)} (${formatTime(c.executableAt)})`
        : 'executable now';
    return [
      i === 0 ? 'pending changes' : '',
      `${what}; ${when}, expires ${formatTime(c.expiresAt)} [${c.id.slice(0, 10)}…]`,
    ];
  });
}

function governanceRows(g: GetGovernanceReturnType, p: GetPendingChangesReturnType): string[][] {
  return [
    ['grid owner', g.pendingOwner ? `${g.owner} (transferring to ${g.pendingOwner})` : g.owner],
    [
      'rule changes',
      `announced ${formatDuration(g.cutDelay)} ahead, then ${formatDuration(g.changeWindow)} to run`,
    ],
    ...changeRows(p.changes, p.timestamp),
  ];
}

export const status = defineCommand({
  path: ['status'],
  usage: '[address]',
  summary: 'bonds (with unbonding time left), earnings, deposit, slashes and AIPG balance of an account',
  description: [
    'Shows an account’s worker and validator bonds (active amount, unbonding and the time left,',
    'operator key, total slashed), settled earnings, escrow deposit (and any pending withdrawal)',
    'and AIPG wallet balance. [address] defaults to your key’s address. Also who owns the Grid and',
    'the rule changes announced and not yet executed (content, when they may run, when they lapse).',
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
    const [s, governance, pending] = await Promise.all([
      getAccountStatus(c.publicClient, { grid: c.grid, account, token: c.token }),
      getGovernance(c.publicClient, { grid: c.grid }),
      getPendingChanges(c.publicClient, { grid: c.grid, fromBlock: BigInt(c.deployment?.deployBlock ?? 0) }),
    ]);
    const totalSlashed = s.worker.slashed + s.validator.slashed;
    if (flags.json) {
      io.stdout.write(
        `${toJson({
          ...s,
          chainId: c.chainId,
          grid: c.grid,
          rpcUrl: c.rpcUrl,
          totalSlashed,
          governance,
          pendingChanges: pending.changes,
        })}\n`,
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
      ...governanceRows(governance, pending),
    ];
    io.stdout.write(`${table(rows, '')}\n`);
    return 0;
  },
});
