import {
  anvilTestAccounts,
  approveToken,
  bond,
  createGridClients,
  registerModel,
  requestUnbond,
  startDevChain,
} from '@aipg/chain';
import { parseAipg, type Receipt, receiptTypedData } from '@aipg/core';
import { type Address, type Hex, keccak256, numberToHex, pad, toHex, verifyTypedData } from 'viem';
import { privateKeyToAccount } from 'viem/accounts';
import type { BackendModel } from '../../../src/backends/types.ts';

/** `LibBonding.WORKER_SLOT`: the worker registry's ERC-7201 layout; `minimum` is its first word. */
const WORKER_BONDING_SLOT = '0xcb4c44771ecd80e9112a1db00c6f36b575558ddccb94f8708c7d906e79688b00';

/** The registry wants a tokenizer hash for every text model; fake backends have no tokenizer file. */
export const FAKE_TOKENIZER_HASH = keccak256(toHex('tokenizer'));

export const RATES = {
  inputPerMTokens: parseAipg('1'),
  outputPerMTokens: parseAipg('3'),
  perMegapixelStep: 0n,
};

/** anvil + the whole Grid (devnet deployment, test AIPG for all ten test accounts). */
export async function setupChain({ chainId }: { chainId?: number } = {}) {
  const dev = await startDevChain({ chainId });
  const { grid, token } = dev.deployment;
  const clientsFor = (i: number) =>
    createGridClients({
      rpcUrl: dev.anvil.rpcUrl,
      chainId: dev.anvil.chainId,
      account: privateKeyToAccount((anvilTestAccounts[i] as { privateKey: Hex }).privateKey),
    });
  const { publicClient } = createGridClients({ rpcUrl: dev.anvil.rpcUrl, chainId: dev.anvil.chainId });
  const owner = clientsFor(0).walletClient!;

  return {
    rpcUrl: dev.anvil.rpcUrl,
    chainId: dev.anvil.chainId,
    grid,
    deployment: dev.deployment,
    publicClient,
    account: (i: number) => anvilTestAccounts[i] as { address: Address; privateKey: Hex },
    /** Test account `i` bonds `amount` AIPG as a worker, naming `operator` (default: itself). */
    async bondWorker(i: number, amount = '1000', operator?: Address) {
      const wallet = clientsFor(i).walletClient!;
      await approveToken(wallet, { token, spender: grid, amount: parseAipg(amount) });
      await bond(wallet, { grid, role: 'worker', amount: parseAipg(amount), operator });
    },
    async unbondWorker(i: number, amount = '1000') {
      await requestUnbond(clientsFor(i).walletClient!, { grid, role: 'worker', amount: parseAipg(amount) });
    },
    /** Registers `model`; its `tokenizerHash` defaults to `FAKE_TOKENIZER_HASH`. */
    async registerModel(
      model: BackendModel & { tokenizerHash?: Hex; kind?: 'text' | 'image' },
      minVramMb = 0,
    ) {
      return registerModel(owner, {
        grid,
        name: model.name,
        kind: model.kind ?? 'text',
        weightsHash: model.weightsHash,
        tokenizerHash: model.tokenizerHash ?? FAKE_TOKENIZER_HASH,
        parameterCount: 1_000_000n,
        minVramMb,
        rates: model.kind === 'image' ? { ...RATES, perMegapixelStep: parseAipg('0.001') } : RATES,
      });
    },
    /** Governance raised the minimum: existing bonds fall below it (written straight into storage). */
    async setWorkerMinimum(amount: string) {
      await publicClient.request({
        method: 'anvil_setStorageAt' as never,
        params: [grid, WORKER_BONDING_SLOT, pad(numberToHex(parseAipg(amount)), { size: 32 })] as never,
      });
    },
    /** Whether `signature` is test account `i`'s EIP-712 signature of `receipt` for this Grid. */
    receiptSignedBy(i: number, receipt: Receipt, signature: Hex) {
      return verifyTypedData({
        address: (anvilTestAccounts[i] as { address: Address }).address,
        ...receiptTypedData(receipt, dev.anvil.chainId, grid),
        signature,
      });
    },
    stop: () => dev.stop(),
  };
}
export type TestChain = Awaited<ReturnType<typeof setupChain>>;
