import { readFile } from 'node:fs/promises';
import { decryptKeystore } from '@aipg/chain';
import type { Hex } from 'viem';
import { DAEMON_ENV, type EnvReader } from './env.ts';
import type { Fail } from './parse.ts';

/** Where a daemon's operator key comes from: a raw key in the environment, or a keystore and its password. */
export type OperatorKeySource = {
  /** The raw key (0x + 64 hex digits; the 0x may be left out). */
  key?: string | undefined;
  /** The variable `key` was read from (named in errors; the value never is). Default AIPG_OPERATOR_KEY. */
  keyName?: string | undefined;
  keystore?: string | undefined;
  password?: string | undefined;
  /** A file holding the password (its one trailing newline dropped); wins over `password`. */
  passwordFile?: string | undefined;
};

/**
 * The key source of the environment and flags (`--keystore`, `--password-file` win over
 * AIPG_KEYSTORE, AIPG_KEYSTORE_PASSWORD_FILE).
 */
export function operatorKeySource(
  env: EnvReader,
  flags: { keystore?: string | undefined; passwordFile?: string | undefined } = {},
): OperatorKeySource {
  return {
    key: env.get(DAEMON_ENV.operatorKey),
    keyName: env.source(DAEMON_ENV.operatorKey),
    keystore: flags.keystore ?? env.get(DAEMON_ENV.keystore),
    password: env.get(DAEMON_ENV.keystorePassword),
    passwordFile: flags.passwordFile ?? env.get(DAEMON_ENV.keystorePasswordFile),
  };
}

/** A raw key, checked; the value itself is never echoed (it may be a slightly mistyped real key). */
export function parseOperatorKey(raw: string, keyName: string, fail: Fail): Hex {
  const key = raw.startsWith('0x') ? raw : `0x${raw}`;
  if (!/^0x[0-9a-fA-F]{64}$/.test(key)) throw fail(`${keyName} is not a 32-byte hex key`);
  return key as Hex;
}

/**
 * Loads the operator key: the raw key, or the keystore decrypted with its password. Exactly one of
 * the two must be given. Errors are one line each, through `fail`; a wrong password is the keystore's
 * own error (code KEYSTORE_WRONG_PASSWORD).
 */
export async function loadOperatorKey(source: OperatorKeySource, fail: Fail): Promise<Hex> {
  const keyName = source.keyName ?? DAEMON_ENV.operatorKey.name;
  const raw = source.key?.trim();
  if (raw && source.keystore) throw fail(`both ${keyName} and a keystore are set: use one`);
  if (raw) return parseOperatorKey(raw, keyName, fail);
  if (!source.keystore)
    throw fail(`no operator key: set ${DAEMON_ENV.operatorKey.name} or pass --keystore <file>`);
  let password = source.password;
  if (source.passwordFile) {
    try {
      password = (await readFile(source.passwordFile, 'utf8')).replace(/\r?\n$/, '');
    } catch (cause) {
      throw fail(`cannot read password file ${source.passwordFile}`, { cause });
    }
  }
  if (password === undefined)
    throw fail(
      `the keystore needs a password: set ${DAEMON_ENV.keystorePassword.name} or pass --password-file`,
    );
  let json: string;
  try {
    json = await readFile(source.keystore, 'utf8');
  } catch (cause) {
    throw fail(`cannot read keystore ${source.keystore}`, { cause, keystore: true });
  }
  return decryptKeystore(json, password);
}
