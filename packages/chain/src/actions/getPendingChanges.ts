import { type Address, getAbiItem, type Hex, parseEventLogs } from 'viem';
import { getBlock, getLogs } from 'viem/actions';
import type { ReadClient } from '../client.ts';
import type { AuditParams } from '../deployment.ts';
import type { ChainError } from '../errors.ts';
import { gridAbi } from '../generated/abis.ts';
import { auditConfigFromChain } from '../internal/audit.ts';
import { wrapRead } from '../internal/write.ts';

export type GetPendingChangesParameters = {
  grid: Address;
  /** The first block to read announcements from (the deployment's `deployBlock`). */
  fromBlock: bigint;
  /** The last block (default: latest); also the clock for expiry. */
  toBlock?: bigint | undefined;
};

/** IDiamond.FacetCut with its action named. */
export type FacetCutChange = {
  facetAddress: Address;
  action: 'add' | 'replace' | 'remove';
  functionSelectors: readonly Hex[];
};

/** What an announced change will do once executed. */
export type PendingChangeContent =
  | { kind: 'cut'; cut: FacetCutChange[]; init: Address; initCalldata: Hex }
  | { kind: 'auditConfig'; config: AuditParams }
  | { kind: 'randomnessSource'; source: Address };

export type PendingChange = PendingChangeContent & {
  /** What `cancelChange` takes (`hashDiamondCut`, `hashAuditConfig`, `hashRandomnessSource`). */
  id: Hex;
  /** Unix seconds: it may run within [executableAt, expiresAt]; after that it lapses. */
  executableAt: number;
  expiresAt: number;
  /** `waiting` until executableAt, then `ready`. */
  status: 'waiting' | 'ready';
  announcedInBlock: bigint;
  announcedInTransaction: Hex;
};

/** Announced changes not executed, cancelled or expired, oldest announcement first. */
export type GetPendingChangesReturnType = {
  changes: PendingChange[];
  blockNumber: bigint;
  timestamp: number;
};

export type GetPendingChangesErrorType = ChainError;

const cutActions = ['add', 'replace', 'remove'] as const;

const events = [
  'DiamondCutAnnounced',
  'AuditConfigAnnounced',
  'RandomnessSourceAnnounced',
  'ChangeCancelled',
  'ChangeExecuted',
] as const;

/**
 * The rule changes the owner announced that may still happen: diamond cuts, audit configs and randomness
 * sources, with their full content, from the Grid's logs. `ChangeExecuted` and `ChangeCancelled` consume an
 * announcement by its id; a later announcement of the same id replaces it; one past `expiresAt` has lapsed.
 */
export async function getPendingChanges(
  client: ReadClient,
  { grid, fromBlock, toBlock }: GetPendingChangesParameters,
): Promise<GetPendingChangesReturnType> {
  const [block, logs] = await wrapRead('getPendingChanges', async () => {
    const head = await getBlock(client, toBlock === undefined ? {} : { blockNumber: toBlock });
    const raw = await getLogs(client, {
      address: grid,
      events: events.map((name) => getAbiItem({ abi: gridAbi, name })),
      fromBlock,
      toBlock: head.number,
    });
    return [head, raw] as const;
  });
  const now = Number(block.timestamp);
  const pending = new Map<Hex, PendingChange>();
  for (const log of parseEventLogs({ abi: gridAbi, logs, strict: true })) {
    const at = { announcedInBlock: log.blockNumber, announcedInTransaction: log.transactionHash };
    switch (log.eventName) {
      case 'DiamondCutAnnounced':
        pending.delete(log.args.cutHash);
        pending.set(log.args.cutHash, {
          kind: 'cut',
          id: log.args.cutHash,
          cut: log.args.cut.map(toCut),
          init: log.args.init,
          initCalldata: log.args.initCalldata,
          ...window(log.args.executableAt, log.args.expiresAt, now),
          ...at,
        });
        break;
      case 'AuditConfigAnnounced':
        pending.delete(log.args.id);
        pending.set(log.args.id, {
          kind: 'auditConfig',
          id: log.args.id,
          config: auditConfigFromChain(log.args.config),
          ...window(log.args.executableAt, log.args.expiresAt, now),
          ...at,
        });
        break;
      case 'RandomnessSourceAnnounced':
        pending.delete(log.args.id);
        pending.set(log.args.id, {
          kind: 'randomnessSource',
          id: log.args.id,
          source: log.args.source,
          ...window(log.args.executableAt, log.args.expiresAt, now),
          ...at,
        });
        break;
      case 'ChangeCancelled':
      case 'ChangeExecuted':
        pending.delete(log.args.id);
        break;
    }
  }
  return {
    changes: [...pending.values()].filter((c) => c.expiresAt >= now),
    blockNumber: block.number,
    timestamp: now,
  };
}

function toCut(c: {
  facetAddress: Address;
  action: number;
  functionSelectors: readonly Hex[];
}): FacetCutChange {
  const action = cutActions[c.action];
  if (!action) throw new RangeError(`unknown facet cut action ${c.action}`);
  return { facetAddress: c.facetAddress, action, functionSelectors: c.functionSelectors };
}

function window(executableAt: bigint, expiresAt: bigint, now: number) {
  const e = Number(executableAt);
  return { executableAt: e, expiresAt: Number(expiresAt), status: now < e ? 'waiting' : 'ready' } as const;
}
