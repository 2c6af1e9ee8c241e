/**
 * A SIMULATED TEE for tests and the devnet: it mints faithful Intel TDX v4 DCAP quotes, their collateral
 * and NRAS-shaped NVIDIA EATs under its own test root CA and test key set, so the production verifier
 * (`verifyEvidence`) checks them unchanged, with only the trust anchors swapped. Nothing it produces
 * verifies under `PRODUCTION_ANCHORS`. Everything it makes is labelled "simulated".
 *
 * PKI: test root CA → PCK platform CA → PCK certificate (with the Intel SGX extension: PPID, TCB, PCE-ID,
 * FMSPC, SGX type); test root CA → TCB signing certificate (signs the TCB info and the QE identity).
 */
import 'reflect-metadata';
import { createHash, randomBytes, randomUUID, webcrypto } from 'node:crypto';
import { type TeeEvidence, teeGpuNonce, teeReportData } from '@aipg/core';
import * as x509 from '@peculiar/x509';
import { exportJWK, generateKeyPair, importJWK, type JWK, SignJWT } from 'jose';
import { type Address, getAddress, type Hex, isAddress, isHex, toHex } from 'viem';
import type { TrustAnchors } from './anchors.ts';
import { derEnumerated, derInteger, derOctetString, derOid, derSequence } from './der.ts';
import {
  ATTESTATION_KEY_TYPE_P256,
  certificationData,
  concat,
  ENCLAVE,
  ENCLAVE_REPORT_LENGTH,
  HEADER_LENGTH,
  INTEL_QE_VENDOR_ID,
  TD,
  TD_ATTRIBUTES_DEBUG,
  TD_ATTRIBUTES_SEPT_VE_DISABLE_BYTE3,
  TD_REPORT_LENGTH,
  TEE_TYPE_TDX,
  u16le,
  u32le,
} from './quote.ts';

type CryptoKey = webcrypto.CryptoKey;
type CryptoKeyPair = webcrypto.CryptoKeyPair;
type JsonWebKey = webcrypto.JsonWebKey;

const subtle = webcrypto.subtle;
const DAY = 86_400;
const P256 = { name: 'ECDSA', namedCurve: 'P-256' } as const;
const ECDSA_SHA256 = { name: 'ECDSA', hash: 'SHA-256' } as const;

/** Issuer of the simulated NVIDIA EATs. */
export const SIMULATED_NVIDIA_ISSUER = 'https://nras.simulated.aipg.invalid';

function sha384Hex(label: string): Hex {
  return `0x${createHash('sha384').update(label).digest('hex')}`;
}

/** MRTD of a simulated TD: SHA-384("aipg simulated TD v1"). Pin it in a test policy to accept simulated workers. */
export const SIMULATED_MR_TD: Hex = sha384Hex('aipg simulated TD v1');
/** RTMR0..3 of a simulated TD (fixed values). */
export const SIMULATED_RTMRS: readonly [Hex, Hex, Hex, Hex] = [
  sha384Hex('aipg simulated rtmr0'),
  sha384Hex('aipg simulated rtmr1'),
  sha384Hex('aipg simulated rtmr2'),
  sha384Hex('aipg simulated rtmr3'),
];

// The simulated platform's TCB: CPUSVN (the PCK's SGX TCB components), PCESVN, TEE_TCB_SVN (TDX components).
const CPU_SVN = Uint8Array.from([3, 3, 2, 2, 2, 1, 0, 3, 0, 0, 0, 0, 0, 0, 0, 0]);
const PCE_SVN = 13;
const TEE_TCB_SVN = Uint8Array.from([5, 1, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]);
const FMSPC = Uint8Array.from([0x00, 0x80, 0x6f, 0x05, 0x00, 0x00]);
const PCE_ID = Uint8Array.from([0x00, 0x00]);
// The simulated TD quoting enclave's identity.
const QE_MR_SIGNER = createHash('sha256').update('aipg simulated TD_QE').digest();
const QE_ISV_PROD_ID = 2;
const QE_ISV_SVN = 4;
const QE_ATTRIBUTES = '11000000000000000000000000000000';
const QE_ATTRIBUTES_MASK = 'FBFFFFFFFFFFFFFF0000000000000000';
const XFAM = Uint8Array.from([0xe7, 0x18, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00]);
const MR_SEAM = createHash('sha384').update('aipg simulated TDX module').digest();

const SGX_EXTENSION_OID = '1.2.840.113741.1.13.1';

/** The Intel SGX extension of a PCK certificate: PPID, TCB (16 components, PCESVN, CPUSVN), PCE-ID, FMSPC, SGX type. */
function sgxExtension(ppid: Uint8Array): Uint8Array {
  const tcb = [
    ...Array.from(CPU_SVN, (svn, i) =>
      derSequence(derOid(`${SGX_EXTENSION_OID}.2.${i + 1}`), derInteger(svn)),
    ),
    derSequence(derOid(`${SGX_EXTENSION_OID}.2.17`), derInteger(PCE_SVN)),
    derSequence(derOid(`${SGX_EXTENSION_OID}.2.18`), derOctetString(CPU_SVN)),
  ];
  return derSequence(
    derSequence(derOid(`${SGX_EXTENSION_OID}.1`), derOctetString(ppid)),
    derSequence(derOid(`${SGX_EXTENSION_OID}.2`), derSequence(...tcb)),
    derSequence(derOid(`${SGX_EXTENSION_OID}.3`), derOctetString(PCE_ID)),
    derSequence(derOid(`${SGX_EXTENSION_OID}.4`), derOctetString(FMSPC)),
    derSequence(derOid(`${SGX_EXTENSION_OID}.5`), derEnumerated(0)),
  );
}

async function sign(key: CryptoKey, data: Uint8Array): Promise<Uint8Array> {
  // WebCrypto ECDSA signatures are IEEE P1363 (r ‖ s), the quote's and the collateral's format.
  return new Uint8Array(await subtle.sign(ECDSA_SHA256, key, data));
}

function isoSeconds(unix: number): string {
  return new Date(unix * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

function hexOf(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString('hex');
}

function bytesOfHex(hex: string, length: number, what: string): Uint8Array {
  const clean = hex.startsWith('0x') ? hex.slice(2) : hex;
  if (clean.length !== length * 2 || !/^[0-9a-fA-F]*$/.test(clean))
    throw new Error(`${what}: expected ${length} bytes`);
  return new Uint8Array(Buffer.from(clean, 'hex'));
}

const issuerCertName = (role: string) => `CN=AIPG Simulated ${role} (TEST ONLY), O=AIPG simulated TEE`;

/** Options of `SimulatedTee.attest`; the overrides exist so tests can build each bad case through the real verifier. */
export type SimulatedAttestOptions = {
  hpkePublicKey: string;
  signer: Address;
  nonce: Hex;
  /** Unix seconds the EAT is issued at (default: now). */
  now?: number;
  /** Set the TD's DEBUG attribute. */
  debug?: boolean;
  /** MRTD (48 bytes; default `SIMULATED_MR_TD`). */
  mrTd?: Hex;
  /** The TCB status the collateral gives this platform (default `UpToDate`). */
  tcbStatus?: string;
  /** `x-nvidia-overall-att-result` (default true). */
  gpuResult?: boolean;
  /** REPORTDATA to put in the quote instead of the one the key, signer and nonce give. */
  reportDataOverride?: Uint8Array;
  /** `eat_nonce` to put in the EATs instead of the one REPORTDATA gives. */
  gpuNonceOverride?: string;
};

type SimulatedState = {
  validFrom: number;
  validUntil: number;
  rootCaDer: Uint8Array;
  pckChainPem: string;
  tcbSignerChainPem: string;
  pckCrlIssuerChainPem: string;
  rootCaCrlHex: string;
  pckCrlHex: string;
  /** The QE report certification data's QE report, its PCK signature and the QE auth data. */
  qeReport: Uint8Array;
  qeReportSignature: Uint8Array;
  qeAuthData: Uint8Array;
  attestationKey: CryptoKey;
  attestationPublicKey: Uint8Array;
  tcbSignerKey: CryptoKey;
  nvidiaKey: CryptoKey;
  nvidiaPublicJwk: JWK;
  /** Exported private JWKs, for `serialize`. */
  jwks: { attestation: JsonWebKey; tcbSigner: JsonWebKey; nvidia: JWK };
};

const serializedSchemaKind = 'aipg-simulated-tee';

/**
 * A simulated Intel TDX + NVIDIA GPU TEE, for tests and the devnet ONLY. It holds the private keys of its
 * own test root (through the certificates it issued), its quoting key and its NVIDIA test key, so
 * anyone holding it can mint evidence: trust its `anchors` only where simulated workers are wanted.
 */
export class SimulatedTee {
  /** The anchors its evidence verifies under: its test root CA and its test JWKS. */
  readonly anchors: TrustAnchors;
  readonly #s: SimulatedState;
  readonly #collateral = new Map<string, Promise<Record<string, unknown>>>();

  private constructor(state: SimulatedState) {
    this.#s = state;
    this.anchors = {
      intelRootCaDer: state.rootCaDer,
      nvidiaJwks: { keys: [{ ...state.nvidiaPublicJwk }] },
      nvidiaIssuer: SIMULATED_NVIDIA_ISSUER,
    };
  }

  /**
   * Makes a fresh simulated TEE: a test root CA, PCK platform CA, PCK certificate and TCB signer, an
   * attestation key, and an ES384 NVIDIA test key. Its collateral is valid from `now - 1 day` for
   * `validDays` (default 30); its certificates for ten years from then.
   */
  static async create(options: { now?: number; validDays?: number } = {}): Promise<SimulatedTee> {
    const now = Math.floor(options.now ?? Date.now() / 1000);
    const validDays = options.validDays ?? 30;
    if (!(validDays > 0)) throw new Error('validDays must be positive');
    const validFrom = now - DAY;
    const validUntil = validFrom + Math.round(validDays * DAY);
    const notBefore = new Date(validFrom * 1000);
    const notAfter = new Date((validFrom + 3650 * DAY) * 1000);

    const keys = async () => (await subtle.generateKey(P256, true, ['sign', 'verify'])) as CryptoKeyPair;
    const [rootKeys, pckCaKeys, pckKeys, tcbKeys, attKeys] = await Promise.all([
      keys(),
      keys(),
      keys(),
      keys(),
      keys(),
    ]);
    const caExtensions = (pathLength: number) => [
      new x509.BasicConstraintsExtension(true, pathLength, true),
      new x509.KeyUsagesExtension(x509.KeyUsageFlags.keyCertSign | x509.KeyUsageFlags.cRLSign, true),
    ];
    const leafUsage = new x509.KeyUsagesExtension(
      x509.KeyUsageFlags.digitalSignature | x509.KeyUsageFlags.nonRepudiation,
      true,
    );
    const root = await x509.X509CertificateGenerator.createSelfSigned({
      name: issuerCertName('SGX Root CA'),
      notBefore,
      notAfter,
      keys: rootKeys,
      signingAlgorithm: ECDSA_SHA256,
      extensions: caExtensions(1),
    });
    const pckCa = await x509.X509CertificateGenerator.create({
      subject: issuerCertName('PCK Platform CA'),
      issuer: root.subject,
      notBefore,
      notAfter,
      publicKey: pckCaKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: ECDSA_SHA256,
      extensions: caExtensions(0),
    });
    const pck = await x509.X509CertificateGenerator.create({
      subject: issuerCertName('PCK Certificate'),
      issuer: pckCa.subject,
      notBefore,
      notAfter,
      publicKey: pckKeys.publicKey,
      signingKey: pckCaKeys.privateKey,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [
        new x509.Extension(SGX_EXTENSION_OID, false, sgxExtension(new Uint8Array(randomBytes(16)))),
        leafUsage,
      ],
    });
    const tcbSigner = await x509.X509CertificateGenerator.create({
      subject: issuerCertName('TCB Signing'),
      issuer: root.subject,
      notBefore,
      notAfter,
      publicKey: tcbKeys.publicKey,
      signingKey: rootKeys.privateKey,
      signingAlgorithm: ECDSA_SHA256,
      extensions: [leafUsage],
    });
    const crl = (issuer: x509.X509Certificate, key: CryptoKey) =>
      x509.X509CrlGenerator.create({
        issuer: issuer.subject,
        thisUpdate: notBefore,
        nextUpdate: new Date(validUntil * 1000),
        signingAlgorithm: ECDSA_SHA256,
        signingKey: key,
      });
    const [rootCrl, pckCrl] = await Promise.all([
      crl(root, rootKeys.privateKey),
      crl(pckCa, pckCaKeys.privateKey),
    ]);

    // The QE report: its REPORTDATA binds the attestation key (SHA-256(attestation key ‖ QE auth data)),
    // and the PCK key signs it.
    const attestationPublicKey = new Uint8Array(await subtle.exportKey('raw', attKeys.publicKey)).subarray(1);
    const qeAuthData = Uint8Array.from({ length: 32 }, (_, i) => i);
    const qeReport = new Uint8Array(ENCLAVE_REPORT_LENGTH);
    qeReport.set(CPU_SVN, ENCLAVE.cpuSvn);
    qeReport.set(Buffer.from(QE_ATTRIBUTES, 'hex'), ENCLAVE.attributes);
    qeReport.set(createHash('sha256').update('aipg simulated TD_QE enclave').digest(), ENCLAVE.mrEnclave);
    qeReport.set(QE_MR_SIGNER, ENCLAVE.mrSigner);
    qeReport.set(u16le(QE_ISV_PROD_ID), ENCLAVE.isvProdId);
    qeReport.set(u16le(QE_ISV_SVN), ENCLAVE.isvSvn);
    qeReport.set(
      createHash('sha256').update(attestationPublicKey).update(qeAuthData).digest(),
      ENCLAVE.reportData,
    );
    const qeReportSignature = await sign(pckKeys.privateKey, qeReport);

    const nvidia = await generateKeyPair('ES384', { extractable: true });
    const nvidiaJwk = await exportJWK(nvidia.privateKey);
    nvidiaJwk.kid = `aipg-simulated-nras-${randomUUID()}`;
    nvidiaJwk.alg = 'ES384';

    return SimulatedTee.#fromState({
      validFrom,
      validUntil,
      rootCaDer: new Uint8Array(root.rawData),
      pckChainPem: `${pck.toString('pem')}\n${pckCa.toString('pem')}\n${root.toString('pem')}\n`,
      tcbSignerChainPem: `${tcbSigner.toString('pem')}\n${root.toString('pem')}\n`,
      pckCrlIssuerChainPem: `${pckCa.toString('pem')}\n${root.toString('pem')}\n`,
      rootCaCrlHex: hexOf(new Uint8Array(rootCrl.rawData)),
      pckCrlHex: hexOf(new Uint8Array(pckCrl.rawData)),
      qeReport,
      qeReportSignature,
      qeAuthData,
      attestation: await subtle.exportKey('jwk', attKeys.privateKey),
      tcbSigner: await subtle.exportKey('jwk', tcbKeys.privateKey),
      nvidia: nvidiaJwk,
    });
  }

  static async #fromState(s: {
    validFrom: number;
    validUntil: number;
    rootCaDer: Uint8Array;
    pckChainPem: string;
    tcbSignerChainPem: string;
    pckCrlIssuerChainPem: string;
    rootCaCrlHex: string;
    pckCrlHex: string;
    qeReport: Uint8Array;
    qeReportSignature: Uint8Array;
    qeAuthData: Uint8Array;
    attestation: JsonWebKey;
    tcbSigner: JsonWebKey;
    nvidia: JWK;
  }): Promise<SimulatedTee> {
    const attestationKey = await subtle.importKey('jwk', s.attestation, P256, false, ['sign']);
    const { d: _d, key_ops: _ops, ...attestationPublic } = s.attestation;
    const attestationPublicKey = new Uint8Array(
      await subtle.exportKey('raw', await subtle.importKey('jwk', attestationPublic, P256, true, ['verify'])),
    ).subarray(1);
    const tcbSignerKey = await subtle.importKey('jwk', s.tcbSigner, P256, false, ['sign']);
    const nvidiaKey = (await importJWK(s.nvidia, 'ES384')) as CryptoKey;
    const { d: _nd, ...nvidiaPublicJwk } = s.nvidia;
    return new SimulatedTee({
      validFrom: s.validFrom,
      validUntil: s.validUntil,
      rootCaDer: s.rootCaDer,
      pckChainPem: s.pckChainPem,
      tcbSignerChainPem: s.tcbSignerChainPem,
      pckCrlIssuerChainPem: s.pckCrlIssuerChainPem,
      rootCaCrlHex: s.rootCaCrlHex,
      pckCrlHex: s.pckCrlHex,
      qeReport: s.qeReport,
      qeReportSignature: s.qeReportSignature,
      qeAuthData: s.qeAuthData,
      attestationKey,
      attestationPublicKey,
      tcbSignerKey,
      nvidiaKey,
      nvidiaPublicJwk: { ...nvidiaPublicJwk, use: 'sig' },
      jwks: { attestation: s.attestation, tcbSigner: s.tcbSigner, nvidia: s.nvidia },
    });
  }

  /** The collateral (TCB info, QE identity, their signatures and chains, CRLs) for a TCB status, as dcap-qvl takes it. */
  #collateralFor(tcbStatus: string): Promise<Record<string, unknown>> {
    let c = this.#collateral.get(tcbStatus);
    if (!c) {
      c = this.#makeCollateral(tcbStatus);
      this.#collateral.set(tcbStatus, c);
    }
    return c;
  }

  async #makeCollateral(tcbStatus: string): Promise<Record<string, unknown>> {
    const s = this.#s;
    const issueDate = isoSeconds(s.validFrom);
    const nextUpdate = isoSeconds(s.validUntil);
    const level = (cpu: Uint8Array, tee: Uint8Array, status: string, advisoryIDs: string[]) => ({
      tcb: {
        sgxtcbcomponents: Array.from(cpu, (svn) => ({ svn })),
        pcesvn: PCE_SVN,
        tdxtcbcomponents: Array.from(tee, (svn) => ({ svn })),
      },
      tcbDate: issueDate,
      tcbStatus: status,
      ...(advisoryIDs.length > 0 ? { advisoryIDs } : {}),
    });
    // UpToDate: the platform's own level is UpToDate. Otherwise a newer level (every SVN + 1) is UpToDate
    // and the platform's level has the requested status, as Intel marks a platform behind a TCB recovery.
    const tcbLevels =
      tcbStatus === 'UpToDate'
        ? [level(CPU_SVN, TEE_TCB_SVN, 'UpToDate', [])]
        : [
            level(
              CPU_SVN.map((v) => v + 1),
              TEE_TCB_SVN.map((v) => v + 1),
              'UpToDate',
              [],
            ),
            level(CPU_SVN, TEE_TCB_SVN, tcbStatus, ['AIPG-SIMULATED-SA-00001']),
          ];
    const tcbInfo = JSON.stringify({
      id: 'TDX',
      version: 3,
      issueDate,
      nextUpdate,
      fmspc: hexOf(FMSPC).toUpperCase(),
      pceId: hexOf(PCE_ID).toUpperCase(),
      tcbType: 0,
      tcbEvaluationDataNumber: 17,
      tcbLevels,
    });
    const qeIdentity = JSON.stringify({
      id: 'TD_QE',
      version: 2,
      issueDate,
      nextUpdate,
      tcbEvaluationDataNumber: 17,
      miscselect: '00000000',
      miscselectMask: 'FFFFFFFF',
      attributes: QE_ATTRIBUTES,
      attributesMask: QE_ATTRIBUTES_MASK,
      mrsigner: hexOf(QE_MR_SIGNER).toUpperCase(),
      isvprodid: QE_ISV_PROD_ID,
      tcbLevels: [{ tcb: { isvsvn: QE_ISV_SVN }, tcbDate: issueDate, tcbStatus: 'UpToDate' }],
    });
    const encoder = new TextEncoder();
    return {
      pck_crl_issuer_chain: s.pckCrlIssuerChainPem,
      root_ca_crl: s.rootCaCrlHex,
      pck_crl: s.pckCrlHex,
      tcb_info_issuer_chain: s.tcbSignerChainPem,
      tcb_info: tcbInfo,
      tcb_info_signature: hexOf(await sign(s.tcbSignerKey, encoder.encode(tcbInfo))),
      qe_identity_issuer_chain: s.tcbSignerChainPem,
      qe_identity: qeIdentity,
      qe_identity_signature: hexOf(await sign(s.tcbSignerKey, encoder.encode(qeIdentity))),
    };
  }

  /** A TDX v4 quote over the given REPORTDATA, signed by the simulated quoting enclave's attestation key. */
  async #quote(reportData: Uint8Array, mrTd: Uint8Array, debug: boolean): Promise<Uint8Array> {
    const s = this.#s;
    const header = concat([
      u16le(4),
      u16le(ATTESTATION_KEY_TYPE_P256),
      u32le(TEE_TYPE_TDX),
      u16le(0),
      u16le(PCE_SVN),
      INTEL_QE_VENDOR_ID,
      new Uint8Array(20),
    ]);
    const body = new Uint8Array(TD_REPORT_LENGTH);
    body.set(TEE_TCB_SVN, TD.teeTcbSvn);
    body.set(MR_SEAM, TD.mrSeam);
    body.set(
      Uint8Array.from([
        debug ? TD_ATTRIBUTES_DEBUG : 0,
        0,
        0,
        TD_ATTRIBUTES_SEPT_VE_DISABLE_BYTE3,
        0,
        0,
        0,
        0,
      ]),
      TD.tdAttributes,
    );
    body.set(XFAM, TD.xfam);
    body.set(mrTd, TD.mrTd);
    const rtmrOffsets = [TD.rtmr0, TD.rtmr1, TD.rtmr2, TD.rtmr3];
    SIMULATED_RTMRS.forEach((rtmr, i) => {
      body.set(bytesOfHex(rtmr, 48, 'rtmr'), rtmrOffsets[i]!);
    });
    body.set(reportData, TD.reportData);
    if (header.length !== HEADER_LENGTH) throw new Error('simulated quote: bad header length');
    const signature = await sign(s.attestationKey, concat([header, body]));
    const qeCertification = concat([
      s.qeReport,
      s.qeReportSignature,
      u16le(s.qeAuthData.length),
      s.qeAuthData,
      certificationData(5, new TextEncoder().encode(s.pckChainPem)),
    ]);
    const auth = concat([signature, s.attestationPublicKey, certificationData(6, qeCertification)]);
    return concat([header, body, u32le(auth.length), auth]);
  }

  /** NRAS-shaped detached EAT: `[["JWT", overall], {"GPU-0": jwt}]`, ES384 under the simulated key. */
  async #eat(eatNonce: string, result: boolean, now: number): Promise<string> {
    const s = this.#s;
    const header = { alg: 'ES384', kid: s.nvidiaPublicJwk.kid, typ: 'JWT' };
    const common = { eat_nonce: eatNonce, 'x-aipg-simulated': true };
    const gpu = await new SignJWT({
      ...common,
      hwmodel: 'GH100 A01 GSP BROM (simulated)',
      ueid: BigInt(`0x${randomBytes(16).toString('hex')}`).toString(),
      oemid: '5703',
      secboot: true,
      dbgstat: 'disabled',
      measres: 'success',
      'x-nvidia-gpu-arch-check': true,
      'x-nvidia-gpu-attestation-report-nonce-match': true,
      'x-nvidia-gpu-attestation-report-signature-verified': true,
      'x-nvidia-gpu-driver-version': 'simulated',
    })
      .setProtectedHeader(header)
      .setIssuer(SIMULATED_NVIDIA_ISSUER)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 3600)
      .setJti(randomUUID())
      .sign(s.nvidiaKey);
    const overall = await new SignJWT({
      ...common,
      sub: 'NVIDIA-PLATFORM-ATTESTATION',
      'x-nvidia-ver': '2.0',
      'x-nvidia-overall-att-result': result,
      submods: { 'GPU-0': ['DIGEST', ['SHA-256', createHash('sha256').update(gpu).digest('hex')]] },
    })
      .setProtectedHeader(header)
      .setIssuer(SIMULATED_NVIDIA_ISSUER)
      .setIssuedAt(now)
      .setNotBefore(now)
      .setExpirationTime(now + 3600)
      .setJti(randomUUID())
      .sign(s.nvidiaKey);
    return JSON.stringify([['JWT', overall], { 'GPU-0': gpu }]);
  }

  /** Evidence (labelled `simulated: true`) binding `hpkePublicKey` and `signer` to `nonce`. */
  async attest(p: SimulatedAttestOptions): Promise<TeeEvidence> {
    if (!isAddress(p.signer, { strict: false })) throw new Error('attest: signer must be an address');
    if (!isHex(p.nonce) || p.nonce.length !== 66) throw new Error('attest: nonce must be 32 bytes of hex');
    const now = Math.floor(p.now ?? Date.now() / 1000);
    const reportData = p.reportDataOverride ?? teeReportData(p);
    if (reportData.length !== 64) throw new Error('attest: REPORTDATA must be 64 bytes');
    const mrTd = bytesOfHex(p.mrTd ?? SIMULATED_MR_TD, 48, 'attest: mrTd');
    const [quote, collateral, eat] = await Promise.all([
      this.#quote(reportData, mrTd, p.debug ?? false),
      this.#collateralFor(p.tcbStatus ?? 'UpToDate'),
      this.#eat(p.gpuNonceOverride ?? teeGpuNonce(reportData), p.gpuResult ?? true, now),
    ]);
    return {
      version: 1,
      platform: 'tdx+nvidia',
      signer: getAddress(p.signer),
      hpkePublicKey: p.hpkePublicKey,
      nonce: p.nonce,
      tdx: { quote: toHex(quote), collateral: { ...collateral } },
      nvidia: { eat },
      simulated: true,
    };
  }

  /** JSON of this simulated TEE, private keys included (the devnet writes it to a file for its workers). */
  serialize(): string {
    const s = this.#s;
    return JSON.stringify({
      kind: serializedSchemaKind,
      version: 1,
      validFrom: s.validFrom,
      validUntil: s.validUntil,
      rootCaDer: Buffer.from(s.rootCaDer).toString('base64'),
      pckChainPem: s.pckChainPem,
      tcbSignerChainPem: s.tcbSignerChainPem,
      pckCrlIssuerChainPem: s.pckCrlIssuerChainPem,
      rootCaCrl: s.rootCaCrlHex,
      pckCrl: s.pckCrlHex,
      qeReport: hexOf(s.qeReport),
      qeReportSignature: hexOf(s.qeReportSignature),
      qeAuthData: hexOf(s.qeAuthData),
      keys: s.jwks,
    });
  }

  /** Reads what `serialize` wrote. */
  static async deserialize(json: string): Promise<SimulatedTee> {
    let o: Record<string, unknown>;
    try {
      o = JSON.parse(json) as Record<string, unknown>;
    } catch {
      throw new Error('simulated TEE: not JSON');
    }
    if (o?.kind !== serializedSchemaKind || o.version !== 1) throw new Error('simulated TEE: unknown format');
    const str = (k: string) => {
      const v = o[k];
      if (typeof v !== 'string' || v.length === 0) throw new Error(`simulated TEE: ${k} missing`);
      return v;
    };
    const num = (k: string) => {
      const v = o[k];
      if (typeof v !== 'number' || !Number.isSafeInteger(v)) throw new Error(`simulated TEE: ${k} missing`);
      return v;
    };
    const keys = o.keys as { attestation?: JsonWebKey; tcbSigner?: JsonWebKey; nvidia?: JWK } | undefined;
    if (!keys?.attestation?.d || !keys.tcbSigner?.d || !keys.nvidia?.d) {
      throw new Error('simulated TEE: private keys missing');
    }
    return SimulatedTee.#fromState({
      validFrom: num('validFrom'),
      validUntil: num('validUntil'),
      rootCaDer: new Uint8Array(Buffer.from(str('rootCaDer'), 'base64')),
      pckChainPem: str('pckChainPem'),
      tcbSignerChainPem: str('tcbSignerChainPem'),
      pckCrlIssuerChainPem: str('pckCrlIssuerChainPem'),
      rootCaCrlHex: str('rootCaCrl'),
      pckCrlHex: str('pckCrl'),
      qeReport: bytesOfHex(str('qeReport'), ENCLAVE_REPORT_LENGTH, 'simulated TEE: qeReport'),
      qeReportSignature: bytesOfHex(str('qeReportSignature'), 64, 'simulated TEE: qeReportSignature'),
      qeAuthData: new Uint8Array(Buffer.from(str('qeAuthData'), 'hex')),
      attestation: keys.attestation,
      tcbSigner: keys.tcbSigner,
      nvidia: keys.nvidia,
    });
  }
}
