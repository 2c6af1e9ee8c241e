import { type BondRole, isBondRole } from '@aipg/chain';
import { CliError } from './errors.ts';

export function parseRole(value: string | undefined): BondRole {
  if (!isBondRole(value)) {
    throw new CliError(`expected worker or validator, got "${value ?? ''}"`, 'USAGE');
  }
  return value;
}
