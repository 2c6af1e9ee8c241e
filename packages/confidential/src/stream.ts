/**
 * Opens a confidential SSE answer: each `data:` event carrying `encrypted` is decrypted (chunks in order
 * from seq 0, the last one final) and re-emitted with `choices` from the plaintext and no `encrypted`;
 * the plain usage event and `[DONE]` pass through once the final chunk was seen. Anything else errors the
 * stream with a `ConfidentialError`.
 */
import { EnvelopeError, openChunk } from '@aipg/tee';
import { ConfidentialError } from './errors.ts';

type Json = Record<string, unknown>;

/** Opens one sealed chunk and returns its `choices`. */
export function openChoices(responseKey: Uint8Array, encrypted: unknown, expectedSeq: number): unknown[] {
  if (typeof encrypted !== 'object' || encrypted === null) {
    throw new ConfidentialError('bad_response', '`encrypted` is not an object');
  }
  const { seq, final, ciphertext } = encrypted as Json;
  if (typeof seq !== 'number' || typeof final !== 'boolean' || typeof ciphertext !== 'string') {
    throw new ConfidentialError('bad_response', '`encrypted` needs seq, final and ciphertext');
  }
  if (seq !== expectedSeq) {
    throw new ConfidentialError(
      'bad_response',
      `response chunk ${seq} arrived where chunk ${expectedSeq} was due`,
    );
  }
  let plaintext: Uint8Array;
  try {
    plaintext = openChunk(responseKey, seq, final, new Uint8Array(Buffer.from(ciphertext, 'base64')));
  } catch (e) {
    if (e instanceof EnvelopeError) throw new ConfidentialError('decrypt_failed', e.message, { cause: e });
    throw e;
  }
  let choices: unknown;
  try {
    choices = (JSON.parse(new TextDecoder().decode(plaintext)) as Json).choices;
  } catch {
    throw new ConfidentialError('bad_response', `response chunk ${seq} is not JSON`);
  }
  if (!Array.isArray(choices))
    throw new ConfidentialError('bad_response', `response chunk ${seq} has no choices`);
  return choices;
}

/** A TransformStream (text in, text out) that opens a confidential SSE answer. */
export function openEventStream(responseKey: Uint8Array): TransformStream<string, string> {
  let buffer = '';
  let nextSeq = 0;
  let finalSeen = false;
  let errorSeen = false;

  const handle = (event: string): string => {
    const lines = event.split(/\r?\n/);
    const data = lines.filter((l) => l.startsWith('data:')).map((l) => l.slice(5).replace(/^ /, ''));
    if (data.length === 0) return `${event}\n\n`; // comments, retry hints: nothing to open
    const payload = data.join('\n');
    if (payload.trim() === '[DONE]') {
      if (!finalSeen) throw new ConfidentialError('bad_response', 'the answer ended before its final chunk');
      return `${event}\n\n`;
    }
    let json: Json;
    try {
      json = JSON.parse(payload) as Json;
    } catch {
      throw new ConfidentialError('bad_response', 'an event of the answer is not JSON');
    }
    if (typeof json !== 'object' || json === null)
      throw new ConfidentialError('bad_response', 'an event is not an object');
    if ('error' in json && !('encrypted' in json)) {
      errorSeen = true; // the gateway's error event: the OpenAI client raises it
      return `${event}\n\n`;
    }
    const others = lines.filter((l) => !l.startsWith('data:'));
    if ('encrypted' in json) {
      if (finalSeen) throw new ConfidentialError('bad_response', 'a chunk arrived after the final one');
      const final = (json.encrypted as Json | null)?.final === true;
      const choices = openChoices(responseKey, json.encrypted, nextSeq);
      nextSeq += 1;
      finalSeen = final;
      const { encrypted: _sealed, ...rest } = json;
      return [...others, `data: ${JSON.stringify({ ...rest, choices })}`, '', ''].join('\n');
    }
    if (Array.isArray(json.choices) && json.choices.length > 0) {
      throw new ConfidentialError('plaintext_refused', 'the answer carries unencrypted choices');
    }
    if (!finalSeen) throw new ConfidentialError('bad_response', 'the answer ended before its final chunk');
    return `${event}\n\n`;
  };

  const drain = (controller: TransformStreamDefaultController<string>, flush: boolean) => {
    for (;;) {
      const match = /\r?\n\r?\n/.exec(buffer);
      if (!match) break;
      const event = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      if (event.length > 0) controller.enqueue(handle(event));
    }
    if (flush && buffer.trim().length > 0) {
      controller.enqueue(handle(buffer));
      buffer = '';
    }
  };

  return new TransformStream<string, string>({
    transform(chunk, controller) {
      buffer += chunk;
      drain(controller, false);
    },
    flush(controller) {
      drain(controller, true);
      if (!finalSeen && !errorSeen)
        throw new ConfidentialError('bad_response', 'the answer ended before its final chunk');
    },
  });
}
