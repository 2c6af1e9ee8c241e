import { createRequire } from 'node:module';
import {
  type Address,
  bytesToHex,
  getAddress,
  type Hex,
  hashTypedData,
  hexToBytes,
  recoverAddress,
  type TypedData,
  type TypedDataDefinition,
} from 'viem';
import { sign } from 'viem/accounts';
import { keccak256Bytes } from './keccak.ts';
import { type Receipt, receiptDigestBytes, receiptTypes } from './receipt.ts';

/** The calls of libsecp256k1 (the `secp256k1` package's native binding) this uses. */
type NativeSecp256k1 = {
  ecdsaRecover(sig64: Uint8Array, recid: number, msg32: Uint8Array, compressed: boolean): Uint8Array;
  ecdsaSign(msg32: Uint8Array, privateKey: Uint8Array): { signature: Uint8Array; recid: number };
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

const SIGNATURE = /^0x[0-9a-fA-F]{130}$/;

/**
 * The address whose key signed the 32-byte `digest` with `signature`: viem's `recoverAddress`
 * answer, from libsecp256k1 when its binding loads. Whatever the binding does not take (another
 * length, a `v` not 0/1/27/28, a signature it cannot parse or recover) goes to viem, which answers or
 * throws as it always has.
 */
async function recoverDigestSigner(digest: Uint8Array, signature: Hex): Promise<Address> {
  const lib = secp256k1Native();
  if (!lib || !SIGNATURE.test(signature)) return recoverAddress({ hash: digest, signature });
  const v = Number.parseInt(signature.slice(130, 132), 16);
  const recid = v >= 27 ? v - 27 : v;
  if (recid !== 0 && recid !== 1) return recoverAddress({ hash: digest, signature });
  let publicKey: Uint8Array;
  try {
    publicKey = lib.ecdsaRecover(hexToBytes(signature).subarray(0, 64), recid, digest, false);
  } catch {
    // Let viem say what is wrong with it (or disagree, which the tests would show).
    return recoverAddress({ hash: digest, signature });
  }
  return getAddress(`0x${bytesToHex(keccak256Bytes(publicKey.subarray(1))).slice(-40)}`);
}

/** True when typed data is exactly what `receiptTypedData` builds (so `receiptDigest` hashes it). */
function isReceiptTypedData(params: { domain?: unknown; types?: unknown; primaryType?: unknown }): boolean {
  if (params.types !== receiptTypes || params.primaryType !== 'Receipt') return false;
  const d = params.domain as Record<string, unknown> | undefined;
  return (
    d !== undefined &&
    d !== null &&
    Object.keys(d).length === 4 &&
    d.name === 'AIPG Grid' &&
    d.version === '1' &&
    typeof d.chainId === 'number' &&
    typeof d.verifyingContract === 'string'
  );
}

/**
 * The address that signed EIP-712 `typedData` with `signature` (65 bytes, v 27/28 or 0/1): the same
 * answer as viem's `recoverTypedDataAddress`, from libsecp256k1 when its binding loads. Throws on a
 * malformed signature, like viem's. Receipts (`receiptTypedData`) are hashed by `receiptDigest`.
 */
export async function recoverTypedDataSigner<
  const typedData extends TypedData | Record<string, unknown>,
  primaryType extends keyof typedData | 'EIP712Domain',
>(params: TypedDataDefinition<typedData, primaryType> & { signature: Hex }): Promise<Address> {
  if (isReceiptTypedData(params)) {
    const { chainId, verifyingContract } = params.domain as { chainId: number; verifyingContract: Address };
    return recoverReceiptSigner(params.message as Receipt, chainId, verifyingContract, params.signature);
  }
  return recoverDigestSigner(hexToBytes(hashTypedData(params as never)), params.signature);
}

/**
 * The address that signed `receipt` (EIP-712, `receiptTypedData(receipt, chainId, grid)`) with
 * `signature`: `recoverTypedDataSigner`'s answer, over `receiptDigest`. Throws on a malformed
 * signature, like viem's, and on a receipt that does not encode.
 */
export function recoverReceiptSigner(
  receipt: Receipt,
  chainId: number,
  grid: Address,
  signature: Hex,
): Promise<Address> {
  let digest: Uint8Array;
  try {
    digest = receiptDigestBytes(receipt, chainId, grid);
  } catch (error) {
    return Promise.reject(error);
  }
  return recoverDigestSigner(digest, signature);
}

/** A private key as 32 bytes (hex `0x` + 64 digits, or bytes). */
function keyBytes(privateKey: Hex | Uint8Array): Uint8Array {
  if (privateKey instanceof Uint8Array) {
    if (privateKey.length !== 32) throw new RangeError('a private key is 32 bytes');
    return privateKey;
  }
  if (!/^0x[0-9a-fA-F]{64}$/.test(privateKey)) throw new RangeError('a private key is 0x and 64 hex digits');
  return hexToBytes(privateKey);
}

/**
 * Signs a 32-byte digest (e.g. `receiptDigest`) with `privateKey`: the 65-byte `r ‖ s ‖ v` hex
 * signature (low s, v 27 + recovery id) that viem's `sign({ hash, privateKey, to: 'hex' })` (hence
 * `account.signTypedData`) returns, byte for byte: both sign deterministically (RFC 6979). From
 * libsecp256k1 when its binding loads (~50 µs against ~1 ms), else viem's (@noble/curves).
 */
export async function signReceiptDigest(
  privateKey: Hex | Uint8Array,
  digest: Hex | Uint8Array,
): Promise<Hex> {
  const hash = typeof digest === 'string' ? hexToBytes(digest) : digest;
  if (hash.length !== 32) throw new RangeError('a digest is 32 bytes');
  const key = keyBytes(privateKey);
  const lib = secp256k1Native();
  if (!lib) return sign({ hash: bytesToHex(hash), privateKey: bytesToHex(key), to: 'hex' });
  const { signature, recid } = lib.ecdsaSign(hash, key);
  // viem writes v 28 for any non-zero recovery id (2 and 3 cannot occur in practice).
  return `${bytesToHex(signature)}${recid === 0 ? '1b' : '1c'}`;
}
