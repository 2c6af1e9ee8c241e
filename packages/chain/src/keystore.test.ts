import { privateKeyToAddress } from 'viem/accounts';
import { describe, expect, test } from 'vitest';
import { ChainError } from './errors.ts';
import { decryptKeystore, encryptKeystore } from './keystore.ts';

// The test vectors of the Web3 Secret Storage Definition (ethereum.org): password "testpassword".
const vectorKey = '0x7a28b5ba57c53603b0b07b56bba752f7784bf506fa95edc395f5cf6c7514fe9d';
const pbkdf2Vector = {
  crypto: {
    cipher: 'aes-128-ctr',
    cipherparams: { iv: '6087dab2f9fdbbfaddc31a909735c1e6' },
    ciphertext: '5318b4d5bcd28de64ee5559e671353e16f075ecae9f99c7a79a38af5f869aa46',
    kdf: 'pbkdf2',
    kdfparams: {
      c: 262144,
      dklen: 32,
      prf: 'hmac-sha256',
      salt: 'ae3cd4e7013836a3df6bd7241b12db061dbe2c6785853cce422d148a624ce0bd',
    },
    mac: '517ead924a9d0dc3124507e3393d175ce3ff7c1e96529c6c555ce9e51205e9b2',
  },
  id: '3198bc9c-6672-5ab3-d995-4942343ae5b6',
  version: 3,
};
const scryptVector = {
  crypto: {
    cipher: 'aes-128-ctr',
    cipherparams: { iv: '83dbcc02d8ccb40e466191a123791e0e' },
    ciphertext: 'd172bf743a674da9cdad04534d56926ef8358534d458fffccd4e6ad2fbde479c',
    kdf: 'scrypt',
    kdfparams: {
      dklen: 32,
      n: 262144,
      p: 8,
      r: 1,
      salt: 'ab0c7876052600dd703518d6fc3fe8984592145b591fc8fb5c6d43190334ba19',
    },
    mac: '2103ac29920d71da29f15d75b4a16dbe95cfd7ff8faea1056c33131d846e3097',
  },
  id: '3198bc9c-6672-5ab3-d995-4942343ae5b6',
  version: 3,
};

async function keystoreError(promise: Promise<unknown>): Promise<ChainError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(ChainError);
  return error as ChainError;
}

describe('decryptKeystore', () => {
  test('decrypts the standard pbkdf2 vector', async () => {
    expect(await decryptKeystore(JSON.stringify(pbkdf2Vector), 'testpassword')).toBe(vectorKey);
  });

  test('the standard scrypt vector (r = 1) is refused clearly: RFC 7914 needs n < 2^(16·r)', async () => {
    // geth, foundry and MetaMask write r = 8, which the round-trip test below covers.
    const error = await keystoreError(decryptKeystore(scryptVector, 'testpassword'));
    expect(error.code).toBe('KEYSTORE_UNSUPPORTED');
    expect(error.shortMessage).toBe(
      'unsupported keystore scrypt parameters n=262144, r=1 (RFC 7914 needs n < 2^(16·r))',
    );
  });

  test('decrypts a geth-style scrypt keystore (n = 2^18, r = 8, p = 1)', async () => {
    const key = '0x5de4111afa1a4b94908f83103eb1f1706367c2e68ca870fc3fb9a804cdab365a';
    const keystore = await encryptKeystore(key, 'testpassword');
    expect(keystore.crypto.kdfparams).toMatchObject({ n: 262144, r: 8, p: 1, dklen: 32 });
    expect(await decryptKeystore(keystore, 'testpassword')).toBe(key);
  });

  test('a wrong password fails the MAC check', async () => {
    const error = await keystoreError(decryptKeystore(pbkdf2Vector, 'wrong'));
    expect(error.code).toBe('KEYSTORE_WRONG_PASSWORD');
    expect(error.shortMessage).toBe('wrong keystore password');
  });

  test('a tampered ciphertext fails the MAC check', async () => {
    const tampered = structuredClone(pbkdf2Vector);
    tampered.crypto.ciphertext = `00${tampered.crypto.ciphertext.slice(2)}`;
    expect((await keystoreError(decryptKeystore(tampered, 'testpassword'))).code).toBe(
      'KEYSTORE_WRONG_PASSWORD',
    );
  });

  test('malformed and unsupported files are told apart', async () => {
    expect((await keystoreError(decryptKeystore('{not json', 'x'))).shortMessage).toBe(
      'invalid keystore: not JSON',
    );
    expect((await keystoreError(decryptKeystore({ ...pbkdf2Vector, version: 1 }, 'x'))).code).toBe(
      'KEYSTORE_UNSUPPORTED',
    );
    const cipher = structuredClone(pbkdf2Vector);
    cipher.crypto.cipher = 'aes-128-cbc';
    expect((await keystoreError(decryptKeystore(cipher, 'x'))).shortMessage).toBe(
      'unsupported keystore cipher aes-128-cbc (expected aes-128-ctr)',
    );
    const noMac = structuredClone(pbkdf2Vector) as { crypto: Partial<typeof pbkdf2Vector.crypto> };
    delete noMac.crypto.mac;
    expect((await keystoreError(decryptKeystore(noMac, 'x'))).shortMessage).toBe(
      'invalid keystore: mac is missing',
    );
    const kdf = structuredClone(pbkdf2Vector);
    kdf.crypto.kdf = 'argon2';
    expect((await keystoreError(decryptKeystore(kdf, 'x'))).code).toBe('KEYSTORE_UNSUPPORTED');
  });

  test('round-trips with encryptKeystore (scrypt and pbkdf2) and checks the address', async () => {
    const key = '0x59c6995e998f97a5a0044966f0945389dc9e86dae88c7a8412f4603b6b78690d';
    const scrypt = await encryptKeystore(key, 'hunter2', { n: 2 ** 10 });
    expect(scrypt.address).toBe(privateKeyToAddress(key).slice(2).toLowerCase());
    expect(await decryptKeystore(scrypt, 'hunter2')).toBe(key);
    const pbkdf2 = await encryptKeystore(key, 'hunter2', { kdf: 'pbkdf2', c: 1_000 });
    expect(await decryptKeystore(JSON.stringify(pbkdf2), 'hunter2')).toBe(key);
    expect(JSON.stringify(pbkdf2)).not.toContain(key.slice(2));

    const wrongAddress = { ...scrypt, address: 'f39fd6e51aad88f6f4ce6ab8827279cfffb92266' };
    expect((await keystoreError(decryptKeystore(wrongAddress, 'hunter2'))).shortMessage).toMatch(
      /^invalid keystore: the key belongs to 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, not to the file's address/,
    );
  });
});
