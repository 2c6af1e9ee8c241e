/**
 * The validator's metrics: @aipg/daemon's Prometheus registry (the one every daemon uses, served by its
 * `/metrics` server) with the validator's series created on it.
 */
import { createMetricsRegistry } from '@aipg/daemon';

export function createValidatorMetrics() {
  const registry = createMetricsRegistry();
  return {
    ...registry,
    audits: registry.counter<'verdict'>(
      'aipg_validator_audits_total',
      'Audited jobs judged, by verdict (pass, fail), abstained, or unrevealed (committed, reveal missed).',
    ),
    attestations: registry.counter<'vote' | 'outcome'>(
      'aipg_validator_attestations_total',
      'Vote transactions, by vote and outcome (committed, revealed, refused).',
    ),
    finalized: registry.counter<'verdict'>(
      'aipg_validator_finalized_total',
      'Audits this validator finalized, by verdict.',
    ),
    errors: registry.counter<'code'>('aipg_validator_errors_total', 'Errors, by code.'),
    gatewayFaults: registry.counter<'gateway' | 'reason'>(
      'aipg_validator_gateway_faults_total',
      'Audited jobs whose gateway evidence does not reproduce the worker-signed receipt (abstained, the gateway reported), by gateway and reason code.',
    ),
    scoresRejected: registry.counter<'reason'>(
      'aipg_validator_scores_rejected_total',
      'Cross-check answers rejected and never judged with (unsigned, signed by a key that is not the drawn bond’s operator, another worker than drawn, other ids, not a distribution), by reason.',
    ),
    scorerDisagreements: registry.counter<never>(
      'aipg_validator_scorer_disagreements_total',
      'Audits abstained because the second drawn scorer did not confirm the first one’s FAIL (both signed score sets kept).',
    ),
    withdrawn: registry.counter<never>('aipg_validator_withdrawn_aipg_total', 'Earnings withdrawn, AIPG.'),
    cursor: registry.gauge<never>('aipg_validator_cursor_block', 'Next block the log cursor reads.'),
    pending: registry.gauge<never>(
      'aipg_validator_pending_audits',
      'Assigned audits whose vote is not committed yet.',
    ),
    earnings: registry.gauge<never>(
      'aipg_validator_earnings_aipg',
      'Unwithdrawn earnings of the bond owner, AIPG.',
    ),
  };
}
export type ValidatorMetrics = ReturnType<typeof createValidatorMetrics>;
