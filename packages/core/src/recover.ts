import { createRequire } from 'node:module';
import {
  type Address,
  getAddress,
  type Hex,
  hashTypedData,
  hexToBytes,
  keccak256,
  recoverTypedDataAddress,
  type TypedData,
  type TypedDataDefinition,
} from 'viem';

/** The one call of libsecp256k1 (the `secp256k1` package's native binding) this uses. */
type NativeSecp256k1 = {
  ecdsaRecover(sig64: Uint8Array, recid: number, msg32: Uint8Array, compressed: boolean): Uint8Array;
};

let native: NativeSecp256k1 | null | undefined;

/**
 * libsecp256k1 through the `secp256k1` package's prebuilt binding (~60 µs a recovery against ~1.5 ms
 * for the JS implementation viem uses), loaded once; null where no prebuild loads (then viem's).
 */
function secp256k1Native(): NativeSecp256k1 | null {
  if (native !== undefined) return native;
  try {
    native = createRequire(import.meta.url)('secp256k1/bindings') as NativeSecp256k1;
  } catch {
    native = null;
  }
  return native;
}

/** Tests: force the JS path (`false`) or the native one back (`true`, when it loads). */
export function useNativeSecp256k1(on: boolean): boolean {
  native = on ? undefined : null;
  return secp256k1Native() !== null;
}

/**
 * The address that signed EIP-712 `typedData` with `signature` (65 bytes, v 27/28 or 0/1): the same
 * answer as viem's `recoverTypedDataAddress`, from libsecp256k1 when its binding loads. Throws on a
 * malformed signature, like viem's.
 */
export async function recoverTypedDataSigner<
  const typedData extends TypedData | Record<string, unknown>,
  primaryType extends keyof typedData | 'EIP712Domain',
>(params: TypedDataDefinition<typedData, primaryType> & { signature: Hex }): Promise<Address> {
  const lib = secp256k1Native();
  const sig = params.signature;
  if (!lib || !/^0x[0-9a-fA-F]{130}$/.test(sig)) return recoverTypedDataAddress(params as never);
  const v = Number.parseInt(sig.slice(130, 132), 16);
  const recid = v >= 27 ? v - 27 : v;
  if (recid !== 0 && recid !== 1) return recoverTypedDataAddress(params as never);
  const digest = hashTypedData(params as never);
  const bytes = hexToBytes(sig);
  let publicKey: Uint8Array;
  try {
    publicKey = lib.ecdsaRecover(bytes.subarray(0, 64), recid, hexToBytes(digest), false);
  } catch {
    // Let viem say what is wrong with it (or disagree, which the tests would show).
    return recoverTypedDataAddress(params as never);
  }
  return getAddress(`0x${keccak256(publicKey.subarray(1)).slice(-40)}`);
}
