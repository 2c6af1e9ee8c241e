import {
  createCipheriv,
  createDecipheriv,
  pbkdf2,
  randomBytes,
  randomUUID,
  scrypt,
  timingSafeEqual,
} from 'node:crypto';
import { promisify } from 'node:util';
import { bytesToHex, getAddress, type Hex, hexToBytes, isHex, keccak256 } from 'viem';
import { privateKeyToAddress } from 'viem/accounts';
import { ChainError } from './errors.ts';

/** A Web3 Secret Storage (Ethereum V3 JSON) keystore, as geth, foundry (`cast wallet`) and MetaMask write it. */
export type KeystoreV3 = {
  version: 3;
  id?: string;
  address?: string;
  crypto: {
    cipher: 'aes-128-ctr';
    cipherparams: { iv: string };
    ciphertext: string;
    kdf: 'scrypt' | 'pbkdf2';
    kdfparams:
      | { dklen: number; n: number; r: number; p: number; salt: string }
      | { dklen: number; c: number; prf: 'hmac-sha256'; salt: string };
    mac: string;
  };
};

const scryptAsync = promisify(scrypt) as (
  password: Buffer,
  salt: Buffer,
  keylen: number,
  options: { N: number; r: number; p: number; maxmem: number },
) => Promise<Buffer>;
const pbkdf2Async = promisify(pbkdf2);

function invalid(reason: string): ChainError {
  return new ChainError(`invalid keystore: ${reason}`, { code: 'KEYSTORE_INVALID' });
}

function hexField(value: unknown, name: string): Buffer {
  if (typeof value !== 'string') throw invalid(`${name} is missing`);
  const hex = value.startsWith('0x') ? value.slice(2) : value;
  if (!/^([0-9a-fA-F]{2})+$/.test(hex)) throw invalid(`${name} is not hex`);
  return Buffer.from(hex, 'hex');
}

function positiveInt(value: unknown, name: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0)
    throw invalid(`${name} is not a positive integer`);
  return value;
}

async function deriveKey(crypto: Record<string, unknown>, password: string): Promise<Buffer> {
  const params = crypto.kdfparams as Record<string, unknown> | undefined;
  if (!params || typeof params !== 'object') throw invalid('kdfparams is missing');
  const salt = hexField(params.salt, 'kdfparams.salt');
  const dklen = positiveInt(params.dklen, 'kdfparams.dklen');
  if (dklen < 32) throw invalid('kdfparams.dklen must be at least 32');
  const secret = Buffer.from(password.normalize('NFKC'), 'utf8');
  if (crypto.kdf === 'scrypt') {
    const N = positiveInt(params.n, 'kdfparams.n');
    const r = positiveInt(params.r, 'kdfparams.r');
    const p = positiveInt(params.p, 'kdfparams.p');
    if ((N & (N - 1)) !== 0) throw invalid('kdfparams.n must be a power of two');
    // RFC 7914 requires N < 2^(128·r/8); OpenSSL enforces it. geth, foundry and MetaMask use r = 8.
    if (16 * r < 53 && N >= 2 ** (16 * r)) {
      throw new ChainError(
        `unsupported keystore scrypt parameters n=${N}, r=${r} (RFC 7914 needs n < 2^(16·r))`,
        {
          code: 'KEYSTORE_UNSUPPORTED',
        },
      );
    }
    // Node's default maxmem (32 MiB) is below geth's standard N=2^18, r=8 (256 MiB): allow what the file asks, capped.
    const needed = 128 * N * r * 2 + 1024 * 1024;
    if (needed > 2 ** 31)
      throw new ChainError('keystore scrypt parameters need more than 2 GiB', {
        code: 'KEYSTORE_UNSUPPORTED',
      });
    return scryptAsync(secret, salt, dklen, { N, r, p, maxmem: needed });
  }
  if (crypto.kdf === 'pbkdf2') {
    if (params.prf !== 'hmac-sha256') {
      throw new ChainError(`unsupported keystore pbkdf2 prf ${String(params.prf)}`, {
        code: 'KEYSTORE_UNSUPPORTED',
      });
    }
    return pbkdf2Async(secret, salt, positiveInt(params.c, 'kdfparams.c'), dklen, 'sha256');
  }
  throw new ChainError(`unsupported keystore kdf ${String(crypto.kdf)} (expected scrypt or pbkdf2)`, {
    code: 'KEYSTORE_UNSUPPORTED',
  });
}

/**
 * Decrypts a V3 keystore (scrypt or pbkdf2 + aes-128-ctr, MAC checked) into its private key.
 * Throws `ChainError` with code `KEYSTORE_WRONG_PASSWORD` when the MAC does not match,
 * `KEYSTORE_INVALID` for a malformed file, `KEYSTORE_UNSUPPORTED` for other ciphers / kdfs.
 */
export async function decryptKeystore(keystore: string | object, password: string): Promise<Hex> {
  let json: unknown = keystore;
  if (typeof keystore === 'string') {
    try {
      json = JSON.parse(keystore);
    } catch {
      throw invalid('not JSON');
    }
  }
  if (!json || typeof json !== 'object') throw invalid('not a JSON object');
  const file = json as Record<string, unknown>;
  if (file.version !== 3)
    throw new ChainError(`unsupported keystore version ${String(file.version)} (expected 3)`, {
      code: 'KEYSTORE_UNSUPPORTED',
    });
  // Some older tools write "Crypto".
  const crypto = (file.crypto ?? file.Crypto) as Record<string, unknown> | undefined;
  if (!crypto || typeof crypto !== 'object') throw invalid('crypto section is missing');
  if (crypto.cipher !== 'aes-128-ctr') {
    throw new ChainError(`unsupported keystore cipher ${String(crypto.cipher)} (expected aes-128-ctr)`, {
      code: 'KEYSTORE_UNSUPPORTED',
    });
  }
  const iv = hexField((crypto.cipherparams as Record<string, unknown> | undefined)?.iv, 'cipherparams.iv');
  if (iv.length !== 16) throw invalid('cipherparams.iv must be 16 bytes');
  const ciphertext = hexField(crypto.ciphertext, 'ciphertext');
  const mac = hexField(crypto.mac, 'mac');

  const derived = await deriveKey(crypto, password);
  const expected = Buffer.from(hexToBytes(keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext]))));
  if (mac.length !== expected.length || !timingSafeEqual(mac, expected)) {
    throw new ChainError('wrong keystore password', {
      code: 'KEYSTORE_WRONG_PASSWORD',
      details: 'the MAC does not match: the password is wrong or the file is corrupt',
    });
  }
  const decipher = createDecipheriv('aes-128-ctr', derived.subarray(0, 16), iv);
  const key = Buffer.concat([decipher.update(ciphertext), decipher.final()]);
  if (key.length !== 32) throw invalid('the decrypted key is not 32 bytes');
  const privateKey = bytesToHex(key);
  if (typeof file.address === 'string' && isHex(`0x${file.address.replace(/^0x/, '')}`)) {
    const address = privateKeyToAddress(privateKey);
    if (getAddress(`0x${file.address.replace(/^0x/, '')}`) !== address) {
      throw invalid(
        `the key belongs to ${address}, not to the file's address 0x${file.address.replace(/^0x/, '')}`,
      );
    }
  }
  return privateKey;
}

export type EncryptKeystoreParameters = {
  kdf?: 'scrypt' | 'pbkdf2';
  /** scrypt cost (default 2^18, geth's standard); lower only for tests. */
  n?: number;
  /** pbkdf2 iterations (default 262,144). */
  c?: number;
};

/** Encrypts a private key as a V3 keystore (scrypt by default), readable by geth, foundry and MetaMask. */
export async function encryptKeystore(
  privateKey: Hex,
  password: string,
  { kdf = 'scrypt', n = 2 ** 18, c = 262_144 }: EncryptKeystoreParameters = {},
): Promise<KeystoreV3> {
  const address = privateKeyToAddress(privateKey);
  const salt = randomBytes(32);
  const iv = randomBytes(16);
  const kdfparams =
    kdf === 'scrypt'
      ? { dklen: 32, n, r: 8, p: 1, salt: salt.toString('hex') }
      : { dklen: 32, c, prf: 'hmac-sha256' as const, salt: salt.toString('hex') };
  const derived = await deriveKey({ kdf, kdfparams }, password);
  const cipher = createCipheriv('aes-128-ctr', derived.subarray(0, 16), iv);
  const ciphertext = Buffer.concat([cipher.update(hexToBytes(privateKey)), cipher.final()]);
  const mac = keccak256(Buffer.concat([derived.subarray(16, 32), ciphertext])).slice(2);
  return {
    version: 3,
    id: randomUUID(),
    address: address.slice(2).toLowerCase(),
    crypto: {
      cipher: 'aes-128-ctr',
      cipherparams: { iv: iv.toString('hex') },
      ciphertext: ciphertext.toString('hex'),
      kdf,
      kdfparams,
      mac,
    },
  };
}
