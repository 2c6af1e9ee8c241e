import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { chainFor, gridAbi } from '@aipg/chain';
import {
  type Address,
  createPublicClient,
  createWalletClient,
  custom,
  type Hex,
  http,
  zeroAddress,
} from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import { deployContract, readContract, waitForTransactionReceipt, writeContract } from 'viem/actions';
import { openGatewayDatabase } from '../../gateway/test/helpers/database.ts';
import { roles, type TestGrid } from '../../gateway/test/helpers/grid.ts';

/**
 * A fresh gateway database (its migrations applied: the API reads its jobs and receipts), in memory or in
 * `dir` to test restarts.
 */
export const openTestDb = openGatewayDatabase;

/** A read client that records every JSON-RPC call (method and params) it makes. */
export function recordingClient(rpcUrl: string) {
  const calls: { method: string; params: unknown }[] = [];
  const upstream = http(rpcUrl, { retryCount: 0 })({ chain: undefined, retryCount: 0 });
  const client = createPublicClient({
    transport: custom({
      async request({ method, params }) {
        calls.push({ method, params });
        return upstream.request({ method, params } as Parameters<typeof upstream.request>[0]);
      },
    }),
  });
  return { client, calls };
}

export async function rpc<T = unknown>(rpcUrl: string, method: string, params: unknown[] = []): Promise<T> {
  const res = await fetch(rpcUrl, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  const body = (await res.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

const harness = JSON.parse(
  readFileSync(
    fileURLToPath(
      new URL('../../../contracts/out/BondingSlashHarness.sol/BondingSlashHarness.json', import.meta.url),
    ),
    'utf8',
  ),
) as { abi: readonly unknown[]; bytecode: { object: Hex }; methodIdentifiers: Record<string, string> };

const harnessAbi = [
  {
    type: 'function',
    name: 'harnessSlash',
    stateMutability: 'nonpayable',
    inputs: [
      { name: 'role', type: 'uint8' },
      { name: 'bondOwner', type: 'address' },
      { name: 'amount', type: 'uint256' },
    ],
    outputs: [{ name: '', type: 'uint256' }],
  },
] as const;

/**
 * Test only: adds the contracts' `BondingSlashHarness.harnessSlash` to the devnet diamond through the
 * real timelocked `diamondCut` (announce, advance anvil's clock past `cutDelay`, cut), so a slash is a
 * genuine `BondSlashed` of the Grid until the AuditFacet brings real ones. Returns `slash(owner, wei)`.
 */
export async function installSlashHarness(grid: TestGrid) {
  const chain = chainFor(grid.chain.anvil.chainId, grid.rpcUrl);
  const owner = createWalletClient({
    account: privateKeyToAccount(roles.owner.privateKey),
    chain,
    transport: http(grid.rpcUrl),
    pollingInterval: 50,
  });
  const deployHash = await deployContract(owner, {
    abi: harness.abi,
    bytecode: harness.bytecode.object,
    account: owner.account,
    chain,
  });
  const facet = (await waitForTransactionReceipt(owner, { hash: deployHash })).contractAddress as Address;
  const selector = `0x${harness.methodIdentifiers['harnessSlash(uint8,address,uint256)']}` as Hex;
  const cut = [{ facetAddress: facet, action: 0, functionSelectors: [selector] }] as const;
  const send = async (functionName: string, args: readonly unknown[], abi: readonly unknown[] = gridAbi) => {
    const hash = await writeContract(owner, {
      address: grid.grid,
      abi,
      functionName,
      args,
      account: owner.account,
      chain,
    } as unknown as Parameters<typeof writeContract>[1]);
    const receipt = await waitForTransactionReceipt(owner, { hash });
    if (receipt.status !== 'success') throw new Error(`${functionName} reverted`);
    return receipt;
  };
  // Announced with its full content, executable after the delay (and within the change window).
  await send('announceDiamondCut', [cut, zeroAddress, '0x']);
  const delay = Number(
    await readContract(owner, { address: grid.grid, abi: gridAbi, functionName: 'cutDelay' }),
  );
  await rpc(grid.rpcUrl, 'evm_increaseTime', [delay + 1]);
  await rpc(grid.rpcUrl, 'evm_mine');
  await send('diamondCut', [cut, zeroAddress, '0x']);
  return {
    slash: (bondOwner: Address, amount: bigint, role: 'worker' | 'validator' = 'worker') =>
      send('harnessSlash', [role === 'worker' ? 0 : 1, bondOwner, amount], harnessAbi),
  };
}

/** Reads server-sent events from a streaming response until `until` matches one (or the timeout). */
export async function readEvents(
  res: Response,
  until: (e: { event: string; data: unknown }) => boolean,
  timeoutMs = 10_000,
  onEvent?: (e: { event: string; data: unknown }) => void,
): Promise<{ event: string; data: unknown }[]> {
  const reader = res.body!.getReader();
  const decoder = new TextDecoder();
  const seen: { event: string; data: unknown }[] = [];
  let buffer = '';
  const deadline = Date.now() + timeoutMs;
  try {
    while (Date.now() < deadline) {
      const chunk = await Promise.race([
        reader.read(),
        new Promise<{ done: true; value: undefined }>((r) =>
          setTimeout(() => r({ done: true, value: undefined }), deadline - Date.now()),
        ),
      ]);
      if (chunk.done) break;
      buffer += decoder.decode(chunk.value, { stream: true });
      let end = buffer.indexOf('\n\n');
      while (end >= 0) {
        const block = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        end = buffer.indexOf('\n\n');
        const event = /^event: (.*)$/m.exec(block)?.[1];
        const data = /^data: (.*)$/m.exec(block)?.[1];
        if (!event || data === undefined) continue;
        const e = { event, data: JSON.parse(data) as unknown };
        seen.push(e);
        onEvent?.(e);
        if (until(e)) return seen;
      }
    }
    return seen;
  } finally {
    await reader.cancel().catch(() => {});
  }
}
