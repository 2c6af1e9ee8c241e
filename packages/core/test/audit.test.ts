import { readFileSync } from 'node:fs';
import { resolve } from 'node:path';
import { expect, test } from 'vitest';
import {
  AUDIT_VERDICTS,
  auditVerdictToUint,
  auditVoteToUint,
  verdictFromUint,
  voteFromUint,
} from '../src/index.ts';

/** The members of `enum name` in IAudit.sol, in order, lowercased. */
function solidityEnum(name: string): string[] {
  const source = readFileSync(
    resolve(import.meta.dirname, '../../../contracts/src/interfaces/IAudit.sol'),
    'utf8',
  );
  const body = new RegExp(`enum ${name} \\{([^}]*)\\}`).exec(source)?.[1];
  if (!body) throw new Error(`enum ${name} not found in IAudit.sol`);
  return body
    .replace(/\/\/[^\n]*/g, '')
    .split(',')
    .map((m) => m.trim().toLowerCase())
    .filter(Boolean);
}

test('the audit enums number their members as IAudit.sol does', () => {
  expect(solidityEnum('Verdict')).toEqual([...AUDIT_VERDICTS]);
  for (const [i, v] of AUDIT_VERDICTS.entries()) expect(auditVerdictToUint[v]).toBe(i);
  const votes = solidityEnum('Vote');
  expect(votes.indexOf('pass')).toBe(auditVoteToUint.pass);
  expect(votes.indexOf('fail')).toBe(auditVoteToUint.fail);
});

test('numbers read off the chain map back to their names; numbers the contract never emits are refused', () => {
  for (const v of AUDIT_VERDICTS) expect(verdictFromUint(auditVerdictToUint[v])).toBe(v);
  expect(verdictFromUint(2n)).toBe('fail');
  expect([voteFromUint(0), voteFromUint(auditVoteToUint.pass), voteFromUint(auditVoteToUint.fail)]).toEqual([
    'none',
    'pass',
    'fail',
  ]);
  expect(() => verdictFromUint(4)).toThrow(RangeError);
  expect(() => voteFromUint(3)).toThrow(RangeError);
});
