import type { ListOf, Validator } from '../api.ts';
import { AuditsCard } from '../components/audits.tsx';
import { Address, Amount, Card, Empty, ErrorNote, Loading, RelTime } from '../components/ui.tsx';
import { formatNumber, formatPercent } from '../format.ts';
import { useResource } from '../hooks.ts';
import { BondState } from './workers.tsx';

export function ValidatorsPage() {
  const { data, error } = useResource<ListOf<Validator>>('/validators');
  return (
    <div class="page">
      <div class="page-head">
        <div>
          <h1>Validators</h1>
          <p class="muted">
            Validators bond AIPG, audit a random sample of settled jobs, commit a hidden vote on chain and
            reveal it after the commit deadline. They earn verification fees and a cut of slashed bonds; a
            false attestation is slashed.
          </p>
        </div>
      </div>
      <ErrorNote error={error} />
      {data && !data.audits_enabled && (
        <div class="banner" data-testid="audits-empty">
          <b>Audits are not live yet.</b> Audit counts, agreement with the final verdict and rewards appear
          here once the audit contracts are deployed; the stakes below are already live.
        </div>
      )}
      <Card
        title={data ? `${data.data.length} validator${data.data.length === 1 ? '' : 's'}` : 'Validators'}
        testid="validators"
      >
        {!data ? (
          <Loading rows={3} />
        ) : data.data.length === 0 ? (
          <Empty title="No validator has bonded yet">
            Bond with <code>aipg stake validator 10000</code>, then start a validator node.
          </Empty>
        ) : (
          <div class="table-wrap">
            <table class="table" data-testid="validators-table">
              <thead>
                <tr>
                  <th>Validator</th>
                  <th class="num">Stake</th>
                  <th class="num">Audits done</th>
                  <th class="num">Agreement with verdict</th>
                  <th class="num">Rewards</th>
                  <th class="num">Slashes</th>
                  <th>Bonded</th>
                </tr>
              </thead>
              <tbody>
                {data.data.map((v) => (
                  <tr key={v.address} data-testid={`validator-${v.address}`}>
                    <td data-label="Validator">
                      <div class="cell-title">
                        <Address address={v.address} />
                      </div>
                      <div class="small">
                        <BondState b={v} />
                      </div>
                    </td>
                    <td class="num" data-label="Stake" data-col="stake">
                      <Amount value={v.stake} />
                      {BigInt(v.unbonding.wei) > 0n && (
                        <div class="muted small">+{v.unbonding.display} unbonding</div>
                      )}
                    </td>
                    <td class="num" data-label="Audits done" data-col="audits">
                      {data.audits_enabled ? formatNumber(v.audits.done, 0) : <span class="muted">—</span>}
                      {(v.audits.committed ?? 0) > 0 && (
                        <div class="muted small" data-col="commits">
                          {v.audits.committed} committed · {v.audits.done} revealed
                          {(v.audits.unrevealed ?? 0) > 0 && (
                            <span class="bad"> · {v.audits.unrevealed} never revealed</span>
                          )}
                        </div>
                      )}
                      {(v.audits.pending ?? 0) > 0 && (
                        <div class="muted small">{v.audits.pending} awaiting a verdict</div>
                      )}
                    </td>
                    <td class="num" data-label="Agreement" data-col="agreement">
                      {v.audits.agreement_rate === null ? (
                        <span class="muted" title="no finalized audit with a PASS/FAIL verdict yet">
                          {formatPercent(null)}
                        </span>
                      ) : (
                        <>
                          <span class={v.audits.agreement_rate < 1 ? 'warn' : undefined}>
                            {formatPercent(v.audits.agreement_rate)}
                          </span>
                          <div class="muted small">
                            {v.audits.agreed} of {v.audits.decided ?? v.audits.agreed} verdicts
                          </div>
                        </>
                      )}
                    </td>
                    <td class="num" data-label="Rewards" data-col="rewards">
                      <Amount value={v.rewards.earned} />
                      {v.audits.rewards && v.audits.rewards.count > 0 && (
                        <div class="muted small">
                          {v.audits.rewards.amount.display} from {v.audits.rewards.count} audit reward
                          {v.audits.rewards.count === 1 ? '' : 's'}
                        </div>
                      )}
                    </td>
                    <td class="num" data-label="Slashes">
                      {v.slashes.count === 0 ? (
                        <span class="muted">none</span>
                      ) : (
                        <span class="bad">
                          {v.slashes.count} · <Amount value={v.slashes.amount} />
                        </span>
                      )}
                      {v.audits.false_attestations && v.audits.false_attestations.count > 0 && (
                        <div class="muted small">
                          {v.audits.false_attestations.count} false attestation
                          {v.audits.false_attestations.count === 1 ? '' : 's'}
                        </div>
                      )}
                    </td>
                    <td data-label="Bonded">
                      <RelTime iso={v.first_bonded_at} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )}
      </Card>
      <AuditsCard />
    </div>
  );
}
