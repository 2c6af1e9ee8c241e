/**
 * The validator's progress, in one JSON file under its data directory, written atomically (a
 * temporary file, fsync, rename), so a crash leaves either the old or the new state, never half
 * of one. Votes are commit-then-reveal: the vote, its evidence hash and a fresh random salt are
 * recorded here BEFORE the commitment is sent, so after a crash the node still knows what it
 * committed to and reveals it after the commit deadline (a commitment never revealed is slashed).
 * A step that may have been sent (`committing`, `revealing`) is settled with `voteOf` after a
 * restart. It never judges a job twice, never commits twice, never reveals before the deadline.
 */
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { ReceiptJson } from '@aipg/core';
import type { Address, Hex } from 'viem';
import { z } from 'zod';
import { ValidatorError, ValidatorErrorCode } from '../errors.ts';
import type { ImageReason } from '../judge/image.ts';
import type { Reason } from '../judge/judge.ts';

/** 2: commit-reveal (1 held single-step attestations; such a file is refused, start with a new data dir). */
export const STATE_VERSION = 2;

export type BatchStatus =
  /** Settled; its randomness is not fixed yet. */
  | 'waiting'
  /** Randomness fixed; this validator's assignments are listed under `audits`. */
  | 'listed'
  /** Nothing left to do here. */
  | 'done';

export type BatchRecord = {
  batchId: string;
  root: Hex;
  gateway: Address;
  settledBlock: string;
  status: BatchStatus;
  /** Commit deadline (unix seconds) once the randomness is fixed. */
  deadline: string | null;
  /** Reveal deadline (unix seconds) once the randomness is fixed; finalizable after it. */
  revealDeadline: string | null;
  /** Audited leaves of the batch (for `--finalize all`). */
  audited: Hex[];
  /** Audited leaves finalized (by anyone) as far as this validator knows. */
  finalized: Hex[];
  lastError?: string | undefined;
};

export type AuditStatus =
  /** Assigned; not judged yet. */
  | 'pending'
  /** Judged: vote, evidence hash and salt are fixed and saved (what is committed, now or after a restart). */
  | 'judged'
  /** The commitment may have been sent (check `voteOf` after a restart). */
  | 'committing'
  /** The commitment is on chain: reveal once the commit deadline has passed. */
  | 'committed'
  /** The reveal may have been sent (check `voteOf` after a restart). */
  | 'revealing'
  | 'revealed'
  /** Not voted: evidence missing or unverifiable, commit window passed, unassigned. */
  | 'abstained'
  /** Committed but the reveal window closed before the reveal landed: the contract slashes this. */
  | 'unrevealed'
  | 'finalized';

export const auditStatuses = [
  'pending',
  'judged',
  'committing',
  'committed',
  'revealing',
  'revealed',
  'abstained',
  'unrevealed',
  'finalized',
] as const satisfies readonly AuditStatus[];

/**
 * A cross-check worker's signed scores this validator judged an audit with. The full set (what it
 * signed, the signature, every position) is in `file`, so a lie can be shown later to anyone holding
 * the weights, against the scorer's bond.
 */
export type ScoreEvidence = {
  /** The drawn worker (bond owner) and the operator key that signed (its bond's, checked on chain). */
  worker: Address;
  operator: Address;
  signature: Hex;
  scoreJobId: Hex;
  positionsHash: Hex;
  topK: number;
  /** Its place in the audit's draw order. */
  drawIndex: number;
  /** What the judge made of these scores alone, and its worker-fault reason codes. */
  verdict: 'pass' | 'fail' | 'abstain';
  reasons: string[];
  /** JSON file with the attestation, signature and positions (under the data directory). */
  file: string;
};

export type AuditRecord = {
  leaf: Hex;
  batchId: string;
  jobId: Hex;
  worker: Address;
  modelId: Hex;
  /** The receipt and its Merkle proof as listed for the batch (what `commitVote` sends). */
  receipt: ReceiptJson;
  proof: Hex[];
  /** The worker's signature of the receipt, as the gateway serves it (verified before judging). */
  signature?: Hex | undefined;
  /** Commit deadline and reveal deadline (unix seconds). */
  deadline: string;
  revealDeadline: string;
  status: AuditStatus;
  /** Unix ms before which a failed step is not retried. */
  retryAt?: number | undefined;
  vote?: 'pass' | 'fail' | undefined;
  evidenceHash?: Hex | undefined;
  /** 32 random bytes: the commitment hides the vote until it is revealed with this. Secret until then. */
  salt?: Hex | undefined;
  commitment?: Hex | undefined;
  /** What a FAIL rests on (text judge reasons, or an image judge's `{code, detail}`). */
  reasons?: (Reason | ImageReason)[] | undefined;
  soft?: string[] | undefined;
  scorer?: string | undefined;
  /** Cross-check: the seed of the scorer draw (from the batch's on-chain randomness, the leaf and this validator). */
  scorerSeed?: Hex | undefined;
  /** Cross-check: every signed score set judged with, in the order asked (a FAIL needs two). */
  scores?: ScoreEvidence[] | undefined;
  /** Cross-check: the second scorer did not confirm the first one's FAIL (abstained, or FAILed on the validator's own reasons only). */
  scorerDisagreement?: boolean | undefined;
  commitTx?: Hex | undefined;
  revealTx?: Hex | undefined;
  attempts: number;
  lastError?: string | undefined;
  abstainReason?: string | undefined;
  /** Reason codes of the gateway's evidence faults found in this job (it was abstained from, or failed on the worker's own faults). */
  gatewayFaults?: string[] | undefined;
  /** The `reportGatewayFault` transaction of those faults (`already-reported` when the chain had one). */
  faultReportTx?: string | undefined;
  verdict?: string | undefined;
};

export type ValidatorState = {
  version: typeof STATE_VERSION;
  chainId: number;
  grid: Address;
  owner: Address;
  /** The next block to read `BatchSettled` logs from. */
  cursor: string;
  batches: Record<string, BatchRecord>;
  audits: Record<string, AuditRecord>;
  /** AIPG wei withdrawn by this node, for the record. */
  withdrawn: string;
  /** What pruned (long finished) batches held: counts only. */
  archived: { batches: number; pass: number; fail: number; abstained: number };
  /** Gateway evidence faults found, by gateway address (lower case), then reason code: jobs counted once per code. Never pruned. */
  gatewayFaults: Record<string, Record<string, number>>;
};

const stateSchema = z.object({
  version: z.literal(STATE_VERSION),
  chainId: z.number().int(),
  grid: z.string(),
  owner: z.string(),
  cursor: z.string().regex(/^\d+$/),
  batches: z.record(z.string(), z.object({ status: z.enum(['waiting', 'listed', 'done']) }).passthrough()),
  audits: z.record(z.string(), z.object({ status: z.enum(auditStatuses) }).passthrough()),
  withdrawn: z.string(),
});

export type StateStore = {
  readonly path: string;
  readonly state: ValidatorState;
  /** Writes the state atomically. Writes are serialized. */
  save(): Promise<void>;
};

/**
 * Opens (or creates) the state file. Refuses a file written for another chain, Grid or validator:
 * its cursor and votes would be wrong here.
 */
export async function openStateStore(
  path: string,
  identity: { chainId: number; grid: Address; owner: Address; startBlock: bigint },
): Promise<StateStore> {
  let state: ValidatorState;
  const text = await readFile(path, 'utf8').catch((error: NodeJS.ErrnoException) => {
    if (error.code === 'ENOENT') return undefined;
    throw new ValidatorError(`Cannot read the state file ${path}`, {
      code: ValidatorErrorCode.stateFile,
      cause: error,
    });
  });
  if (text === undefined) {
    state = {
      version: STATE_VERSION,
      chainId: identity.chainId,
      grid: identity.grid,
      owner: identity.owner,
      cursor: identity.startBlock.toString(),
      batches: {},
      audits: {},
      withdrawn: '0',
      archived: { batches: 0, pass: 0, fail: 0, abstained: 0 },
      gatewayFaults: {},
    };
  } else {
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new ValidatorError(`The state file ${path} is not valid JSON`, {
        code: ValidatorErrorCode.stateFile,
        cause,
      });
    }
    const parsed = stateSchema.safeParse(json);
    if (!parsed.success)
      throw new ValidatorError(`The state file ${path} is malformed`, {
        code: ValidatorErrorCode.stateFile,
        details: parsed.error.issues[0]?.message,
      });
    state = json as ValidatorState;
    state.archived ??= { batches: 0, pass: 0, fail: 0, abstained: 0 };
    state.gatewayFaults ??= {};
    const same =
      state.chainId === identity.chainId &&
      state.grid.toLowerCase() === identity.grid.toLowerCase() &&
      state.owner.toLowerCase() === identity.owner.toLowerCase();
    if (!same)
      throw new ValidatorError(`The state file ${path} belongs to another validator or chain`, {
        code: ValidatorErrorCode.stateFile,
        details: `file: chain ${state.chainId}, grid ${state.grid}, owner ${state.owner}; here: chain ${identity.chainId}, grid ${identity.grid}, owner ${identity.owner}`,
      });
  }

  let writing: Promise<void> = Promise.resolve();
  const store: StateStore = {
    path,
    state,
    save() {
      const snapshot = `${JSON.stringify(state, null, 1)}\n`;
      writing = writing.catch(() => undefined).then(() => writeAtomic(path, snapshot));
      return writing;
    },
  };
  if (text === undefined) await store.save();
  return store;
}

async function writeAtomic(path: string, text: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const tmp = `${path}.${process.pid}.tmp`;
  try {
    const file = await open(tmp, 'w', 0o600);
    try {
      await file.writeFile(text);
      await file.sync();
    } finally {
      await file.close();
    }
    await rename(tmp, path);
  } catch (cause) {
    await rm(tmp, { force: true });
    throw new ValidatorError(`Cannot write the state file ${path}`, {
      code: ValidatorErrorCode.stateFile,
      cause,
    });
  }
}
