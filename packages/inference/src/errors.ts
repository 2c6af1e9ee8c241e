import { BaseError } from '@aipg/core';

/** The job's AbortSignal fired (client gone, worker shutting down); `cause` is the signal's reason. */
export class InferenceAbortedError extends BaseError {
  override name = 'InferenceAbortedError';
  constructor(cause?: unknown) {
    super('Inference was aborted', { code: 'INFERENCE_ABORTED', cause });
  }
}

/** Prompt plus `maxTokens` do not fit in a sequence's context window. */
export class ContextOverflowError extends BaseError {
  override name = 'ContextOverflowError';
  constructor(promptTokens: number, maxTokens: number, contextSize: number) {
    super('Prompt and maxTokens exceed the context window', {
      code: 'CONTEXT_OVERFLOW',
      details: `${promptTokens} prompt tokens + ${maxTokens} max tokens > context size ${contextSize}`,
    });
  }
}

export class EngineClosedError extends BaseError {
  override name = 'EngineClosedError';
  constructor() {
    super('The inference engine is closed', { code: 'ENGINE_CLOSED' });
  }
}

/** A model file is missing, unreadable, or not the weights it should be. */
export class ModelFileError extends BaseError {
  override name = 'ModelFileError';
  constructor(message: string, details?: string, cause?: unknown) {
    super(message, { code: 'MODEL_FILE', details, cause });
  }
}

export class InvalidTokenError extends BaseError {
  override name = 'InvalidTokenError';
  constructor(tokenId: number, vocabSize: number) {
    super('Token id outside the vocabulary', {
      code: 'INVALID_TOKEN',
      details: `token ${tokenId}, vocabulary size ${vocabSize}`,
    });
  }
}
