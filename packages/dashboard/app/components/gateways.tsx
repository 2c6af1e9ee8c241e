import type { Gateway, ListOf } from '../api.ts';
import { formatCompact, formatNumber } from '../format.ts';
import { useResource } from '../hooks.ts';
import { Address, Amount, Badge, Card, Empty, Loading, RelTime } from './ui.tsx';

/** What each reason code a validator reports means (the codes of @aipg/validator's judge). */
export const FAULT_REASONS: Record<string, string> = {
  RECEIPT_REQUEST_HASH:
    'the served prompt ids, parameters or sampler do not hash to the requestHash the worker signed',
  RECEIPT_OUTPUT_HASH: 'the served output does not hash to the outputHash the worker signed',
  PROMPT_MISMATCH: 'the served input does not tokenize to the prompt ids the gateway sent the worker',
  USAGE_MISMATCH: 'the usage the gateway reported does not match the token counts',
  FEE_MISMATCH: "the receipt's fee does not follow the pricing the gateway served",
};

export function faultReasonTitle(reason: string): string {
  return FAULT_REASONS[reason] ?? 'a reason code reported by a validator';
}

/**
 * Every gateway that settled work on chain, with the gateway faults validators reported against it: audit
 * evidence served that does not hash to what the worker signed (altered input, parameters, pricing or
 * sampler). Reports are signed public records on chain; no bond is slashed (a gateway has none).
 */
export function GatewaysCard() {
  const { data } = useResource<ListOf<Gateway>>('/gateways?reports=3');
  return (
    <Card
      title="Gateways"
      subtitle="what each gateway settled, and the validators' reports of altered audit evidence"
      testid="gateways"
    >
      {!data ? (
        <Loading rows={1} />
      ) : data.data.length === 0 ? (
        <Empty title="No gateway has settled a batch yet">
          Gateways appear with their first settled batch of receipts.
        </Empty>
      ) : (
        <div class="table-wrap">
          <table class="table" data-testid="gateways-table">
            <thead>
              <tr>
                <th>Gateway</th>
                <th class="num">Settled</th>
                <th>Gateway faults</th>
                <th>Latest report</th>
              </tr>
            </thead>
            <tbody>
              {data.data.map((g) => {
                const latest = g.faults.latest[0];
                return (
                  <tr key={g.address} data-testid={`gateway-${g.address}`}>
                    <td data-label="Gateway">
                      <div class="cell-title">
                        <Address address={g.address} link={false} />
                        {g.faults.reports > 0 && <Badge tone="bad">faults reported</Badge>}
                      </div>
                      <div class="muted small">
                        last batch {g.batches.last_batch_id ? `#${g.batches.last_batch_id}` : '—'} ·{' '}
                        <RelTime iso={g.batches.last_at} />
                      </div>
                    </td>
                    <td class="num" data-label="Settled" data-col="settled">
                      <Amount value={g.batches.total} />
                      <div class="muted small">
                        {formatNumber(g.batches.count, 0)} batch{g.batches.count === 1 ? '' : 'es'} ·{' '}
                        {formatCompact(Number(g.batches.receipts))} receipts
                      </div>
                    </td>
                    <td data-label="Gateway faults" data-col="faults">
                      {g.faults.reports === 0 ? (
                        <span class="muted">none reported</span>
                      ) : (
                        <>
                          <span class="bad" data-testid="fault-count">
                            {g.faults.reports} report{g.faults.reports === 1 ? '' : 's'}
                          </span>
                          <span class="muted small">
                            {' '}
                            · {g.faults.receipts} receipt{g.faults.receipts === 1 ? '' : 's'} ·{' '}
                            {g.faults.validators} validator{g.faults.validators === 1 ? '' : 's'}
                          </span>
                          <div class="chips" data-testid="fault-reasons">
                            {g.faults.by_reason.map((r) => (
                              <span
                                key={r.reason}
                                class="badge badge-bad"
                                data-reason={r.reason}
                                title={faultReasonTitle(r.reason)}
                              >
                                <span class="mono">{r.reason}</span> ×{r.count}
                              </span>
                            ))}
                          </div>
                        </>
                      )}
                    </td>
                    <td data-label="Latest report" data-col="latest">
                      {latest ? (
                        <>
                          <span class="mono" title={faultReasonTitle(latest.reason)}>
                            {latest.reason}
                          </span>{' '}
                          · <RelTime iso={latest.time} />
                          <div class="muted small">
                            by <Address address={latest.validator} /> · batch #{latest.batch_id} · receipt{' '}
                            <code title={latest.leaf}>{latest.leaf.slice(0, 10)}…</code> · block{' '}
                            {latest.block}
                          </div>
                        </>
                      ) : (
                        <span class="muted">—</span>
                      )}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}
