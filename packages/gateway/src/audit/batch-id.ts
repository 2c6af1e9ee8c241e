import { gridAbi, type ReadClient } from '@aipg/chain';
import type { Address, Hex } from 'viem';
import { readContract } from 'viem/actions';

/** How far back `findSettledBatchId` looks (batches of every gateway count). */
const MAX_SCAN = 4_096;
const PARALLEL = 8;

/**
 * Finds the Grid's id of a settled root by reading `getBatch` from the newest batch back (the Grid
 * keeps `root → id` private). Only for batches the gateway found settled without its own transaction
 * (a crash between sending and recording, another replica): those are recent, so the scan is short.
 * Undefined when the root is not among the last `MAX_SCAN` batches.
 */
export async function findSettledBatchId(
  client: ReadClient,
  { grid, root }: { grid: Address; root: Hex },
): Promise<{ batchId: bigint; settledBlock: bigint } | undefined> {
  const count = await readContract(client, { address: grid, abi: gridAbi, functionName: 'batchCount' });
  const want = root.toLowerCase();
  const last = count > BigInt(MAX_SCAN) ? count - BigInt(MAX_SCAN) + 1n : 1n;
  for (let hi = count; hi >= last; hi -= BigInt(PARALLEL)) {
    const ids: bigint[] = [];
    for (let id = hi; id > hi - BigInt(PARALLEL) && id >= last; id -= 1n) ids.push(id);
    const batches = await Promise.all(
      ids.map((batchId) =>
        readContract(client, { address: grid, abi: gridAbi, functionName: 'getBatch', args: [batchId] }),
      ),
    );
    const i = batches.findIndex((b) => b.root.toLowerCase() === want);
    if (i >= 0) return { batchId: ids[i] as bigint, settledBlock: BigInt(batches[i]?.settledBlock ?? 0) };
  }
  return undefined;
}
