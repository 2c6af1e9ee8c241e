/**
 * `verifyEvidence`: the checks of docs/confidential.md "Evidence", each with its own error code, under
 * trust anchors the verifier chooses. The TDX quote is verified by `@phala/dcap-qvl` (DCAP: the PCK
 * chain to the root, the QE report, the quote signature, the collateral's signatures and validity, the
 * TCB level); the NVIDIA EAT by `jose` (nras.ts).
 */

import {
  type TeeEvidence,
  teeEvidenceDigest,
  teeEvidenceSchema,
  teeGpuNonce,
  teeReportData,
} from '@aipg/core';
import type { Collateral as DcapCollateral, Report, TDReport10 } from '@phala/dcap-qvl';
import dcap from '@phala/dcap-qvl';
import { type Address, getAddress, type Hex, isHex, toHex } from 'viem';
import { z } from 'zod';
import type { TrustAnchors } from './anchors.ts';
import { AttestationError } from './errors.ts';
import { verifyNvidiaEat } from './nras.ts';
import { ENCLAVE, TD_ATTRIBUTES_DEBUG } from './quote.ts';

/** A TD measurement set to pin: MRTD, and any of RTMR0..3 (absent: any value). 48-byte hex each. */
export type PinnedMeasurement = { mrTd: Hex; rtmr0?: Hex; rtmr1?: Hex; rtmr2?: Hex; rtmr3?: Hex };

/** What a verifier accepts beyond what the anchors prove. */
export type TeePolicy = {
  /** TCB statuses accepted (DCAP's: UpToDate, SWHardeningNeeded, ConfigurationNeeded, OutOfDate, …). */
  tcbStatuses: readonly string[];
  /** Accept a TD in debug mode (its memory is readable by the host: never in production). */
  allowDebug: boolean;
  /** Accepted measurements; empty: no pin. */
  measurements: readonly PinnedMeasurement[];
  /** Oldest GPU evidence accepted, seconds since its `iat`. */
  maxAgeSeconds: number;
};

/** UpToDate only, no debug TD, no measurement pin, GPU evidence at most an hour old. */
export const DEFAULT_POLICY: TeePolicy = Object.freeze({
  tcbStatuses: Object.freeze(['UpToDate']),
  allowDebug: false,
  measurements: Object.freeze([]),
  maxAgeSeconds: 3600,
});

/** What verified evidence establishes. */
export type VerifiedEvidence = {
  /** `teeEvidenceDigest(evidence)`: the name receipts use for it. */
  digest: Hex;
  /** The address that signs the worker's receipts (checksummed). */
  signer: Address;
  /** The worker's HPKE (X25519) public key, base64. */
  hpkePublicKey: string;
  nonce: Hex;
  /** DCAP TCB status (platform and QE merged). */
  tcbStatus: string;
  advisoryIds: string[];
  measurements: { mrTd: Hex; rtmr0: Hex; rtmr1: Hex; rtmr2: Hex; rtmr3: Hex };
  /** Whether the TD is in debug mode (only ever true under a policy with `allowDebug`). */
  debug: boolean;
  /** The GPU evidence's `iat`, unix seconds. */
  issuedAt: number;
  /** The earliest of the EATs' `exp`, the collateral's `nextUpdate` and `issuedAt + maxAgeSeconds`. */
  expiresAt: number;
  /** The evidence's own label; validity came from the anchors alone. */
  simulated: boolean;
};

const bytesLike = z.union([
  z.string().max(1_000_000),
  z.array(z.number().int().min(0).max(255)).max(1_000_000),
]);
/** The collateral fields dcap-qvl reads (`pck_certificate_chain` is optional: the quote carries the chain). */
const collateralSchema = z.looseObject({
  pck_crl_issuer_chain: z.string(),
  root_ca_crl: bytesLike,
  pck_crl: bytesLike,
  tcb_info_issuer_chain: z.string(),
  tcb_info: z.string(),
  tcb_info_signature: bytesLike,
  qe_identity_issuer_chain: z.string(),
  qe_identity: z.string(),
  qe_identity_signature: bytesLike,
  pck_certificate_chain: z.string().optional(),
});
type Collateral = z.infer<typeof collateralSchema>;

function describeIssues(error: z.ZodError): string {
  return error.issues
    .slice(0, 5)
    .map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`)
    .join('; ');
}

const STATUS_SEVERITY = [
  'UpToDate',
  'SWHardeningNeeded',
  'ConfigurationNeeded',
  'ConfigurationAndSWHardeningNeeded',
  'OutOfDate',
  'OutOfDateConfigurationNeeded',
  'Revoked',
];
const severity = (s: string) => {
  const i = STATUS_SEVERITY.indexOf(s);
  return i < 0 ? 100 : i;
};

type DcapResult = { status: string; advisoryIds: string[]; td: TDReport10 };

function tdOf(report: Report): TDReport10 {
  const td = report.asTd10();
  if (!td) throw new AttestationError('quote_invalid', 'the quote is not a TDX quote');
  return td;
}

/**
 * The TCB status dcap-qvl computed before it refused a debug TD (its attribute check is its last step,
 * after every signature and the TCB level), for a policy that allows debug TDs. Recomputed the same way:
 * the platform's level from the PCK's CPUSVN/PCESVN and the TD's TEE_TCB_SVN, the QE's from its ISVSVN.
 */
function statusOfDebugTd(quoteBytes: Uint8Array, collateral: Collateral): DcapResult {
  const quote = dcap.Quote.parse(quoteBytes);
  const auth = quote.authData.intoV3();
  // The same message comes from a debug QE, which dcap checks *before* the quote's signature.
  if ((auth.qeReport[ENCLAVE.attributes]! & 0x02) !== 0) {
    throw new AttestationError('quote_invalid', 'the quoting enclave is in debug mode');
  }
  const td = tdOf(quote.report);
  const a = td.tdAttributes;
  if (a[0] === 0)
    throw new AttestationError('quote_invalid', 'DCAP refused the quote (Debug mode is enabled)');
  const reserved =
    (a[1]! | a[2]! | (a[3]! & 0x0f) | (a[3]! & 0x20) | a[4]! | a[5]! | a[6]! | (a[7]! & 0x7f)) !== 0;
  if (reserved || (a[3]! & 0x10) === 0) {
    throw new AttestationError('quote_invalid', 'TD attributes: reserved bits set or SEPT_VE_DISABLE clear');
  }
  const chain = collateral.pck_certificate_chain
    ? Buffer.from(collateral.pck_certificate_chain, 'utf-8')
    : Buffer.from(auth.certificationData.body);
  const pck = dcap.utils.extractCerts(chain)[0];
  if (!pck) throw new AttestationError('quote_invalid', 'no PCK certificate');
  const extension = dcap.utils.getIntelExtension(pck);
  const cpuSvn = dcap.utils.getCpuSvn(extension) as Uint8Array;
  const pceSvn = dcap.utils.getPceSvn(extension) as number;
  type Level = {
    tcb: { pcesvn: number; sgxtcbcomponents: { svn: number }[]; tdxtcbcomponents?: { svn: number }[] };
    tcbStatus: string;
    advisoryIDs?: string[];
  };
  const geq = (actual: ArrayLike<number>, required: { svn: number }[] | undefined) =>
    required !== undefined &&
    required.length === actual.length &&
    required.every((r, i) => actual[i]! >= r.svn);
  const tcbInfo = JSON.parse(collateral.tcb_info) as { tcbLevels: Level[] };
  const platform = tcbInfo.tcbLevels.find(
    (l) =>
      pceSvn >= l.tcb.pcesvn &&
      geq(cpuSvn, l.tcb.sgxtcbcomponents) &&
      geq(td.teeTcbSvn, l.tcb.tdxtcbcomponents),
  );
  const qeIdentity = JSON.parse(collateral.qe_identity) as {
    tcbLevels: { tcb: { isvsvn: number }; tcbStatus: string; advisoryIDs?: string[] }[];
  };
  const isvSvn = new DataView(auth.qeReport.buffer, auth.qeReport.byteOffset).getUint16(ENCLAVE.isvSvn, true);
  const qe = qeIdentity.tcbLevels.find((l) => isvSvn >= l.tcb.isvsvn);
  if (!platform || !qe) throw new AttestationError('tcb_status', 'no matching TCB level');
  const status = severity(qe.tcbStatus) > severity(platform.tcbStatus) ? qe.tcbStatus : platform.tcbStatus;
  const advisoryIds = [...new Set([...(platform.advisoryIDs ?? []), ...(qe.advisoryIDs ?? [])])];
  return { status, advisoryIds, td };
}

/** DCAP verification under the anchors' root, its failures mapped to codes. */
function verifyQuote(
  quote: Uint8Array,
  collateral: Collateral,
  rootCaDer: Uint8Array,
  now: number,
  allowDebug: boolean,
): DcapResult {
  try {
    const verified = dcap.QuoteVerifier.newWithRootCa(Buffer.from(rootCaDer)).verify(
      quote,
      collateral as DcapCollateral,
      now,
    );
    return { status: verified.status, advisoryIds: [...verified.advisory_ids], td: tdOf(verified.report) };
  } catch (e) {
    if (e instanceof AttestationError) throw e;
    const message = (e as Error).message ?? String(e);
    if (message === 'Debug mode is enabled') {
      let result: DcapResult;
      try {
        result = statusOfDebugTd(quote, collateral);
      } catch (inner) {
        if (inner instanceof AttestationError) throw inner;
        throw new AttestationError('quote_invalid', `DCAP: ${(inner as Error).message}`, { cause: inner });
      }
      if (!allowDebug) throw new AttestationError('debug', 'the TD is in debug mode');
      return result;
    }
    if (/expired|not yet valid|issue date is in the future/i.test(message)) {
      throw new AttestationError('collateral_expired', `DCAP: ${message}`, { cause: e });
    }
    if (/TCB status is invalid|No matching TCB level|ISVSVN .* below/i.test(message)) {
      throw new AttestationError('tcb_status', `DCAP: ${message}`, { cause: e });
    }
    throw new AttestationError('quote_invalid', `DCAP: ${message}`, { cause: e });
  }
}

const hex48 = (b: Uint8Array): Hex => toHex(b);
const sameHex = (a: string, b: string) => a.toLowerCase() === b.toLowerCase();

function nextUpdateOf(json: string): number {
  const next = Date.parse((JSON.parse(json) as { nextUpdate?: string }).nextUpdate ?? '');
  return Number.isFinite(next) ? Math.floor(next / 1000) : Number.POSITIVE_INFINITY;
}

/**
 * Verifies TEE evidence (docs/confidential.md "Evidence") under `anchors`, at `now` (unix seconds;
 * default the clock). Throws an `AttestationError` whose `code` names the first failed check:
 * 'malformed' (not evidence), 'quote_invalid' (DCAP: signatures, chain to the root), 'collateral_expired',
 * 'tcb_status', 'debug', 'measurement', 'report_data' (the quote does not bind this key, signer and
 * nonce), 'nonce' (not `expectedNonce`), 'gpu_token', 'gpu_result', 'gpu_nonce', 'stale'.
 * The first DCAP verification of a process is slower (module and curve setup); later ones take ~20 ms.
 */
export async function verifyEvidence(
  evidence: unknown,
  options: { anchors: TrustAnchors; policy?: Partial<TeePolicy>; expectedNonce?: Hex; now?: number },
): Promise<VerifiedEvidence> {
  const policy: TeePolicy = {
    ...DEFAULT_POLICY,
    ...Object.fromEntries(Object.entries(options.policy ?? {}).filter(([, v]) => v !== undefined)),
  };
  if (!Number.isFinite(policy.maxAgeSeconds) || policy.maxAgeSeconds < 0) {
    throw new TypeError('verifyEvidence: policy.maxAgeSeconds must be a non-negative number');
  }
  const now = Math.floor(options.now ?? Date.now() / 1000);
  if (
    options.expectedNonce !== undefined &&
    !(isHex(options.expectedNonce) && options.expectedNonce.length === 66)
  ) {
    throw new TypeError('verifyEvidence: expectedNonce must be 32 bytes of hex');
  }

  const parsed = teeEvidenceSchema.safeParse(evidence);
  if (!parsed.success)
    throw new AttestationError('malformed', `not TEE evidence (${describeIssues(parsed.error)})`);
  const e: TeeEvidence = parsed.data;
  const collateral = collateralSchema.safeParse(e.tdx.collateral);
  if (!collateral.success) {
    throw new AttestationError('malformed', `not DCAP collateral (${describeIssues(collateral.error)})`);
  }
  const quoteBytes = new Uint8Array(Buffer.from(e.tdx.quote.slice(2), 'hex'));

  const { status, advisoryIds, td } = verifyQuote(
    quoteBytes,
    collateral.data,
    options.anchors.intelRootCaDer,
    now,
    policy.allowDebug,
  );
  if (!policy.tcbStatuses.includes(status)) {
    throw new AttestationError(
      'tcb_status',
      `TCB status ${status} is not accepted (${policy.tcbStatuses.join(', ')})`,
    );
  }
  const debug = (td.tdAttributes[0]! & TD_ATTRIBUTES_DEBUG) !== 0;
  if (debug && !policy.allowDebug) throw new AttestationError('debug', 'the TD is in debug mode');

  const measurements = {
    mrTd: hex48(td.mrTd),
    rtmr0: hex48(td.rtMr0),
    rtmr1: hex48(td.rtMr1),
    rtmr2: hex48(td.rtMr2),
    rtmr3: hex48(td.rtMr3),
  };
  if (policy.measurements.length > 0) {
    const pinned = policy.measurements.some(
      (m) =>
        sameHex(m.mrTd, measurements.mrTd) &&
        (['rtmr0', 'rtmr1', 'rtmr2', 'rtmr3'] as const).every(
          (k) => m[k] === undefined || sameHex(m[k], measurements[k]),
        ),
    );
    if (!pinned)
      throw new AttestationError(
        'measurement',
        `MRTD ${measurements.mrTd} / RTMRs are not pinned by the policy`,
      );
  }

  const reportData = teeReportData(e);
  if (!Buffer.from(td.reportData).equals(Buffer.from(reportData))) {
    throw new AttestationError(
      'report_data',
      "the quote's REPORTDATA does not bind this evidence's HPKE key, signer and nonce",
    );
  }
  if (options.expectedNonce !== undefined && !sameHex(e.nonce, options.expectedNonce)) {
    throw new AttestationError('nonce', 'the evidence is for another nonce');
  }

  const gpu = await verifyNvidiaEat(e.nvidia.eat, {
    anchors: options.anchors,
    gpuNonce: teeGpuNonce(reportData),
    now,
    maxAgeSeconds: policy.maxAgeSeconds,
  });
  const expiresAt = Math.min(
    gpu.expiresAt,
    gpu.issuedAt + policy.maxAgeSeconds,
    nextUpdateOf(collateral.data.tcb_info),
    nextUpdateOf(collateral.data.qe_identity),
  );

  return {
    digest: teeEvidenceDigest(e),
    signer: getAddress(e.signer),
    hpkePublicKey: e.hpkePublicKey,
    nonce: e.nonce,
    tcbStatus: status,
    advisoryIds,
    measurements,
    debug,
    issuedAt: gpu.issuedAt,
    expiresAt,
    simulated: e.simulated,
  };
}
