/**
 * One error base for the whole project (viem's pattern): a stable `code`, a one-line
 * `shortMessage` safe to show a user, optional `details`, and the `cause` chain.
 * Codes are documented in docs/errors.md and never reused for another meaning.
 */
export type BaseErrorParameters = {
  code: string;
  details?: string | undefined;
  cause?: unknown;
  /** Retrying the same operation later may succeed (RPC hiccup, no worker yet). */
  retryable?: boolean | undefined;
};

export class BaseError extends Error {
  override name = 'AipgError';
  readonly code: string;
  readonly shortMessage: string;
  readonly details: string | undefined;
  readonly retryable: boolean;

  constructor(shortMessage: string, { code, details, cause, retryable = false }: BaseErrorParameters) {
    super(
      details ? `${shortMessage}\n\nDetails: ${details}` : shortMessage,
      cause === undefined ? undefined : { cause },
    );
    this.code = code;
    this.shortMessage = shortMessage;
    this.details = details;
    this.retryable = retryable;
  }
}

export class InvalidInputError extends BaseError {
  override name = 'InvalidInputError';
  constructor(message: string, details?: string) {
    super(message, { code: 'INVALID_INPUT', details });
  }
}
