/**
 * `@aipg/confidential`: the client side of AIPG's confidential tier. One line makes an OpenAI client's
 * chat completions end-to-end encrypted to an attested worker:
 *
 *     new OpenAI({ baseURL, apiKey, fetch: confidentialFetch({ anchors }) })
 *
 * See docs/confidential.md and this package's README.
 */
export { ConfidentialError, type ConfidentialErrorCode, type WorkerFailure } from './errors.ts';
export { type ConfidentialFetchOptions, confidentialFetch } from './fetch.ts';
