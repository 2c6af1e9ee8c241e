import { describe, expect, test } from 'vitest';
import {
  createEnvReader,
  DAEMON_ENV,
  type EnvVar,
  type Fail,
  parseAddress,
  parseLogLevel,
  parsePort,
  parseRpcUrls,
} from '../src/index.ts';

const fail: Fail = (message) => new Error(message);
const GRID = '0x5FbDB2315678afecb367f032d93F642f64180aa3';

describe('the environment vocabulary', () => {
  test('one name per variable, no name used twice, current or deprecated', () => {
    const names = Object.values(DAEMON_ENV).flatMap((v: EnvVar) => [v.name, ...(v.deprecated ?? [])]);
    expect(new Set(names).size).toBe(names.length);
    for (const name of names) expect(name).toMatch(/^(AIPG_[A-Z0-9_]+|DATABASE_URL|OPENAI_API_KEY)$/);
  });

  test('reads the current name; unset and empty are the same', () => {
    const env = createEnvReader({ AIPG_GRID: ` ${GRID} `, AIPG_LOG_LEVEL: '' });
    expect(env.get(DAEMON_ENV.grid)).toBe(GRID);
    expect(env.source(DAEMON_ENV.grid)).toBe('AIPG_GRID');
    expect(env.get(DAEMON_ENV.logLevel)).toBeUndefined();
    expect(env.deprecations).toEqual([]);
  });

  test('reads a deprecated name when the current one is unset, with one line saying so', () => {
    const env = createEnvReader({ AIPG_GRID_ADDRESS: GRID, AIPG_VALIDATOR_DATA: '/var/lib/v' });
    expect(env.get(DAEMON_ENV.grid)).toBe(GRID);
    expect(env.get(DAEMON_ENV.grid)).toBe(GRID);
    expect(env.source(DAEMON_ENV.grid)).toBe('AIPG_GRID_ADDRESS');
    expect(env.get(DAEMON_ENV.dataDir)).toBe('/var/lib/v');
    expect(env.deprecations).toEqual([
      'AIPG_GRID_ADDRESS is deprecated: rename it AIPG_GRID',
      'AIPG_VALIDATOR_DATA is deprecated: rename it AIPG_DATA_DIR',
    ]);
  });

  test('the current name wins over a deprecated one, which is reported as ignored', () => {
    const env = createEnvReader({ AIPG_OPERATOR_KEY: '0x01', AIPG_GATEWAY_PRIVATE_KEY: '0x02' });
    expect(env.get(DAEMON_ENV.operatorKey)).toBe('0x01');
    expect(env.deprecations).toEqual([
      'AIPG_GATEWAY_PRIVATE_KEY is deprecated and ignored: AIPG_OPERATOR_KEY is set (remove AIPG_GATEWAY_PRIVATE_KEY)',
    ]);
  });
});

describe('parsers name the setting and the value, in one line', () => {
  test('log level', () => {
    expect(parseLogLevel('debug', 'AIPG_LOG_LEVEL', fail)).toBe('debug');
    expect(() => parseLogLevel('loud', 'AIPG_LOG_LEVEL', fail)).toThrow(
      'AIPG_LOG_LEVEL loud is not one of fatal, error, warn, info, debug, trace, silent',
    );
  });

  test('port', () => {
    expect(parsePort('9464', 'AIPG_METRICS_PORT', fail)).toBe(9464);
    expect(parsePort(0, '--metrics-port', fail)).toBe(0);
    for (const bad of ['-1', '65536', '9x', '1.5', ''])
      expect(() => parsePort(bad, 'AIPG_METRICS_PORT', fail)).toThrow(
        `AIPG_METRICS_PORT ${bad} must be an integer from 0 to 65535`,
      );
  });

  test('RPC URLs: one or several, comma-separated', () => {
    expect(parseRpcUrls('http://a:8545', 'AIPG_RPC_URL', fail)).toEqual(['http://a:8545']);
    expect(parseRpcUrls(' https://a , wss://b ,', 'AIPG_RPC_URL', fail)).toEqual(['https://a', 'wss://b']);
    expect(() => parseRpcUrls('localhost:8545', 'AIPG_RPC_URL', fail)).toThrow(
      'AIPG_RPC_URL localhost:8545: use http://, https://, ws:// or wss://',
    );
    expect(() => parseRpcUrls('http://a, nope', '--rpc-url', fail)).toThrow('--rpc-url nope is not a URL');
    expect(() => parseRpcUrls(' , ', 'AIPG_RPC_URL', fail)).toThrow('AIPG_RPC_URL is empty');
  });

  test('address', () => {
    expect(parseAddress(GRID.toLowerCase(), 'AIPG_GRID', fail)).toBe(GRID);
    expect(() => parseAddress('0x1234', 'AIPG_GRID_ADDRESS', fail)).toThrow(
      'AIPG_GRID_ADDRESS 0x1234 is not an address',
    );
  });
});
