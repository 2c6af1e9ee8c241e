// Run by journal.test.ts as a process of its own, then killed (SIGKILL): opens the gateway's storage on
// embedded PGlite in the directory given, reserves a job with its first dispatch numbered, journals the
// job's commit (answered early, its statement allowed to wait 10 minutes, and nothing else here asks the
// database anything), prints what it journaled, and waits to be killed.
import type { Address } from 'viem';
import { openTestStorage, reserveTestJob, testJob } from './storage.ts';

const [dir, keyId, payer, gateway, worker] = process.argv.slice(2) as [
  string,
  string,
  Address,
  Address,
  Address,
];
const { storage } = await openTestStorage(
  'journal',
  { dir },
  { keyId, payer },
  { 'database.commitDelayMs': 600_000 },
);
await storage.receiptNumbers.init(gateway, 0n);
const fee = 123_456_789n;
const job = testJob({ keyId, payer, reservedFee: fee * 2n });
const { seq, commit } = await reserveTestJob(storage, job, { gateway, worker, fee, expiresInMs: 600_000 });
const { journaled } = storage.commitReceipt(...commit, { early: true });
process.stdout.write(
  `${JSON.stringify({ jobId: job.id, journaled, fee: fee.toString(), seq: seq.toString() })}\n`,
);
setInterval(() => {}, 1 << 30);
