import { BaseError, parseAipg } from '@aipg/core';
import {
  ContractFunctionExecutionError,
  ContractFunctionRevertedError,
  encodeErrorResult,
  HttpRequestError,
} from 'viem';
import { describe, expect, test } from 'vitest';
import { ChainError, decodeRevert, toChainError } from './errors.ts';
import { gridAbi, testAipgAbi } from './generated/abis.ts';

describe('decodeRevert', () => {
  test('names the custom error and formats amounts in AIPG', () => {
    const data = encodeErrorResult({
      abi: gridAbi,
      errorName: 'BondTooLow',
      args: [parseAipg('500'), parseAipg('1000')],
    });
    expect(decodeRevert(data)).toEqual({
      errorName: 'BondTooLow',
      args: { bond: parseAipg('500'), minimum: parseAipg('1000') },
      message: 'BondTooLow(bond: 500 AIPG, minimum: 1,000 AIPG)',
    });
  });

  test('formats timestamps as UTC and decodes token errors', () => {
    const notReady = encodeErrorResult({
      abi: gridAbi,
      errorName: 'UnbondNotReady',
      args: [1_800_000_030n, 1_800_000_000n],
    });
    expect(decodeRevert(notReady)?.message).toBe(
      'UnbondNotReady(readyAt: 2027-01-15T08:00:30Z, nowTs: 2027-01-15T08:00:00Z)',
    );
    const allowance = encodeErrorResult({
      abi: testAipgAbi,
      errorName: 'ERC20InsufficientAllowance',
      args: ['0x70997970C51812dc3A010C7d01b50e0d17dc79C8', 0n, parseAipg('1.5')],
    });
    expect(decodeRevert(allowance)?.message).toBe(
      'ERC20InsufficientAllowance(spender: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8, allowance: 0 AIPG, needed: 1.5 AIPG)',
    );
  });

  test('unknown data is undefined', () => {
    expect(decodeRevert('0xdeadbeef')).toBeUndefined();
  });
});

describe('toChainError', () => {
  test('a revert inside a viem error becomes CONTRACT_REVERT with a hint', () => {
    const raw = encodeErrorResult({
      abi: gridAbi,
      errorName: 'NothingUnbonding',
      args: ['0x70997970C51812dc3A010C7d01b50e0d17dc79C8'],
    });
    const revert = new ContractFunctionRevertedError({
      abi: [],
      functionName: 'withdrawWorkerBond',
      data: raw,
    });
    const viemError = new ContractFunctionExecutionError(revert, {
      abi: [],
      functionName: 'withdrawWorkerBond',
    });
    const error = toChainError(viemError, 'withdraw worker bond');
    expect(error).toBeInstanceOf(ChainError);
    expect(error).toBeInstanceOf(BaseError);
    expect(error.code).toBe('CONTRACT_REVERT');
    expect(error.shortMessage).toBe('NothingUnbonding(owner: 0x70997970C51812dc3A010C7d01b50e0d17dc79C8)');
    expect(error.details).toBe(
      'withdraw worker bond reverted: nothing is unbonding: request an unbond first',
    );
    expect(error.cause).toBe(viemError);
  });

  test('unknown revert data keeps its selector; transport errors are retryable', () => {
    const revert = new ContractFunctionRevertedError({ abi: [], functionName: 'f', data: '0x12345678aa' });
    expect(toChainError(revert, 'f').shortMessage).toBe('f reverted with unknown error 0x12345678');
    const down = toChainError(new HttpRequestError({ url: 'http://127.0.0.1:1/' }), 'getBond');
    expect(down).toMatchObject({
      code: 'RPC_UNREACHABLE',
      retryable: true,
      shortMessage: 'cannot reach the RPC endpoint http://127.0.0.1:1',
    });
  });

  test('plain errors keep their first line; ChainErrors pass through', () => {
    expect(toChainError(new Error('boom\nstack'), 'deposit').shortMessage).toBe('deposit failed: boom');
    const same = new ChainError('x', { code: 'WRONG_CHAIN' });
    expect(toChainError(same, 'y')).toBe(same);
  });
});
