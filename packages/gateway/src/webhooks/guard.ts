import dns, { type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import { isIP } from 'node:net';
import { GatewayError } from '../errors.ts';

/**
 * Webhook targets are the one place the gateway connects where a client tells it to, so they are kept
 * off the gateway's own network: loopback, private (RFC 1918, ULA), link-local, unspecified, CGNAT,
 * multicast, reserved and cloud metadata addresses are refused, IPv4-mapped / NAT64 / 6to4 forms of
 * them too. Checked twice: the literal host at submit (`checkWebhookUrl`, a 400), and every address a
 * name resolves to at each delivery (`postWebhook`), connecting only to the addresses that were
 * checked — a name that changes its answer between submit and delivery (DNS rebinding) gains nothing.
 * `webhooks.allowPrivate` turns the address rules off (devnets posting to a local receiver).
 */

export type AddressClass =
  | 'unspecified'
  | 'loopback'
  | 'private'
  | 'cgnat'
  | 'link-local'
  | 'metadata'
  | 'multicast'
  | 'reserved';

/** A delivery refused before any connection: recorded as the attempt's error, never retried. */
export class WebhookRefusedError extends Error {
  override name = 'WebhookRefusedError';
  readonly code = 'WEBHOOK_REFUSED';
}

export function isWebhookRefused(error: unknown): error is WebhookRefusedError {
  return (
    error instanceof WebhookRefusedError ||
    (typeof error === 'object' && error !== null && (error as { code?: unknown }).code === 'WEBHOOK_REFUSED')
  );
}

function parseIpv4(text: string): number[] | undefined {
  const parts = text.split('.');
  if (parts.length !== 4) return undefined;
  const bytes = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : Number.NaN));
  return bytes.every((b) => b >= 0 && b <= 255) ? bytes : undefined;
}

/** The 16 bytes of an IPv6 address (zone ids dropped, a trailing dotted quad accepted). */
function parseIpv6(text: string): number[] | undefined {
  let s = text.toLowerCase();
  const zone = s.indexOf('%');
  if (zone >= 0) s = s.slice(0, zone);
  const lastColon = s.lastIndexOf(':');
  if (s.slice(lastColon + 1).includes('.')) {
    // a trailing dotted quad (::ffff:127.0.0.1) is the last two groups
    const v4 = parseIpv4(s.slice(lastColon + 1));
    if (!v4) return undefined;
    const [a = 0, b = 0, c = 0, d = 0] = v4;
    s = `${s.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = s.split('::');
  if (halves.length > 2) return undefined;
  const group = (h: string) => (h === '' ? [] : h.split(':'));
  const head = group(halves[0] ?? '');
  const rest = halves.length === 2 ? group(halves[1] ?? '') : [];
  const missing = 8 - head.length - rest.length;
  if (halves.length === 1 ? missing !== 0 : missing < 1) return undefined;
  const groups = [...head, ...Array<string>(halves.length === 2 ? missing : 0).fill('0'), ...rest];
  const bytes: number[] = [];
  for (const g of groups) {
    if (!/^[0-9a-f]{1,4}$/.test(g)) return undefined;
    const v = Number.parseInt(g, 16);
    bytes.push(v >> 8, v & 0xff);
  }
  return bytes.length === 16 ? bytes : undefined;
}

function classifyIpv4([a = 0, b = 0, c = 0, d = 0]: number[]): AddressClass | undefined {
  if (a === 0) return 'unspecified'; // 0.0.0.0/8 "this network"
  if (a === 10) return 'private';
  if (a === 100 && (b & 0xc0) === 64) return 'cgnat'; // 100.64.0.0/10 (also Alibaba's metadata 100.100.100.200)
  if (a === 127) return 'loopback';
  if (a === 169 && b === 254) return c === 169 && d === 254 ? 'metadata' : 'link-local';
  if (a === 172 && (b & 0xf0) === 16) return 'private';
  if (a === 192 && b === 168) return 'private';
  if (a === 168 && b === 63 && c === 129 && d === 16) return 'metadata'; // Azure's wire server
  if (a === 192 && b === 0 && (c === 0 || c === 2)) return 'reserved'; // IETF assignments, TEST-NET-1
  if (a === 198 && (b & 0xfe) === 18) return 'reserved'; // benchmarking
  if (a === 198 && b === 51 && c === 100) return 'reserved'; // TEST-NET-2
  if (a === 203 && b === 0 && c === 113) return 'reserved'; // TEST-NET-3
  if (a >= 224 && a <= 239) return 'multicast';
  if (a >= 240) return 'reserved'; // 240/4 and the broadcast address
  return undefined;
}

function classifyIpv6(x: number[]): AddressClass | undefined {
  const zero = (from: number, to: number) => x.slice(from, to).every((v) => v === 0);
  const v4 = (at: number) => x.slice(at, at + 4);
  if (zero(0, 16)) return 'unspecified';
  if (zero(0, 15) && x[15] === 1) return 'loopback';
  // ::ffff:a.b.c.d (mapped), ::ffff:0:a.b.c.d (translated), ::a.b.c.d (compatible, deprecated)
  if (zero(0, 10) && x[10] === 0xff && x[11] === 0xff) return classifyIpv4(v4(12));
  if (zero(0, 8) && x[8] === 0xff && x[9] === 0xff && zero(10, 12)) return classifyIpv4(v4(12));
  if (zero(0, 12)) return classifyIpv4(v4(12)) ?? 'reserved';
  // NAT64: the well-known prefix carries an IPv4 address; the local-use prefix is the operator's own network.
  if (x[0] === 0x00 && x[1] === 0x64 && x[2] === 0xff && x[3] === 0x9b) {
    if (zero(4, 12)) return classifyIpv4(v4(12));
    if (x[4] === 0 && x[5] === 1) return 'private';
  }
  if (x[0] === 0x01 && x[1] === 0x00 && zero(2, 8)) return 'reserved'; // 100::/64 discard
  if (x[0] === 0x20 && x[1] === 0x01 && x[2] === 0x0d && x[3] === 0xb8) return 'reserved'; // documentation
  if (x[0] === 0x20 && x[1] === 0x02) return classifyIpv4(v4(2)); // 6to4 embeds an IPv4 address
  if (((x[0] ?? 0) & 0xfe) === 0xfc) {
    // fd00:ec2::254: AWS's metadata service over IPv6
    const awsMetadata = parseIpv6('fd00:ec2::254')!;
    return x.every((v, i) => v === awsMetadata[i]) ? 'metadata' : 'private'; // fc00::/7 unique local
  }
  if (x[0] === 0xfe && ((x[1] ?? 0) & 0xc0) === 0x80) return 'link-local'; // fe80::/10
  if (x[0] === 0xfe && ((x[1] ?? 0) & 0xc0) === 0xc0) return 'private'; // fec0::/10 site-local (deprecated)
  if (x[0] === 0xff) return 'multicast';
  return undefined;
}

/** Why an IP address may not receive webhooks; undefined when it may (or `address` is not an IP). */
export function classifyAddress(address: string): AddressClass | undefined {
  const family = isIP(address.includes('%') ? address.slice(0, address.indexOf('%')) : address);
  if (family === 4) return classifyIpv4(parseIpv4(address)!);
  if (family === 6) {
    const bytes = parseIpv6(address);
    return bytes ? classifyIpv6(bytes) : 'reserved';
  }
  return undefined;
}

function describe(c: AddressClass): string {
  return `${/^[aeiu]/.test(c) ? 'an' : 'a'} ${c} address`;
}

/** Names that always mean this machine or its cloud's metadata service. */
function classifyName(host: string): AddressClass | undefined {
  if (host === 'localhost' || host.endsWith('.localhost')) return 'loopback';
  if (host === 'metadata.google.internal' || host === 'metadata') return 'metadata';
  return undefined;
}

/** The URL's host without IPv6 brackets or a trailing dot, lower case. */
function bareHost(url: URL): string {
  const h = url.hostname.toLowerCase();
  const unbracketed = h.startsWith('[') && h.endsWith(']') ? h.slice(1, -1) : h;
  return unbracketed.endsWith('.') ? unbracketed.slice(0, -1) : unbracketed;
}

export type WebhookUrlCheck = { ok: true; url: URL } | { ok: false; reason: string };

/**
 * Submit-time check of a webhook URL: it must parse, be http(s), and its host must not be a refused
 * address or name. The host is checked as the URL parser normalised it (`127.1`, `2130706433`,
 * `0x7f000001` all become `127.0.0.1`; `[::ffff:127.0.0.1]` becomes `[::ffff:7f00:1]`). Names are
 * not resolved here: `postWebhook` resolves and checks them at every delivery.
 */
export function checkWebhookUrl(text: string, { allowPrivate }: { allowPrivate: boolean }): WebhookUrlCheck {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return { ok: false, reason: 'webhook_url is not a valid URL' };
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return { ok: false, reason: 'webhook_url must be an http(s) URL' };
  if (url.hostname === '') return { ok: false, reason: 'webhook_url has no host' };
  if (allowPrivate) return { ok: true, url };
  const host = bareHost(url);
  const why = classifyAddress(host) ?? classifyName(host);
  if (why) {
    return {
      ok: false,
      reason: `webhook_url points at ${describe(why)} (${url.hostname}); webhooks go to public hosts only`,
    };
  }
  return { ok: true, url };
}

/** `checkWebhookUrl` as the API uses it: a 400 `invalid_request` naming `webhook_url`. */
export function assertWebhookUrl(text: string, opts: { allowPrivate: boolean }): void {
  const check = checkWebhookUrl(text, opts);
  if (!check.ok) throw new GatewayError('invalid_request', check.reason, { param: 'webhook_url' });
}

type LookupCallback = (
  error: NodeJS.ErrnoException | null,
  address: string | LookupAddress[],
  family?: number,
) => void;

/** Resolves every address of a name (`dns.lookup`, replaceable in tests). */
export type Resolve = (hostname: string) => Promise<LookupAddress[]>;

const systemResolve: Resolve = (hostname) =>
  new Promise((resolve, reject) =>
    dns.lookup(hostname, { all: true, verbatim: true }, (error, addresses) =>
      error ? reject(error) : resolve(addresses),
    ),
  );

/**
 * A `lookup` for `net.connect`: resolves the name, refuses it when ANY address is refused (an attacker's
 * name may answer with a public and a private address), and hands the socket exactly the checked addresses.
 */
function guardedLookup(resolve: Resolve, allowPrivate: boolean) {
  return (
    hostname: string,
    options: { all?: boolean; family?: number | string },
    callback: LookupCallback,
  ) => {
    resolve(hostname).then(
      (found) => {
        const family = options.family === 4 || options.family === 'IPv4' ? 4 : options.family === 6 ? 6 : 0;
        const addresses = family === 0 ? found : found.filter((a) => a.family === family);
        if (addresses.length === 0) {
          const e: NodeJS.ErrnoException = new Error(`${hostname} has no address`);
          e.code = 'ENOTFOUND';
          return callback(e, []);
        }
        if (!allowPrivate) {
          for (const a of addresses) {
            const why = classifyAddress(a.address);
            if (why)
              return callback(
                new WebhookRefusedError(`refused: ${hostname} resolves to ${a.address}, ${describe(why)}`),
                [],
              );
          }
        }
        if (options.all) return callback(null, addresses);
        const first = addresses[0]!;
        return callback(null, first.address, first.family);
      },
      (error: NodeJS.ErrnoException) => callback(error, []),
    );
  };
}

/**
 * POSTs a webhook: a fresh connection (no pooled socket skips the check) to an address checked just
 * now, no redirects followed, the whole exchange bounded by `timeoutMs`. Resolves with the HTTP status;
 * rejects with `WebhookRefusedError` for a refused target (before anything is sent) or the network error.
 */
export function postWebhook(
  target: string,
  p: {
    body: string;
    headers: Record<string, string>;
    timeoutMs: number;
    allowPrivate: boolean;
    resolve?: Resolve | undefined;
  },
): Promise<{ status: number }> {
  const check = checkWebhookUrl(target, { allowPrivate: p.allowPrivate });
  if (!check.ok) return Promise.reject(new WebhookRefusedError(`refused: ${check.reason}`));
  const url = check.url;
  const host = bareHost(url);
  const client = url.protocol === 'https:' ? https : http;
  return new Promise((resolve, reject) => {
    let settled = false;
    const done = (error: Error | undefined, status?: number) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (error) reject(error);
      else resolve({ status: status! });
    };
    const req = client.request(
      {
        method: 'POST',
        protocol: url.protocol,
        hostname: host,
        port: url.port || undefined,
        path: `${url.pathname}${url.search}`,
        auth: url.username
          ? `${decodeURIComponent(url.username)}:${decodeURIComponent(url.password)}`
          : undefined,
        headers: { ...p.headers, 'content-length': String(Buffer.byteLength(p.body)) },
        agent: false,
        lookup: guardedLookup(p.resolve ?? systemResolve, p.allowPrivate) as never,
        // TLS still verifies the certificate against the name, not the address.
        servername: isIP(host) ? undefined : host,
      },
      (res) => {
        // The answer's body is not read: drop it and the connection.
        res.resume();
        res.on('error', () => {});
        done(undefined, res.statusCode ?? 0);
        req.destroy();
      },
    );
    const timer = setTimeout(() => {
      const e = new Error(`no answer within ${p.timeoutMs} ms`);
      done(e);
      req.destroy(e);
    }, p.timeoutMs);
    req.on('error', (error) => done(error));
    req.end(p.body);
  });
}
