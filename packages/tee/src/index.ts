/**
 * `@aipg/tee`: verifying confidential workers' TEE evidence (Intel TDX DCAP quotes + NVIDIA GPU EATs),
 * the HPKE request and AES-GCM response envelopes, and a simulated TEE for tests and the devnet.
 * See docs/confidential.md.
 */
export { PRODUCTION_ANCHORS, parseAnchors, serializeAnchors, type TrustAnchors } from './anchors.ts';
export {
  generateTeeKeyPair,
  openChunk,
  openRequest,
  requestAad,
  sealChunk,
  sealRequest,
  type TeeKeyPair,
} from './envelope.ts';
export { AttestationError, type AttestationErrorCode, EnvelopeError } from './errors.ts';
export {
  SIMULATED_MR_TD,
  SIMULATED_NVIDIA_ISSUER,
  SIMULATED_RTMRS,
  type SimulatedAttestOptions,
  SimulatedTee,
} from './simulated.ts';
export {
  DEFAULT_POLICY,
  type PinnedMeasurement,
  type TeePolicy,
  type VerifiedEvidence,
  verifyEvidence,
} from './verify.ts';
