import { ATTESTATION_PATH, type AttestationList, type AttestationView, GATEWAY_API } from '../api.ts';
import { Address, Card, Empty, ErrorNote, Loading, RelTime, Stat } from '../components/ui.tsx';
import { formatBps, formatDateTime, formatNumber, shortAddress } from '../format.ts';
import { useNow, useResource } from '../hooks.ts';

type Status = AttestationView['status'];

const STATUS: Record<Status, { tone: 'good' | 'warn' | 'bad' | 'info'; icon: string; title: string }> = {
  valid: { tone: 'good', icon: '✓', title: 'evidence verified and unexpired: takes confidential jobs' },
  expired: {
    tone: 'warn',
    icon: '⌛',
    title: 'its evidence expired: no confidential jobs until it attests again',
  },
  invalid: { tone: 'bad', icon: '✕', title: 'the gateway refused its evidence: no confidential jobs' },
  pending: { tone: 'info', icon: '…', title: 'evidence received at login, not verified yet' },
};

const iso = (unixSeconds: number | null) =>
  unixSeconds === null ? null : new Date(unixSeconds * 1000).toISOString();

/** The status as of `now`: valid evidence that expired since the last answer reads expired. */
function statusAt(w: AttestationView, now: number): Status {
  return w.status === 'valid' && w.expires_at !== null && w.expires_at * 1000 <= now ? 'expired' : w.status;
}

export function StatusBadge({ status }: { status: Status }) {
  const s = STATUS[status];
  return (
    <span class={`badge badge-${s.tone}`} data-status={status} title={s.title}>
      <span aria-hidden="true">{s.icon}</span> {status}
    </span>
  );
}

/** Attested capacity per model: every model a TEE worker serves, with the slots of the valid ones. */
export function attestedCapacity(workers: AttestationView[], now: number) {
  const models = new Map<string, { model: string; capacity: number; attested: number; workers: number }>();
  for (const w of workers) {
    const valid = statusAt(w, now) === 'valid';
    for (const model of w.models) {
      const m = models.get(model) ?? { model, capacity: 0, attested: 0, workers: 0 };
      m.workers += 1;
      if (valid) {
        m.attested += 1;
        m.capacity += w.capacity[model] ?? 0;
      }
      models.set(model, m);
    }
  }
  return [...models.values()].sort((a, b) => b.capacity - a.capacity || a.model.localeCompare(b.model));
}

function Expiry({ w }: { w: AttestationView }) {
  const at = iso(w.expires_at);
  if (!at) return <span class="muted">—</span>;
  return (
    <>
      <RelTime iso={at} future />
      <div class="muted small" data-col="expires-at">
        {formatDateTime(at)}
      </div>
    </>
  );
}

function WorkersTable({ workers, now }: { workers: AttestationView[]; now: number }) {
  return (
    <div class="table-wrap">
      <table class="table" data-testid="tee-workers-table">
        <thead>
          <tr>
            <th>Worker</th>
            <th>Models</th>
            <th>Status</th>
            <th>TCB status</th>
            <th>Verified</th>
            <th>Expires</th>
            <th>Evidence</th>
          </tr>
        </thead>
        <tbody>
          {workers.map((w) => {
            const status = statusAt(w, now);
            return (
              <tr
                key={w.worker}
                data-testid={`tee-worker-${w.worker}`}
                data-status={status}
                class={`tee-row tee-${status}`}
              >
                <td data-label="Worker">
                  <div class="cell-title">
                    <Address address={w.worker} />
                    {w.simulated && (
                      <span
                        class="badge badge-simulated"
                        data-testid="simulated"
                        title="Evidence from the devnet's simulated TEE: nothing about real hardware is proven"
                      >
                        SIMULATED
                      </span>
                    )}
                  </div>
                  <div class="muted small" title={w.signer}>
                    signer <span class="mono">{shortAddress(w.signer)}</span>
                  </div>
                </td>
                <td data-label="Models" data-col="models">
                  {w.models.length === 0 ? (
                    <span class="muted">—</span>
                  ) : (
                    <div class="chips">
                      {w.models.map((m) => (
                        <span key={m} class={`chip ${status === 'valid' ? 'chip-on' : ''}`}>
                          {m}
                          {w.capacity[m] !== undefined && <span class="muted"> ×{w.capacity[m]}</span>}
                        </span>
                      ))}
                    </div>
                  )}
                </td>
                <td data-label="Status" data-col="status">
                  <StatusBadge status={status} />
                  {w.error && status !== 'valid' && (
                    <div class="bad small tee-error" data-col="error">
                      {w.error}
                    </div>
                  )}
                </td>
                <td data-label="TCB status" data-col="tcb">
                  {w.tcb_status === null ? (
                    <span class="muted">—</span>
                  ) : (
                    <span class={w.tcb_status === 'UpToDate' ? 'good' : 'warn'}>{w.tcb_status}</span>
                  )}
                </td>
                <td data-label="Verified" data-col="verified">
                  <RelTime iso={iso(w.verified_at)} />
                </td>
                <td data-label="Expires" data-col="expires">
                  <Expiry w={w} />
                </td>
                <td data-label="Evidence" data-col="digest">
                  {w.digest ? (
                    <span class="mono small" title={w.digest}>
                      {w.digest.slice(0, 10)}…
                    </span>
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
  );
}

export function ConfidentialPage() {
  // The listing is rate-limited per address and changes only when workers attest: polled every 30 s,
  // not refetched on each live event.
  const { data, error, status } = useResource<AttestationList>(ATTESTATION_PATH, 30_000, {
    root: GATEWAY_API,
    live: false,
  });
  const now = useNow(1_000);
  const head = (
    <div class="page-head">
      <div>
        <h1>Confidential</h1>
        <p class="muted">
          Confidential requests are encrypted by the client to a worker whose TEE evidence (an Intel TDX quote
          and NVIDIA GPU evidence) it verified; the gateway routes ciphertext only. The gateway checks each
          worker's evidence at login and again periodically, and sends confidential jobs only to workers whose
          evidence is valid and unexpired.
        </p>
      </div>
    </div>
  );
  if (status === 404) {
    return (
      <div class="page">
        {head}
        <Card testid="confidential">
          <Empty title="This gateway does not offer the confidential tier">
            It runs no TEE attestation checks, so it routes no confidential requests. Other gateways of the
            grid may offer it.
          </Empty>
        </Card>
      </div>
    );
  }
  const workers = data?.data ?? [];
  const capacity = attestedCapacity(workers, now);
  const attested = workers.filter((w) => statusAt(w, now) === 'valid').length;
  const slots = capacity.reduce((sum, m) => sum + m.capacity, 0);
  const premium = data?.confidential_premium_bps ?? null;
  return (
    <div class="page">
      {head}
      <ErrorNote error={error} />
      {data && data.trust_anchors !== 'production' && (
        <div class="banner banner-warn" role="alert" data-testid="dev-root-banner">
          <b>Development trust root.</b> This gateway verifies TEE evidence under a development root (
          <code>{data.trust_anchors}</code>), not Intel's and NVIDIA's: an attestation here proves nothing
          about real hardware, and confidential requests are not confidential.
        </div>
      )}
      <div class="stats-grid" data-testid="confidential-summary">
        <Stat
          label="Confidential premium"
          testid="stat-premium"
          value={data ? formatBps(premium, true) : '…'}
          hint={
            premium !== null ? (
              <span data-testid="premium-bps">{formatNumber(premium, 0)} bps over the ordinary rate</span>
            ) : data ? (
              'the gateway could not read it'
            ) : undefined
          }
        />
        <Stat
          label="Attested workers"
          testid="stat-attested"
          value={data ? formatNumber(attested, 0) : '…'}
          hint={data ? `of ${workers.length} in a TEE` : undefined}
          tone={data && workers.length > 0 ? (attested > 0 ? 'good' : 'bad') : undefined}
        />
        <Stat
          label="Attested capacity"
          testid="stat-capacity"
          value={data ? formatNumber(slots, 0) : '…'}
          hint="concurrent confidential jobs"
        />
      </div>
      {!data ? (
        <Card title="Workers in a TEE" testid="tee-workers">
          <Loading rows={3} />
        </Card>
      ) : workers.length === 0 ? (
        <Card title="Workers in a TEE" testid="tee-workers">
          <Empty title="No worker in a TEE is connected">
            Confidential requests wait for a worker that attests: start a worker node inside a TDX VM with an
            NVIDIA GPU in confidential-computing mode.
          </Empty>
        </Card>
      ) : (
        <>
          <Card
            title="Attested capacity per model"
            subtitle="Concurrent jobs of the workers whose evidence is valid and unexpired"
            testid="tee-capacity"
          >
            <div class="table-wrap">
              <table class="table">
                <thead>
                  <tr>
                    <th>Model</th>
                    <th class="num">Attested capacity</th>
                    <th class="num">Attested workers</th>
                  </tr>
                </thead>
                <tbody>
                  {capacity.map((m) => (
                    <tr key={m.model} data-testid={`tee-model-${m.model}`}>
                      <td data-label="Model">
                        <div class="cell-title">{m.model}</div>
                      </td>
                      <td class="num" data-label="Attested capacity" data-col="capacity">
                        <span class={m.capacity > 0 ? '' : 'bad'}>{formatNumber(m.capacity, 0)}</span>
                        <span class="muted small"> slot{m.capacity === 1 ? '' : 's'}</span>
                      </td>
                      <td class="num" data-label="Attested workers" data-col="workers">
                        {m.attested} of {m.workers}
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          </Card>
          <Card
            title={`${workers.length} worker${workers.length === 1 ? '' : 's'} in a TEE · ${attested} attested`}
            testid="tee-workers"
          >
            <WorkersTable workers={workers} now={now} />
          </Card>
        </>
      )}
    </div>
  );
}
