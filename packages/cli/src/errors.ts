import { BaseError } from '@aipg/core';

/**
 * Stable codes of the CLI (never reused for another meaning):
 * - `USAGE`: unknown command or option, missing or extra arguments.
 * - `CONFIG`: missing or malformed key, keystore password, deployment, RPC URL.
 * - `PRECONDITION`: the chain state makes the command pointless or doomed (below the minimum,
 *   too little AIPG or allowance, nothing to withdraw yet) — caught before sending a transaction.
 * - `GATEWAY`: a gateway's API refused a request or could not be reached (`aipg chat`).
 * - `CONFIDENTIAL`: the client refused a confidential request: no worker's TEE evidence verified
 *   (nothing was sent), or the encrypted answer did not open as the protocol says.
 */
export type CliErrorCode = 'USAGE' | 'CONFIG' | 'PRECONDITION' | 'GATEWAY' | 'CONFIDENTIAL';

export class CliError extends BaseError {
  override name = 'CliError';
  declare readonly code: CliErrorCode;

  constructor(shortMessage: string, code: CliErrorCode, details?: string) {
    super(shortMessage, { code, details });
  }
}
