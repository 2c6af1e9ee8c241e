/**
 * The devnet's red-team pieces (`aipg devnet --adversary <kind>`): the model a substituting worker
 * really runs, a background traffic loop so audits happen without a manual step, a watcher that
 * prints every slash as it lands on chain, and one that says what the gateway itself stopped (the
 * lies that never reach the chain, so are never slashed).
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gridAbi } from '@aipg/chain';
import { auditVerdictToUint, auditVoteToUint, formatAipg } from '@aipg/core';
import { IMAGE_MODEL_PRESETS, MANIFEST_FILE, makeImageModel } from '@aipg/diffusion';
import { MODEL_PRESETS, type ModelPresetName, makeGguf, sha256Hex } from '@aipg/inference';
import { ADVERSARY_KINDS, type AdversaryKind, IMAGE_ADVERSARY_KINDS, INJECTED_TEXT } from '@aipg/worker';
import { type Address, type Client, type Hex, hexToString } from 'viem';
import { getBlockNumber, getLogs, readContract } from 'viem/actions';

/**
 * The model a `substitute` adversary really runs: another model of the same vocabulary and chat
 * template, so its prompt ids are right and only the distribution gives it away. Serving `small`,
 * it runs the `tiny` preset (30× fewer parameters); serving `tiny`, nothing is smaller, so it runs a
 * differently seeded model of tiny's shape (written next to the others).
 */
export async function ensureSubstituteModel(
  dir: string,
  served: ModelPresetName,
  ensure: (preset: ModelPresetName) => Promise<{ path: string; name: string; weightsHash: Hex }>,
): Promise<{ path: string; name: string; weightsHash: Hex }> {
  if (served !== 'tiny') return ensure('tiny');
  const config = { ...MODEL_PRESETS.tiny.config, name: 'aipg-tiny-llama-reseeded', seed: 0xbad5eed };
  return writeModelOnce(dir, config.name, () => makeGguf(config).bytes);
}

/**
 * The model a `twin-<k>bit` adversary really runs: the served preset's own weights re-quantized to
 * k bits (blocks of 32, absmax scale, integers ±(2^(k−1) − 1): the Q-formats' scheme), everything
 * else the same. A Q8_0 preset stays a Q8_0 file holding exactly those levels, so llama.cpp runs the
 * same kernels on coarser weights; an F32 preset stores the re-quantized values. Written next to the
 * others as `<name>-q<k>.gguf`.
 */
export async function ensureTwinModel(
  dir: string,
  served: ModelPresetName,
  bits: number,
): Promise<{ path: string; name: string; weightsHash: Hex }> {
  if (!Number.isInteger(bits) || bits < 2 || bits > 7) throw new RangeError(`a twin of ${bits} bits`);
  const levels = 2 ** (bits - 1) - 1;
  const base = MODEL_PRESETS[served].config;
  const name = `${base.name}-q${bits}`;
  return writeModelOnce(
    dir,
    name,
    () =>
      makeGguf(base, {
        editWeights: (tensors) => {
          for (const t of tensors) if (t.dims.length === 2) t.levels = levels;
        },
      }).bytes,
  );
}

/** `<dir>/<name>.gguf` from `make` unless already there (written to a temporary name, then renamed). */
async function writeModelOnce(
  dir: string,
  name: string,
  make: () => Uint8Array,
): Promise<{ path: string; name: string; weightsHash: Hex }> {
  const path = join(dir, `${name}.gguf`);
  const existing = await readFile(path).catch(() => undefined);
  const bytes = existing ?? make();
  if (!existing) {
    await mkdir(dir, { recursive: true });
    const tmp = `${path}.${process.pid}.tmp`;
    await writeFile(tmp, bytes);
    await rename(tmp, path);
  }
  return { path, name, weightsHash: sha256Hex(bytes) };
}

/**
 * What `aipg devnet --adversary` takes: a dishonest worker of the worker's kinds, or
 * `dishonest-gateway` (the validators fetch their evidence through a front that alters it).
 */
export const DEVNET_ADVERSARY_KINDS = [
  ...ADVERSARY_KINDS,
  ...IMAGE_ADVERSARY_KINDS,
  'dishonest-gateway',
] as const;
export type DevnetAdversaryKind = (typeof DEVNET_ADVERSARY_KINDS)[number];

/** The user messages of the devnet's traffic (and of the red-team tests). */
export const PROMPTS = [
  'Hello, grid!',
  'What does it cost?',
  'Tell me about the chain.',
  'Who runs the validators?',
  'Write one sentence about a star.',
  'Why is the road open?',
  'Say something about stake.',
  'What does the key do?',
];

const SYSTEM_MESSAGES = [
  'You write about rivers, bridges and the sea.',
  'Speak of stake, proof and every validator of the chain.',
  'Talk about music and stars.',
];

export type TrafficStats = { sent: number; ok: number; failed: number; pinned: number; lastError?: string };

/** One answer of the traffic loop, as its user received it. */
export type TrafficResponse =
  | { ok: true; pinned: boolean; worker: Address | null; content: string }
  | { ok: false; pinned: boolean; status: number; code: string | null; message: string };

export type Traffic = { stats(): TrafficStats; stop(): Promise<void> };

/**
 * A few chat requests a minute through the gateway, as a user would send them: seeded sampling
 * mostly, greedy every third, so every audit can replay them. Every other request is pinned
 * (`grid.workers`) to `pin` so the adversary is sure to get jobs; the rest are routed freely.
 */
export function startTraffic({
  gatewayUrl,
  apiKey,
  model,
  pin,
  intervalMs,
  maxTokens = 48,
  image,
  onResponse,
}: {
  gatewayUrl: string;
  apiKey: string;
  model: string;
  pin: readonly Address[];
  intervalMs: number;
  maxTokens?: number;
  /** Send image jobs of this model instead of chat (256², a few steps, random seeds). */
  image?: { model: string } | undefined;
  /** Every answer (or HTTP error) as it comes back. */
  onResponse?: ((response: TrafficResponse) => void) | undefined;
}): Traffic {
  const stats: TrafficStats = { sent: 0, ok: 0, failed: 0, pinned: 0 };
  let stopped = false;
  let running: Promise<void> = Promise.resolve();
  const send = async (n: number) => {
    const pinned = pin.length > 0 && n % 2 === 0;
    const greedy = n % 3 === 2;
    const body = {
      model,
      // A system message on every request: what a system-prompt dropper skips (and most apps send).
      messages: [
        { role: 'system', content: SYSTEM_MESSAGES[n % SYSTEM_MESSAGES.length] },
        { role: 'user', content: PROMPTS[n % PROMPTS.length] },
      ],
      max_tokens: maxTokens,
      temperature: greedy ? 0 : 0.8,
      ...(greedy ? {} : { seed: 1 + Math.floor(Math.random() * 1_000_000) }),
      ...(pinned ? { grid: { workers: pin } } : {}),
    };
    stats.sent++;
    if (pinned) stats.pinned++;
    const imageBody = image && {
      model: image.model,
      prompt: PROMPTS[n % PROMPTS.length],
      size: '256x256',
      steps: 4 + (n % 3) * 2,
      seed: 1 + Math.floor(Math.random() * 1_000_000),
      response_format: 'url',
      ...(pinned ? { grid: { workers: pin } } : {}),
    };
    try {
      const res = await fetch(`${gatewayUrl}/v1/${image ? 'images/generations' : 'chat/completions'}`, {
        method: 'POST',
        headers: { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' },
        body: JSON.stringify(imageBody ?? body),
        signal: AbortSignal.timeout(60_000),
      });
      const json = (await res.json().catch(() => ({}))) as {
        choices?: { message?: { content?: string | null } }[];
        grid?: { worker?: Address | null };
        error?: { message?: string; code?: string | null };
      };
      if (res.ok) {
        stats.ok++;
        onResponse?.({
          ok: true,
          pinned,
          worker: json.grid?.worker ?? null,
          content: json.choices?.[0]?.message?.content ?? '',
        });
      } else {
        stats.failed++;
        stats.lastError = `HTTP ${res.status}`;
        onResponse?.({
          ok: false,
          pinned,
          status: res.status,
          code: json.error?.code ?? null,
          message: json.error?.message ?? `HTTP ${res.status}`,
        });
      }
    } catch (error) {
      stats.failed++;
      stats.lastError = (error as Error).message;
    }
  };
  let n = 0;
  const tick = () => {
    if (stopped) return;
    running = running.then(() => send(n++));
  };
  const first = setTimeout(tick, Math.min(2_000, intervalMs));
  const timer = setInterval(tick, intervalMs);
  return {
    stats: () => ({ ...stats }),
    async stop() {
      stopped = true;
      clearTimeout(first);
      clearInterval(timer);
      await running;
    },
  };
}

/**
 * What becomes of each adversary's lie. `slashed`: its receipts pass the gateway's checks and only
 * the validators' re-execution can catch it, so it reaches the chain and is slashed. `refused`: the
 * gateway checks every receipt against the prompt ids it sent and the way generation ends, refuses
 * it (HTTP 502 `invalid_receipt`, nothing charged, no receipt kept), so nothing reaches the chain
 * and nothing is ever slashed. `harmless`: its receipts are honest (audits pass) and the text it
 * slips in never reaches a user: the gateway renders every answer from the signed token ids.
 * `overruled`: its own jobs are honest; the lie is in the scores it signs for cross-checking
 * validators, and one scorer's word never fails a worker: a second drawn scorer disagrees, the
 * validator abstains, the honest worker keeps its bond (and the signed lie is kept as evidence).
 * `reported`: the gateway's own lie (evidence altered after the worker signed): the validators abstain
 * and report the gateway on chain (`GatewayFaultReported`), never fail the worker.
 */
export const ADVERSARY_FATES: Record<
  DevnetAdversaryKind,
  'slashed' | 'refused' | 'harmless' | 'overruled' | 'reported'
> = {
  substitute: 'slashed',
  fabricate: 'slashed',
  'twin-4bit': 'slashed',
  'twin-5bit': 'slashed',
  'twin-6bit': 'slashed',
  'system-prompt-dropper': 'slashed',
  truncate: 'refused',
  inflate: 'refused',
  'prompt-overbiller': 'refused',
  'text-injector': 'harmless',
  'sybil-scorer': 'overruled',
  'image-fewer-steps': 'slashed',
  'image-other-seed': 'slashed',
  'image-substitute': 'slashed',
  'image-random': 'slashed',
  'dishonest-gateway': 'reported',
};

/** The reason inside the gateway's `invalid_receipt` message (`… did not verify (<reason>); nothing was charged`). */
export function refusalReason(message: string): string {
  return /did not verify \((.*)\); nothing was charged/s.exec(message)?.[1] ?? message;
}

/**
 * Says once, from the traffic's answers, what the gateway did about an adversary whose lie never
 * reaches the chain: after `after` of its receipts refused, that nothing was charged and nothing
 * will be slashed; after `after` of its answers served, that none carried its injected text (or,
 * at once, that one did). A `slashed` adversary gets nothing here: `watchSlashes` reports it.
 */
export function watchGateway({
  adversary,
  write,
  after = 3,
}: {
  adversary: { address: Address; kind: AdversaryKind };
  write: (line: string) => void;
  after?: number;
}): { onResponse(response: TrafficResponse): void } {
  const { kind } = adversary;
  const fate = ADVERSARY_FATES[kind];
  const injected = INJECTED_TEXT.trim();
  let refused = 0;
  let firstReason: string | undefined;
  let served = 0;
  let said = false;
  return {
    onResponse(r) {
      if (said) return;
      if (fate === 'refused' && !r.ok && r.code === 'invalid_receipt') {
        // Only the adversary lies on the devnet: every refused receipt is one of its.
        refused++;
        firstReason ??= refusalReason(r.message);
        if (refused < after) return;
        said = true;
        write(
          `✗ refused by the gateway: ${kind} — ${refused} receipts rejected (${firstReason}); nothing charged, nothing to slash`,
        );
      } else if (fate === 'harmless' && r.ok && r.worker?.toLowerCase() === adversary.address.toLowerCase()) {
        served++;
        if (r.content.includes(injected)) {
          said = true;
          write(`✗ ${kind}: its injected text reached a user (answer ${served})`);
        } else if (served >= after) {
          said = true;
          write(
            `✓ ${kind}: ${served} answers served, none carried its injected text (the gateway renders them from the signed token ids); its receipts are honest, nothing to slash`,
          );
        }
      }
    },
  };
}

export type SlashWatcher = { stop(): Promise<void> };

const VERDICT_FAIL = auditVerdictToUint.fail;
const VOTE_FAIL = auditVoteToUint.fail;
const event = <
  N extends
    | 'Attested'
    | 'AuditFinalized'
    | 'ValidatorRewarded'
    | 'FalseAttestationSlashed'
    | 'GatewayFaultReported',
>(
  name: N,
) =>
  gridAbi.find(
    (x): x is Extract<(typeof gridAbi)[number], { type: 'event'; name: N }> =>
      x.type === 'event' && x.name === name,
  )!;
const short = (a: Address) => `${a.slice(0, 6)}…${a.slice(-4)}`;

/**
 * Prints each FAIL attestation and each slash as it lands on chain, from the Grid's events: a
 * worker slashed on a FAIL verdict (its bond before → after, and what each finding validator was
 * paid), a validator slashed for a false attestation, and a worker whose bond fell below the
 * minimum (no gateway routes to it).
 */
export function watchSlashes({
  client,
  grid,
  fromBlock,
  names,
  write,
  intervalMs = 1_000,
}: {
  client: Client;
  grid: Address;
  fromBlock: bigint;
  /** What to call known addresses: `truncate`, `honest worker`. */
  names: (address: Address) => string | undefined;
  write: (line: string) => void;
  intervalMs?: number;
}): SlashWatcher {
  let next = fromBlock;
  let stopped = false;
  const out = new Set<string>();
  const c = { address: grid, abi: gridAbi } as const;
  const bondAt = async (role: 'workerBond' | 'validatorBond', owner: Address, blockNumber: bigint) =>
    (await readContract(client, { ...c, functionName: role, args: [owner], blockNumber })).amount;

  async function pass() {
    const head = await getBlockNumber(client, { cacheTime: 0 });
    if (head < next) return;
    const range = { address: grid, fromBlock: next, toBlock: head } as const;
    const [attested, finalized, rewarded, falseSlashes, gatewayFaults] = await Promise.all([
      getLogs(client, { ...range, event: event('Attested') }),
      getLogs(client, { ...range, event: event('AuditFinalized') }),
      getLogs(client, { ...range, event: event('ValidatorRewarded') }),
      getLogs(client, { ...range, event: event('FalseAttestationSlashed') }),
      getLogs(client, { ...range, event: event('GatewayFaultReported') }),
    ]);
    // A gateway whose evidence does not reproduce what the worker signed: one line per job.
    const reported = new Map<Hex, { gateway: Address; validators: Address[]; reasons: Set<string> }>();
    for (const log of gatewayFaults) {
      const { leaf, gateway, validator, reason } = log.args;
      if (!leaf || !gateway || !validator || !reason) continue;
      const r = reported.get(leaf) ?? { gateway, validators: [], reasons: new Set<string>() };
      r.validators.push(validator);
      r.reasons.add(hexToString(reason, { size: 32 }));
      reported.set(leaf, r);
    }
    for (const [leaf, r] of reported)
      write(
        `⚠ gateway ${short(r.gateway)}${names(r.gateway) ? ` (${names(r.gateway)})` : ''} reported by ${r.validators.map(short).join(', ')} on job ${leaf.slice(0, 10)}…: its evidence does not match what the worker signed (${[...r.reasons].join(', ')}); the validators abstained, nobody is slashed`,
      );
    const minimum = await readContract(client, { ...c, functionName: 'workerMinimumBond' });
    // FAIL attestations as they come in, one line per job: the slash follows when the window closes.
    const fails = new Map<Hex, Address[]>();
    for (const log of attested)
      if (log.args.vote === VOTE_FAIL && log.args.leaf && log.args.validator)
        fails.set(log.args.leaf, [...(fails.get(log.args.leaf) ?? []), log.args.validator]);
    for (const [leaf, validators] of fails) {
      const audit = await readContract(client, { ...c, functionName: 'getAudit', args: [leaf] });
      const name = names(audit.worker);
      write(
        `⚑ FAIL attested by ${validators.map(short).join(', ')} on job ${leaf.slice(0, 10)}… of ${short(audit.worker)}${name ? ` (${name})` : ''}`,
      );
    }
    for (const log of finalized) {
      const { worker, verdict, slashed, leaf } = log.args;
      if (verdict !== VERDICT_FAIL || !worker || slashed === undefined) continue;
      const after = await bondAt('workerBond', worker, log.blockNumber);
      // later slashes of the same worker in the same block are already in `after`
      const later = finalized
        .filter(
          (l) =>
            l.blockNumber === log.blockNumber &&
            l.logIndex > log.logIndex &&
            l.args.worker === worker &&
            l.args.verdict === VERDICT_FAIL,
        )
        .reduce((s, l) => s + (l.args.slashed ?? 0n), 0n);
      const before = after + later + slashed;
      const finders = rewarded.filter(
        (r) => r.args.leaf === leaf && r.transactionHash === log.transactionHash,
      );
      const each = finders[0]?.args.amount ?? 0n;
      const paid =
        finders.length === 0
          ? 'no finder paid'
          : `finders paid ${finders.map((f) => short(f.args.validator!)).join(', ')} ${formatAipg(each)} AIPG each`;
      const name = names(worker);
      write(
        `✗ slashed ${worker}${name ? ` (${name})` : ''}: bond ${formatAipg(before)} → ${formatAipg(after + later)} AIPG; ${paid}`,
      );
      if (after + later < minimum && !out.has(worker)) {
        out.add(worker);
        write(
          `  ${short(worker)} is below the ${formatAipg(minimum)} AIPG worker minimum: no gateway routes jobs to it any more`,
        );
      }
    }
    for (const log of falseSlashes) {
      const { validator, amount } = log.args;
      if (!validator || amount === undefined) continue;
      const after = await bondAt('validatorBond', validator, log.blockNumber);
      write(
        `✗ slashed validator ${validator} for a false attestation: bond ${formatAipg(after + amount)} → ${formatAipg(after)} AIPG`,
      );
    }
    next = head + 1n;
  }

  let current: Promise<void> = Promise.resolve();
  const timer = setInterval(() => {
    current = current.then(() => (stopped ? undefined : pass().catch(() => undefined)));
  }, intervalMs);
  return {
    async stop() {
      stopped = true;
      clearInterval(timer);
      await current;
    },
  };
}

/**
 * The image model an `image-substitute` adversary really runs: the devnet image model's architecture
 * with other weights (another generator seed), written next to the others once.
 */
export async function ensureSubstituteImageModel(dir: string): Promise<string> {
  const model = makeImageModel({
    ...IMAGE_MODEL_PRESETS.tiny.config,
    name: 'aipg-tiny-ldm-reseeded',
    seed: 0xbad5,
  });
  const modelDir = join(dir, model.config.name);
  const done = await readFile(join(modelDir, MANIFEST_FILE)).then(
    () => true,
    () => false,
  );
  if (!done) {
    await mkdir(modelDir, { recursive: true });
    for (const file of Object.values(model.files)) await writeFile(join(modelDir, file.name), file.bytes);
    const tmp = join(modelDir, `${MANIFEST_FILE}.${process.pid}.tmp`);
    await writeFile(tmp, model.manifest);
    await rename(tmp, join(modelDir, MANIFEST_FILE));
  }
  return modelDir;
}
