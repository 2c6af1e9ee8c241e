import type { AuditSummary, Governance, ListOf, PendingChange } from '../api.ts';
import { useResource } from '../hooks.ts';
import { Address, Badge, Card, Empty, Loading, RelTime } from './ui.tsx';

/** "3 seats · 2 committed · 1 revealed": how far an audit's commit-reveal vote has come. */
export function auditProgress(c: AuditSummary['counts']): string {
  return `${c.seats} seat${c.seats === 1 ? '' : 's'} · ${c.committed} committed · ${c.revealed} revealed`;
}

/** Recent audits (commit-reveal): seats, who committed, who revealed what, and the verdict. */
export function AuditsCard({ limit = 10 }: { limit?: number }) {
  const { data } = useResource<ListOf<AuditSummary>>(`/audits?limit=${limit}`);
  if (data && !data.audits_enabled) return null;
  return (
    <Card title="Audits" subtitle="validators commit hidden votes, then reveal them" testid="audits">
      {!data ? (
        <Loading rows={2} />
      ) : data.data.length === 0 ? (
        <Empty title="No audit has opened yet">An audit opens with its first committed vote.</Empty>
      ) : (
        <div class="table-wrap">
          <table class="table" data-testid="audits-table">
            <thead>
              <tr>
                <th>Receipt</th>
                <th>Worker</th>
                <th>Votes</th>
                <th>Verdict</th>
              </tr>
            </thead>
            <tbody>
              {data.data.map((a) => (
                <tr key={a.leaf} data-testid={`audit-${a.leaf}`}>
                  <td data-label="Receipt">
                    <code title={a.leaf}>{a.leaf.slice(0, 10)}…</code>
                    <div class="muted small">
                      batch {a.batch_id ?? '—'} · <RelTime iso={a.opened_at} />
                    </div>
                  </td>
                  <td data-label="Worker">
                    <Address address={a.worker} />
                  </td>
                  <td data-label="Votes" data-col="progress">
                    <span data-testid="audit-progress">{auditProgress(a.counts)}</span>
                    <div class="muted small">
                      {a.revealed.length > 0
                        ? a.revealed.map((r) => `${r.validator.slice(0, 8)}… ${r.vote ?? '?'}`).join(', ')
                        : a.commit_deadline
                          ? 'reveals open after the commit deadline'
                          : ''}
                    </div>
                  </td>
                  <td data-label="Verdict">
                    {a.verdict === null ? (
                      <Badge tone="neutral">open</Badge>
                    ) : (
                      <Badge tone={a.verdict === 'fail' ? 'bad' : a.verdict === 'pass' ? 'good' : 'neutral'}>
                        {a.verdict}
                      </Badge>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Card>
  );
}

const KIND_LABEL: Record<PendingChange['kind'], string> = {
  cut: 'Contract upgrade',
  audit_config: 'Audit rules',
  randomness_source: 'Randomness source',
};

/** Who owns the Grid and each announced rule change: what, when it may run, when it lapses. */
export function PendingChangesCard() {
  const { data } = useResource<Governance>('/governance');
  return (
    <Card
      title="Pending changes"
      subtitle="announced rule changes and when they may take effect"
      testid="pending-changes"
    >
      {!data ? (
        <Loading rows={1} />
      ) : (
        <>
          <p class="small" data-testid="grid-owner">
            Owner <Address address={data.owner} />
            {data.pending_owner && (
              <>
                {' '}
                · transferring to <Address address={data.pending_owner} />
              </>
            )}
          </p>
          {data.pending_changes.length === 0 ? (
            <Empty title="No rule change announced">
              Every change is announced first and can run only after the delay, so stakes can leave before.
            </Empty>
          ) : (
            <ul class="list" data-testid="pending-changes-list">
              {data.pending_changes.map((c) => (
                <li key={c.id} data-testid={`change-${c.id}`}>
                  <b>{KIND_LABEL[c.kind]}</b> <span class="small">{c.summary}</span>
                  <div class="muted small">
                    {c.status === 'waiting' ? (
                      <>
                        executable <RelTime iso={c.executable_at} future />
                      </>
                    ) : (
                      <Badge tone="warn">executable now</Badge>
                    )}{' '}
                    · expires <RelTime iso={c.expires_at} future />
                  </div>
                </li>
              ))}
            </ul>
          )}
        </>
      )}
    </Card>
  );
}
