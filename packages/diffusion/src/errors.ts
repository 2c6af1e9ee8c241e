import { BaseError } from '@aipg/core';

/** A generated model file is missing, unreadable, or not the bytes its manifest or preset pins. */
export class ImageModelFileError extends BaseError {
  override name = 'ImageModelFileError';
  constructor(message: string, details?: string, cause?: unknown) {
    super(message, { code: 'IMAGE_MODEL_FILE', details, cause });
  }
}

/**
 * The job's AbortSignal fired between two denoising steps; `cause` is the signal's reason. Named
 * `AbortError`, as DOM aborts are, so callers that test `error.name` treat it as one.
 */
export class DiffusionAbortedError extends BaseError {
  override name = 'AbortError';
  constructor(cause?: unknown) {
    super('Image generation was aborted', { code: 'DIFFUSION_ABORTED', cause });
  }
}

export class PipelineClosedError extends BaseError {
  override name = 'PipelineClosedError';
  constructor() {
    super('The diffusion pipeline is closed', { code: 'PIPELINE_CLOSED' });
  }
}
