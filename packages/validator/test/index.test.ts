import { expect, test } from 'vitest';
import * as validator from '../src/index.ts';

// The public API: a change here is a visible diff.
test('exports', () => {
  expect(Object.keys(validator).sort()).toEqual([
    'AUDIT_HEADERS',
    'CHECKER_MODES',
    'DEFAULT_THRESHOLDS',
    'FULL_DISTRIBUTION_MAX_VOCAB',
    'HardReason',
    'MAX_POSITIONS_PER_CODE',
    'NETWORKS',
    'NodeGatewayFault',
    'PARTIAL_TOP_K',
    'REASON_FAULT',
    'SoftSignal',
    'VALIDATOR_DEFAULTS',
    'VALIDATOR_ENV',
    'ValidatorConfigError',
    'ValidatorError',
    'ValidatorErrorCode',
    'auditRequestMessage',
    'canonicalJson',
    'checkValidatorBond',
    'commitmentFaults',
    'createAuditClient',
    'createCrosscheckChecker',
    'createModelFiles',
    'createReexecuteChecker',
    'createValidatorChain',
    'createValidatorLogger',
    'createValidatorMetrics',
    'createValidatorOptions',
    'crosscheckTopK',
    'evidenceHash',
    'inconsistency',
    'judge',
    'openStateStore',
    'parseGateways',
    'runValidatorStart',
    'scoringTopK',
    'startValidator',
  ]);
  expect(validator.DEFAULT_THRESHOLDS).toMatchObject({
    logitNoise: 0.1,
    topPSlack: 0.01,
    floorExcessNats: 12,
    floorMinCount: 2,
  });
});
