import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { SimulatedTee, serializeAnchors } from '@aipg/tee';
import { CliError } from '../errors.ts';

/**
 * The devnet's simulated TEE (`aipg devnet --confidential`): a `SimulatedTee` made once per devnet
 * folder and kept across restarts, so a client that trusts its anchors file keeps working.
 *
 * - `<dir>/tee/simulated-root.json` (mode 0600): `tee.serialize()`, private keys included. The devnet's
 *   worker reads it (`teeSimulated`); whoever holds it can mint "valid" evidence.
 * - `<dir>/tee/anchors.json`: its public trust anchors (`serializeAnchors`), rewritten from the root on
 *   every start. The gateway reads it (`tee.anchorsFile`); so must a client (`parseAnchors`).
 */
export type DevnetTee = {
  rootFile: string;
  anchorsFile: string;
  /** Whether this start made a new root (none yet, or the old one's collateral was about to expire). */
  created: boolean;
};

/** How long a new root's collateral stays valid (the simulated quotes' "Intel" TCB info and CRLs). */
const VALID_DAYS = 365;
/** A root whose collateral expires within this is replaced: its evidence would soon stop verifying. */
const RENEW_BEFORE_S = 2 * 86_400;

/** Writes `data` to `path` through a temporary file (never a half-written root), with `mode`. */
async function writeAtomic(path: string, data: string, mode: number): Promise<void> {
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, data, { mode });
  await chmod(tmp, mode);
  await rename(tmp, path);
}

/** `validUntil` (unix seconds) of a serialized root, when it says. */
function validUntilOf(serialized: string): number | undefined {
  try {
    const v = (JSON.parse(serialized) as { validUntil?: unknown }).validUntil;
    return typeof v === 'number' ? v : undefined;
  } catch {
    return undefined;
  }
}

/** Loads the devnet's simulated TEE from `<dir>/tee`, or makes it. */
export async function ensureDevnetTee(dir: string, now = Date.now() / 1000): Promise<DevnetTee> {
  const teeDir = join(dir, 'tee');
  const rootFile = join(teeDir, 'simulated-root.json');
  const anchorsFile = join(teeDir, 'anchors.json');
  await mkdir(teeDir, { recursive: true, mode: 0o700 });

  let serialized: string | undefined;
  try {
    serialized = await readFile(rootFile, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  let tee: SimulatedTee | undefined;
  if (serialized !== undefined) {
    const validUntil = validUntilOf(serialized);
    if (validUntil === undefined || validUntil - now > RENEW_BEFORE_S) {
      try {
        tee = await SimulatedTee.deserialize(serialized);
      } catch (error) {
        throw new CliError(
          `cannot read the devnet's simulated TEE root ${rootFile}`,
          'CONFIG',
          `${error instanceof Error ? error.message : String(error)}; delete it to make a new one (clients must then use the new anchors file)`,
        );
      }
      // Only its owner may read it: it holds the keys that mint evidence.
      await chmod(rootFile, 0o600);
    }
  }
  const created = tee === undefined;
  if (!tee) {
    tee = await SimulatedTee.create({ now, validDays: VALID_DAYS });
    await writeAtomic(rootFile, tee.serialize(), 0o600);
  }
  await writeAtomic(anchorsFile, `${serializeAnchors(tee.anchors)}\n`, 0o644);
  return { rootFile, anchorsFile, created };
}
