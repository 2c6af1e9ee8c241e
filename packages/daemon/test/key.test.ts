import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { anvilTestAccounts, encryptKeystore } from '@aipg/chain';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import { createEnvReader, type Fail, loadOperatorKey, operatorKeySource } from '../src/index.ts';

const KEY = anvilTestAccounts[3].privateKey;
const fail: Fail = (message, options) =>
  Object.assign(new Error(message), { keystore: options?.keystore ?? false });

let dir: string;
let keystore: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'aipg-daemon-key-'));
  keystore = join(dir, 'operator.json');
  await writeFile(keystore, JSON.stringify(await encryptKeystore(KEY, 'correct horse', { n: 1024 })));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function errorOf(p: Promise<unknown>): Promise<Error & { keystore?: boolean; code?: string }> {
  try {
    await p;
  } catch (error) {
    return error as Error;
  }
  throw new Error('expected a rejection');
}

describe('loadOperatorKey', () => {
  test('a raw key, with or without 0x', async () => {
    expect(await loadOperatorKey({ key: KEY }, fail)).toBe(KEY);
    expect(await loadOperatorKey({ key: KEY.slice(2) }, fail)).toBe(KEY);
  });

  test('a keystore, with the password from the environment or a file (the file wins)', async () => {
    const env = createEnvReader({ AIPG_KEYSTORE: keystore, AIPG_KEYSTORE_PASSWORD: 'correct horse' });
    expect(await loadOperatorKey(operatorKeySource(env), fail)).toBe(KEY);
    const passwordFile = join(dir, 'password.txt');
    await writeFile(passwordFile, 'correct horse\n');
    const fromFile = createEnvReader({
      AIPG_KEYSTORE_PASSWORD: 'wrong',
      AIPG_KEYSTORE_PASSWORD_FILE: passwordFile,
    });
    expect(await loadOperatorKey(operatorKeySource(fromFile, { keystore }), fail)).toBe(KEY);
    const wrong = await errorOf(loadOperatorKey({ keystore, password: 'nope' }, fail));
    expect(wrong.code).toBe('KEYSTORE_WRONG_PASSWORD');
  });

  test('the key read from a deprecated name is named by that name', async () => {
    const env = createEnvReader({ AIPG_GATEWAY_PRIVATE_KEY: '0x12' });
    const error = await errorOf(loadOperatorKey(operatorKeySource(env), fail));
    expect(error.message).toBe('AIPG_GATEWAY_PRIVATE_KEY is not a 32-byte hex key');
  });

  test.each([
    [{}, 'no operator key: set AIPG_OPERATOR_KEY or pass --keystore <file>'],
    [{ key: '0x1234' }, 'AIPG_OPERATOR_KEY is not a 32-byte hex key'],
    [{ key: KEY, keystore: '/k.json' }, 'both AIPG_OPERATOR_KEY and a keystore are set: use one'],
    [
      { keystore: '/k.json' },
      'the keystore needs a password: set AIPG_KEYSTORE_PASSWORD or pass --password-file',
    ],
    [{ keystore: '/k.json', passwordFile: '/nonexistent/pw' }, 'cannot read password file /nonexistent/pw'],
    [{ keystore: '/nonexistent/k.json', password: 'pw' }, 'cannot read keystore /nonexistent/k.json'],
  ])('refuses %j with one line', async (source, message) => {
    const error = await errorOf(loadOperatorKey(source, fail));
    expect(error.message).toBe(message);
    expect(error.keystore).toBe(message.startsWith('cannot read keystore'));
  });

  test('never echoes a key, even a mistyped one', async () => {
    const almost = `${KEY.slice(0, -1)}z`;
    const error = await errorOf(loadOperatorKey({ key: almost }, fail));
    expect(error.message).not.toContain(almost.slice(2, 20));
  });
});
