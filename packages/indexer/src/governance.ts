import { chainNow, type QueryDeps } from './queries.ts';
import { checksum, iso } from './types.ts';

/**
 * Who governs the Grid and the rule changes announced but not executed, cancelled or lapsed, from the
 * indexed events (the same reduction as `@aipg/chain`'s `getPendingChanges`, over `network_events`):
 * `ChangeExecuted` and `ChangeCancelled` consume an announcement by its id, and an announcement lapses at
 * `expiresAt`.
 */

export type PendingChangeItem = {
  id: string;
  kind: 'cut' | 'audit_config' | 'randomness_source';
  /** One line for people: what it changes. */
  summary: string;
  /** The announced content, as the event carried it (integers as decimal strings). */
  content: Record<string, unknown>;
  executable_at: string;
  expires_at: string;
  /** `waiting` until executable_at, then `ready` until expires_at. */
  status: 'waiting' | 'ready';
  announced: { block: number; tx: string; time: string };
};

const NAMES = [
  'DiamondCutAnnounced',
  'AuditConfigAnnounced',
  'RandomnessSourceAnnounced',
  'ChangeCancelled',
  'ChangeExecuted',
  'OwnershipTransferStarted',
  'OwnershipTransferred',
];

type Row = Record<string, unknown>;
type Args = Record<string, unknown>;
const ACTIONS = ['add', 'replace', 'remove'];

function cutSummary(cut: { facetAddress: string; action: number | string; functionSelectors: string[] }[]) {
  return cut
    .map(
      (c) =>
        `${ACTIONS[Number(c.action)] ?? c.action} ${c.functionSelectors.length} selector(s) → ${c.facetAddress}`,
    )
    .join('; ');
}

function configSummary(c: Args) {
  return `audit ${Number(c.auditRateBps) / 100}% · k=${c.validatorsPerAudit} quorum ${c.quorum} · commit ${c.commitWindow}s reveal ${c.revealWindow}s · worker slash ${c.workerSlashAmount} wei`;
}

export async function governanceView(deps: QueryDeps) {
  const rows = await deps.db.query<Row>(
    `SELECT name, args, block_number::text AS block, tx_hash, extract(epoch FROM block_time)::float8 AS t
     FROM network_events WHERE name = ANY($1::text[]) ORDER BY block_number, log_index`,
    [NAMES],
  );
  return reduce(rows, chainNow(deps.status()));
}

function reduce(rows: Row[], now: number) {
  const pending = new Map<string, PendingChangeItem>();
  let owner: string | null = null;
  let pendingOwner: string | null = null;
  for (const r of rows) {
    const a = r.args as Args;
    const announced = { block: Number(r.block), tx: String(r.tx_hash), time: iso(Number(r.t))! };
    const at = (kind: PendingChangeItem['kind'], id: string, content: Args, summary: string) => {
      const executableAt = Number(a.executableAt);
      pending.delete(id);
      pending.set(id, {
        id,
        kind,
        summary,
        content,
        executable_at: iso(executableAt)!,
        expires_at: iso(Number(a.expiresAt))!,
        status: now < executableAt ? 'waiting' : 'ready',
        announced,
      });
    };
    switch (r.name) {
      case 'DiamondCutAnnounced': {
        const cut = a.cut as Parameters<typeof cutSummary>[0];
        at('cut', String(a.cutHash), { cut, init: a.init, init_calldata: a.initCalldata }, cutSummary(cut));
        break;
      }
      case 'AuditConfigAnnounced':
        at('audit_config', String(a.id), a.config as Args, configSummary(a.config as Args));
        break;
      case 'RandomnessSourceAnnounced':
        at('randomness_source', String(a.id), { source: a.source }, `randomness source → ${a.source}`);
        break;
      case 'ChangeCancelled':
      case 'ChangeExecuted':
        pending.delete(String(a.id));
        break;
      case 'OwnershipTransferStarted':
        pendingOwner = String(a.newOwner);
        break;
      case 'OwnershipTransferred':
        owner = String(a.newOwner);
        pendingOwner = null;
        break;
    }
  }
  const changes = [...pending.values()].filter((c) => Date.parse(c.expires_at) / 1000 >= now);
  return {
    object: 'network.governance' as const,
    owner: checksum(owner),
    pending_owner: checksum(pendingOwner),
    now: iso(now),
    pending_changes: changes,
  };
}

export type GovernanceView = ReturnType<typeof reduce>;
