export { type Api, createApi } from './api/index.ts';
export { AUDIT_HEADERS, type Audit, auditRequestMessage, createAudit } from './audit/index.ts';
export { createAuditRoutes } from './audit/routes.ts';
export {
  createScorer,
  type ScoreRequest,
  type ScoreResponse,
  type Scorer,
  scoreRequestSchema,
} from './audit/score.ts';
export { type Auth, apiKeyAuthenticator, createAuth } from './auth/index.ts';
export {
  API_KEY_MESSAGE_TITLE,
  type ApiKeyMessage,
  apiKeyMessage,
  parseApiKeyMessage,
} from './auth/keys.ts';
export {
  aipg,
  type Balance,
  type Billing,
  createBilling,
  maxFee,
} from './billing/index.ts';
export { parseFlags } from './bin/flags.ts';
export { type Chain, createChain, type OnchainModel, type PayerFunds } from './chain/index.ts';
export { type Common, createCommon, createLogger, type Logger } from './common.ts';
export { ConfigError, errorCodes, GatewayError, type GatewayErrorCode } from './errors.ts';
export {
  type CreateGatewayParameters,
  createGateway,
  type StartGatewayDependencies,
  type StartGatewayReturnType,
  startGateway,
} from './gateway.ts';
export {
  closeCodes,
  createHub,
  type Hub,
  type JobHandlers,
  WORKER_PATH,
  type WorkerSession,
} from './hub/index.ts';
export { createJobs, type JobOutcome, type JobSpec, type Jobs } from './jobs/index.ts';
export { type ReceiptExpectation, type ReceiptVerdict, verifyResult } from './jobs/receipt-check.ts';
export { createMetrics, type Metrics } from './metrics/index.ts';
export {
  createGatewayOptions,
  type GatewayFlags,
  type GatewayOptions,
  loadGatewayOptions,
} from './options.ts';
export {
  type AuditRecord,
  createReputation,
  decodeReputationLog,
  type ReputationEvent,
  type ReputationFeature,
  type ReputationPolicy,
  type ReputationStatus,
  reputationAbi,
  reputationFactor,
} from './reputation/index.ts';
export {
  createRouting,
  neutralReputation,
  type Reputation,
  type RoutableWorker,
  type Routing,
} from './routing/index.ts';
export { aggregate, createSettlement, type Settlement } from './settlement/index.ts';
export { createStorage, type Storage } from './storage/index.ts';
export { type OpenGatewayDatabaseParameters, openGatewayDatabase } from './storage/shared.ts';
export { createTee, type Tee } from './tee/index.ts';
export { createTokenizers, type GatewayTokenizer, type Tokenizers } from './tokenizers/index.ts';
