import type { governanceView } from './governance.ts';
import type {
  activityView,
  auditsView,
  gatewaysView,
  indexerView,
  modelsView,
  operatorView,
  summaryView,
  timeseriesView,
  validatorsView,
  workersView,
} from './queries.ts';

// The `/v1/network` response bodies, as the handlers build them: the dashboard imports these (type-only)
// instead of restating them, so a change of shape here is a type error there.

/** `GET /v1/network/status` → `indexer`, and every response's `indexer`. */
export type NetworkIndexerStatus = ReturnType<typeof indexerView>;
/** `GET /v1/network/status`. */
export type NetworkStatus = { object: 'network.status'; indexer: NetworkIndexerStatus };
/** `GET /v1/network/summary`. */
export type NetworkSummary = Awaited<ReturnType<typeof summaryView>>;
/** `GET /v1/network/models`. */
export type NetworkModels = Awaited<ReturnType<typeof modelsView>>;
/** One of `/v1/network/models` (and `GET /v1/network/models/{id}`). */
export type NetworkModel = NetworkModels['data'][number];
/** `GET /v1/network/workers`. */
export type NetworkWorkers = Awaited<ReturnType<typeof workersView>>;
export type NetworkWorker = NetworkWorkers['data'][number];
/** `GET /v1/network/validators`. */
export type NetworkValidators = Awaited<ReturnType<typeof validatorsView>>;
export type NetworkValidator = NetworkValidators['data'][number];
/** `GET /v1/network/activity`. */
export type NetworkActivity = Awaited<ReturnType<typeof activityView>>;
/** `GET /v1/network/audits`. */
export type NetworkAudits = Awaited<ReturnType<typeof auditsView>>;
/** `GET /v1/network/gateways`. */
export type NetworkGateways = Awaited<ReturnType<typeof gatewaysView>>;
/** `GET /v1/network/governance`. */
export type NetworkGovernance = Awaited<ReturnType<typeof governanceView>>;
/** `GET /v1/network/operators/{address}`. */
export type NetworkOperator = Awaited<ReturnType<typeof operatorView>>;
/** `GET /v1/network/stats/timeseries`. */
export type NetworkTimeseries = Awaited<ReturnType<typeof timeseriesView>>;
