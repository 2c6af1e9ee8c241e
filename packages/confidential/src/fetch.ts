/**
 * `confidentialFetch`: a `fetch` for OpenAI-compatible clients that makes every chat completion
 * confidential (docs/confidential.md). Before the first request for a model it challenges the gateway
 * (`GET …/attestation?model&nonce`) with a fresh nonce, verifies the listed workers' TEE evidence itself,
 * under its own trust anchors, and seals the request to a verified worker's key. Nothing is sent when no
 * worker verifies. Answers are opened chunk by chunk; anything out of order, truncated or tampered with
 * is an error.
 */
import { randomBytes } from 'node:crypto';
import {
  AttestationError,
  PRODUCTION_ANCHORS,
  requestAad,
  sealRequest,
  type TeePolicy,
  type TrustAnchors,
  type VerifiedEvidence,
  verifyEvidence,
} from '@aipg/tee';
import { type Address, getAddress, type Hex, isAddress, toHex } from 'viem';
import { ConfidentialError, type WorkerFailure } from './errors.ts';
import { openChoices, openEventStream } from './stream.ts';

/** Options of `confidentialFetch`. */
export type ConfidentialFetchOptions = {
  /** What evidence must verify under (default `PRODUCTION_ANCHORS`: Intel's root, NRAS's keys). */
  anchors?: TrustAnchors;
  /** Evidence policy beyond the anchors (default `DEFAULT_POLICY`: UpToDate, no debug, 1 h). */
  policy?: Partial<TeePolicy>;
  /** The fetch underneath (default `globalThis.fetch`). */
  fetch?: typeof fetch;
  /** Re-challenge a model's worker after this many seconds (default 300; never past its evidence's expiry). */
  cacheSeconds?: number;
  /** Called with each freshly verified evidence and the worker it was chosen for. */
  onAttested?: (v: VerifiedEvidence & { worker: Address }) => void;
};

/** Request fields sent in clear: routing, fee reservation and the envelope. Everything else is sealed. */
const CLEAR_FIELDS = ['model', 'stream', 'max_tokens', 'max_completion_tokens', 'stream_options'] as const;
const ENVELOPE_FIELDS = ['confidential', 'encrypted'] as const;

type Pinned = { worker: Address; digest: Hex; hpkePublicKey: string; until: number };
type Json = Record<string, unknown>;

function describeFailures(failures: readonly WorkerFailure[]): string {
  return failures.map((f) => `${f.worker}: ${f.code}`).join('; ');
}

function withoutBodyHeaders(source: Headers): Headers {
  const headers = new Headers(source);
  for (const h of ['content-length', 'content-type', 'content-encoding', 'transfer-encoding'])
    headers.delete(h);
  return headers;
}

function responseHeaders(source: Headers): Headers {
  const headers = new Headers(source);
  for (const h of ['content-length', 'content-encoding', 'transfer-encoding']) headers.delete(h);
  return headers;
}

async function isWorkerUnavailable(response: Response): Promise<boolean> {
  if (response.status !== 409 && response.status !== 503) return false;
  try {
    const body = (await response.clone().json()) as { error?: { code?: unknown } };
    return body?.error?.code === 'worker_unavailable';
  } catch {
    return false;
  }
}

/**
 * A `fetch` that makes OpenAI chat completions confidential; every other request passes through unchanged.
 *
 *     const openai = new OpenAI({ baseURL, apiKey, fetch: confidentialFetch({ anchors }) });
 *
 * A POST whose path ends with `/chat/completions` is sealed to a worker whose evidence this client
 * verified (its own nonce, its own anchors). Throws `ConfidentialError` ('no_attested_worker',
 * 'verification_failed') before sending anything when no worker verifies, and errors the answer
 * ('decrypt_failed', 'bad_response', 'plaintext_refused') when it does not open as the protocol says.
 * Non-2xx answers (the gateway's OpenAI-shaped errors) are returned untouched.
 */
export function confidentialFetch(options: ConfidentialFetchOptions = {}): typeof fetch {
  const anchors = options.anchors ?? PRODUCTION_ANCHORS;
  const baseFetch = options.fetch ?? globalThis.fetch;
  const cacheMs = (options.cacheSeconds ?? 300) * 1000;
  const cache = new Map<string, Pinned>();

  /** Challenges the gateway for the model's workers and pins the first whose evidence verifies. */
  async function challenge(
    base: string,
    model: string,
    headers: Headers,
    signal: AbortSignal,
  ): Promise<Pinned | Response> {
    const nonce = toHex(randomBytes(32));
    const url = new URL(`${base}/attestation`);
    url.searchParams.set('model', model);
    url.searchParams.set('nonce', nonce);
    const attestationHeaders = new Headers(headers);
    attestationHeaders.set('accept', 'application/json');
    const response = await baseFetch(url, { method: 'GET', headers: attestationHeaders, signal });
    if (!response.ok) return response; // the gateway's error (auth, unknown model): the client raises it
    let listing: Json;
    try {
      listing = (await response.json()) as Json;
    } catch {
      throw new ConfidentialError('bad_response', 'the attestation listing is not JSON');
    }
    const data = Array.isArray(listing?.data) ? (listing.data as unknown[]) : undefined;
    if (!data) throw new ConfidentialError('bad_response', 'the attestation listing has no data');
    if (data.length === 0) {
      throw new ConfidentialError('no_attested_worker', `the gateway lists no attested worker for ${model}`);
    }
    const failures: WorkerFailure[] = [];
    for (const item of data) {
      const entry = (typeof item === 'object' && item !== null ? item : {}) as Json;
      const worker = typeof entry.worker === 'string' ? entry.worker : '(unnamed)';
      if (!isAddress(worker, { strict: false })) {
        failures.push({ worker, code: 'malformed', message: 'no worker address' });
        continue;
      }
      let verified: VerifiedEvidence;
      try {
        verified = await verifyEvidence(entry.evidence, {
          anchors,
          ...(options.policy ? { policy: options.policy } : {}),
          expectedNonce: nonce,
        });
      } catch (e) {
        if (!(e instanceof AttestationError)) throw e;
        failures.push({ worker, code: e.code, message: e.message });
        continue;
      }
      if (typeof entry.signer !== 'string' || entry.signer.toLowerCase() !== verified.signer.toLowerCase()) {
        failures.push({
          worker,
          code: 'signer_mismatch',
          message: 'the listed signer is not the attested one',
        });
        continue;
      }
      const address = getAddress(worker);
      options.onAttested?.({ ...verified, worker: address });
      return {
        worker: address,
        digest: verified.digest,
        hpkePublicKey: verified.hpkePublicKey,
        until: Math.min(Date.now() + cacheMs, verified.expiresAt * 1000),
      };
    }
    throw new ConfidentialError(
      'verification_failed',
      `no worker for ${model} presents valid evidence (${describeFailures(failures)})`,
      { failures },
    );
  }

  async function confidentialChat(request: Request): Promise<Response> {
    let body: Json;
    try {
      body = JSON.parse(await request.text()) as Json;
    } catch {
      body = {};
    }
    const model = body?.model;
    if (typeof body !== 'object' || body === null || Array.isArray(body) || typeof model !== 'string') {
      throw new ConfidentialError(
        'plaintext_refused',
        'the request is not a JSON chat completion; not sending it',
      );
    }
    const stream = body.stream === true;
    const sealed: Json = { ...body };
    const clear: Json = { model, stream };
    for (const f of CLEAR_FIELDS) {
      if (f !== 'model' && f !== 'stream' && body[f] !== undefined) clear[f] = body[f];
      delete sealed[f];
    }
    for (const f of ENVELOPE_FIELDS) delete sealed[f];
    const plaintext = new TextEncoder().encode(JSON.stringify(sealed));

    const url = new URL(request.url);
    const base = `${url.origin}${url.pathname.slice(0, -'/chat/completions'.length)}`;
    const key = `${base}|${model}`;
    const headers = withoutBodyHeaders(request.headers);

    for (let attempt = 0; ; attempt++) {
      let pinned = cache.get(key);
      if (!pinned || pinned.until <= Date.now()) {
        cache.delete(key);
        const challenged = await challenge(base, model, headers, request.signal);
        if (challenged instanceof Response) return challenged;
        pinned = challenged;
        cache.set(key, pinned);
      }
      const { enc, ciphertext, responseKey } = await sealRequest({
        publicKey: pinned.hpkePublicKey,
        digest: pinned.digest,
        aad: requestAad(model, pinned.worker, stream),
        plaintext,
      });
      const outer = {
        ...clear,
        confidential: true,
        encrypted: {
          worker: pinned.worker,
          attestation: pinned.digest,
          enc: Buffer.from(enc).toString('base64'),
          ciphertext: Buffer.from(ciphertext).toString('base64'),
        },
      };
      const postHeaders = new Headers(headers);
      postHeaders.set('content-type', 'application/json');
      const response = await baseFetch(url, {
        method: 'POST',
        headers: postHeaders,
        body: JSON.stringify(outer),
        signal: request.signal,
      });
      if (!response.ok) {
        if (await isWorkerUnavailable(response)) {
          cache.delete(key);
          if (attempt === 0) {
            await response.body?.cancel();
            continue; // the pinned worker is gone: challenge again, once
          }
        }
        return response;
      }
      return stream ? openStream(response, responseKey) : openCompletion(response, responseKey);
    }
  }

  return async function confidentialFetchImpl(input: string | URL | Request, init?: RequestInit) {
    const method = (init?.method ?? (input instanceof Request ? input.method : 'GET')).toUpperCase();
    let path: string;
    try {
      path = new URL(input instanceof Request ? input.url : String(input)).pathname;
    } catch {
      return baseFetch(input, init);
    }
    if (method !== 'POST' || !path.replace(/\/+$/, '').endsWith('/chat/completions'))
      return baseFetch(input, init);
    const request = new Request(input, { ...init, ...(init?.body ? { duplex: 'half' } : {}) } as RequestInit);
    return confidentialChat(request);
  } as typeof fetch;
}

async function openCompletion(response: Response, responseKey: Uint8Array): Promise<Response> {
  let body: Json;
  try {
    body = (await response.json()) as Json;
  } catch {
    throw new ConfidentialError('bad_response', 'the answer is not JSON');
  }
  if (typeof body !== 'object' || body === null || !('encrypted' in body)) {
    const plain = Array.isArray(body?.choices) && body.choices.length > 0;
    throw new ConfidentialError(
      plain ? 'plaintext_refused' : 'bad_response',
      plain ? 'the answer is not encrypted' : 'the answer has no encrypted chunk',
    );
  }
  const encrypted = body.encrypted as Json | null;
  if (encrypted?.final !== true)
    throw new ConfidentialError('bad_response', 'a non-streamed answer is one final chunk');
  const choices = openChoices(responseKey, encrypted, 0);
  const { encrypted: _sealed, ...rest } = body;
  return new Response(JSON.stringify({ ...rest, choices }), {
    status: response.status,
    statusText: response.statusText,
    headers: responseHeaders(response.headers),
  });
}

function openStream(response: Response, responseKey: Uint8Array): Response {
  if (!response.body) throw new ConfidentialError('bad_response', 'the streamed answer has no body');
  const body = response.body
    .pipeThrough(new TextDecoderStream())
    .pipeThrough(openEventStream(responseKey))
    .pipeThrough(new TextEncoderStream());
  return new Response(body, {
    status: response.status,
    statusText: response.statusText,
    headers: responseHeaders(response.headers),
  });
}
