import { gatewayFaultReason } from '@aipg/chain';
import type { Hex } from 'viem';
import type { IndexedEvent } from './events.ts';
import type { Sql } from './sql.ts';

/**
 * Folds chain events into the `network_*` state tables, exactly as the contracts change their storage
 * (LibBonding, LibPayments, ModelRegistry), plus the gateway fault reports of LibAudit (one row each). The
 * state is a pure function of `network_events`: after a reorg it is rebuilt by replaying them (`rebuildState`).
 */

type EventRow = Pick<IndexedEvent, 'name' | 'role' | 'account' | 'related' | 'modelId' | 'amount'> & {
  blockNumber: bigint;
  logIndex: number;
  txHash: string;
  blockTime: number;
  args: Record<string, unknown>;
};

const big = (v: unknown): bigint => (v === undefined || v === null ? 0n : BigInt(v as string));
const minBig = (a: bigint, b: bigint) => (a < b ? a : b); // Math.min does not take bigints
const low = (a: string | null) => (a ? a.toLowerCase() : null);

async function loadBond(tx: Sql, role: string, owner: string) {
  const rows = await tx.query<Record<string, unknown>>(
    `SELECT amount::text AS amount, unbonding::text AS unbonding, unbond_ready_at::text AS ready, operator
     FROM network_bonds WHERE role = $1 AND owner = $2`,
    [role, owner.toLowerCase()],
  );
  const r = rows[0];
  return r
    ? {
        exists: true,
        amount: big(r.amount),
        unbonding: big(r.unbonding),
        readyAt: big(r.ready),
        operator: (r.operator as string | null) ?? null,
      }
    : { exists: false, amount: 0n, unbonding: 0n, readyAt: 0n, operator: null as string | null };
}

async function saveBond(
  tx: Sql,
  e: EventRow,
  b: { amount: bigint; unbonding: bigint; readyAt: bigint; operator: string | null },
  slashed = 0n,
) {
  await tx.query(
    `INSERT INTO network_bonds (role, owner, amount, unbonding, unbond_ready_at, operator, slashed, slash_count,
       first_bonded_at, updated_block)
     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, to_timestamp($9), $10)
     ON CONFLICT (role, owner) DO UPDATE SET amount = EXCLUDED.amount, unbonding = EXCLUDED.unbonding,
       unbond_ready_at = EXCLUDED.unbond_ready_at, operator = EXCLUDED.operator,
       slashed = network_bonds.slashed + EXCLUDED.slashed, slash_count = network_bonds.slash_count + EXCLUDED.slash_count,
       updated_block = EXCLUDED.updated_block`,
    [
      e.role,
      low(e.account),
      b.amount.toString(),
      b.unbonding.toString(),
      b.readyAt.toString(),
      b.operator,
      slashed.toString(),
      slashed > 0n ? 1 : 0,
      e.blockTime,
      e.blockNumber.toString(),
    ],
  );
}

async function setParam(tx: Sql, key: string, value: string, block: bigint) {
  await tx.query(
    `INSERT INTO network_params (key, value, updated_block) VALUES ($1, $2, $3)
     ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value, updated_block = EXCLUDED.updated_block`,
    [key, value, block.toString()],
  );
}

type Rates = { inputPerMTokens?: unknown; outputPerMTokens?: unknown; perMegapixelStep?: unknown };

/** Applies one event to the state tables (inside the indexer's transaction). */
export async function applyEvent(tx: Sql, e: EventRow): Promise<void> {
  const a = e.args;
  switch (e.name) {
    case 'Bonded': {
      const b = await loadBond(tx, e.role!, e.account!);
      return saveBond(tx, e, { ...b, amount: big(a.newAmount) });
    }
    case 'UnbondRequested': {
      const b = await loadBond(tx, e.role!, e.account!);
      const amount = big(a.amount);
      return saveBond(tx, e, {
        ...b,
        amount: b.amount - amount,
        unbonding: b.unbonding + amount,
        readyAt: big(a.readyAt),
      });
    }
    case 'UnbondCancelled': {
      const b = await loadBond(tx, e.role!, e.account!);
      return saveBond(tx, e, { ...b, amount: b.amount + b.unbonding, unbonding: 0n, readyAt: 0n });
    }
    case 'BondWithdrawn': {
      const b = await loadBond(tx, e.role!, e.account!);
      return saveBond(tx, e, {
        ...b,
        unbonding: 0n,
        readyAt: 0n,
        operator: b.amount === 0n ? null : b.operator,
      });
    }
    case 'OperatorSet': {
      const b = await loadBond(tx, e.role!, e.account!);
      return saveBond(tx, e, { ...b, operator: low(e.related) ?? low(e.account) });
    }
    case 'BondSlashed': {
      // LibBonding.slash: the active bond first, then the unbonding part.
      const b = await loadBond(tx, e.role!, e.account!);
      const amount = big(a.amount);
      const fromActive = minBig(amount, b.amount);
      const fromUnbonding = minBig(amount - fromActive, b.unbonding);
      const unbonding = b.unbonding - fromUnbonding;
      const next = {
        amount: b.amount - fromActive,
        unbonding,
        readyAt: unbonding === 0n ? 0n : b.readyAt,
        operator: b.operator,
      };
      if (next.amount === 0n && next.unbonding === 0n) next.operator = null;
      return saveBond(tx, e, next, amount);
    }
    case 'WorkerCredited':
      await tx.query(
        `INSERT INTO network_accounts (address, gross, earned, credits) VALUES ($1, $2, $3, 1)
         ON CONFLICT (address) DO UPDATE SET gross = network_accounts.gross + EXCLUDED.gross,
           earned = network_accounts.earned + EXCLUDED.earned, credits = network_accounts.credits + 1`,
        [low(e.account), big(a.gross).toString(), big(a.net).toString()],
      );
      return;
    case 'ValidatorRewarded':
      // LibAudit: a finder's share of a worker slash (FAIL) or the pass reward from the validator pool
      // (PASS), both credited to the validator owner's withdrawable earnings.
      await tx.query(
        `INSERT INTO network_accounts (address, gross, earned) VALUES ($1, $2, $2)
         ON CONFLICT (address) DO UPDATE SET gross = network_accounts.gross + EXCLUDED.gross,
           earned = network_accounts.earned + EXCLUDED.earned`,
        [low(e.account), big(a.amount).toString()],
      );
      return;
    case 'EarningsWithdrawn':
      await tx.query(
        `INSERT INTO network_accounts (address, withdrawn) VALUES ($1, $2)
         ON CONFLICT (address) DO UPDATE SET withdrawn = network_accounts.withdrawn + EXCLUDED.withdrawn`,
        [low(e.account), big(a.amount).toString()],
      );
      return;
    case 'ModelRegistered': {
      // The event has no rate card: the indexer read it from the registry at this block (`args.registry`).
      const reg = (a.registry ?? {}) as {
        rates?: Rates;
        parameterCount?: string;
        minVramMb?: number;
        active?: boolean;
      };
      await tx.query(
        `INSERT INTO network_models (id, name, kind, weights_hash, tokenizer_hash, parameter_count, min_vram_mb,
           input_per_m, output_per_m, per_mp_step, active, registered_block, registered_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, true, $11, to_timestamp($12))
         ON CONFLICT (id) DO NOTHING`,
        [
          e.modelId,
          a.name,
          Number(a.kind) === 1 ? 'image' : 'text',
          String(a.weightsHash).toLowerCase(),
          a.tokenizerHash == null ? null : String(a.tokenizerHash).toLowerCase(),
          reg.parameterCount ?? null,
          reg.minVramMb ?? null,
          big(reg.rates?.inputPerMTokens).toString(),
          big(reg.rates?.outputPerMTokens).toString(),
          big(reg.rates?.perMegapixelStep).toString(),
          e.blockNumber.toString(),
          e.blockTime,
        ],
      );
      return;
    }
    case 'ModelRatesUpdated': {
      const r = (a.rates ?? {}) as Rates;
      await tx.query(
        'UPDATE network_models SET input_per_m = $2, output_per_m = $3, per_mp_step = $4 WHERE id = $1',
        [
          e.modelId,
          big(r.inputPerMTokens).toString(),
          big(r.outputPerMTokens).toString(),
          big(r.perMegapixelStep).toString(),
        ],
      );
      return;
    }
    case 'ModelActiveSet':
      await tx.query('UPDATE network_models SET active = $2 WHERE id = $1', [e.modelId, Boolean(a.active)]);
      return;
    case 'ConfidentialPremiumUpdated':
      return setParam(tx, 'confidentialPremiumBps', String(a.bps), e.blockNumber);
    case 'GatewayFaultReported': {
      // LibAudit.reportGatewayFault: a public record only (no funds move); the reason is an ASCII code.
      const reason = String(a.reason).toLowerCase();
      await tx.query(
        `INSERT INTO network_gateway_faults (block_number, log_index, tx_hash, block_time, gateway, batch_id, leaf,
           validator, reason, reason_hex, evidence_hash)
         VALUES ($1, $2, $3, to_timestamp($4), $5, $6, $7, $8, $9, $10, $11)
         ON CONFLICT (block_number, log_index) DO NOTHING`,
        [
          e.blockNumber.toString(),
          e.logIndex,
          e.txHash.toLowerCase(),
          e.blockTime,
          String(a.gateway).toLowerCase(),
          big(a.batchId).toString(),
          String(a.leaf).toLowerCase(),
          String(a.validator).toLowerCase(),
          gatewayFaultReason(reason as Hex),
          reason,
          String(a.evidenceHash).toLowerCase(),
        ],
      );
      return;
    }
    default:
      return;
  }
}

/** Empties the state tables and replays every stored event in chain order (after a reorg). */
export async function rebuildState(tx: Sql): Promise<number> {
  await tx.query('DELETE FROM network_bonds');
  await tx.query('DELETE FROM network_accounts');
  await tx.query('DELETE FROM network_models');
  await tx.query(`DELETE FROM network_params WHERE updated_block > 0`);
  await tx.query('DELETE FROM network_gateway_faults');
  const rows = await tx.query<Record<string, unknown>>(
    `SELECT block_number::text AS block_number, log_index, tx_hash, extract(epoch from block_time)::float8 AS t, name,
       role, account, related, model_id, amount::text AS amount, args
     FROM network_events WHERE name IS NOT NULL ORDER BY block_number, log_index`,
  );
  for (const r of rows) {
    await applyEvent(tx, {
      blockNumber: BigInt(r.block_number as string),
      logIndex: Number(r.log_index),
      txHash: String(r.tx_hash),
      blockTime: Number(r.t),
      name: r.name as string,
      role: (r.role as 'worker' | 'validator' | null) ?? null,
      account: (r.account as IndexedEvent['account']) ?? null,
      related: (r.related as IndexedEvent['related']) ?? null,
      modelId: (r.model_id as IndexedEvent['modelId']) ?? null,
      amount: r.amount == null ? null : BigInt(r.amount as string),
      args: r.args as Record<string, unknown>,
    });
  }
  return rows.length;
}
