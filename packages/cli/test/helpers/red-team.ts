/**
 * What the red-team tests share: requests through the devnet's gateway pinned to one worker, and
 * the audit round driven with anvil's RPC (settle, mine past the randomness delay, wait for the
 * nodes to commit, move time past the commit and reveal windows), never waited out.
 */
import { readFile } from 'node:fs/promises';
import { createGridClients, gridAbi } from '@aipg/chain';
import { parseAipg } from '@aipg/core';
import { type Address, type Hex, parseEventLogs } from 'viem';
import { expect } from 'vitest';
import { PROMPTS } from '../../src/devnet/red-team.ts';
import {
  type StartDevnetParameters,
  type StartDevnetReturnType,
  startDevnet,
} from '../../src/devnet/start-devnet.ts';

export { PROMPTS };

/**
 * A devnet for a red team: every job audited, commit and reveal windows of `window` seconds (moved
 * past with evm_increaseTime), no background traffic, blocks mined only when a test asks, settlement
 * only on `settleNow`, limits out of the way. `overrides` are the test's own (model, validators…).
 */
export function startRedTeamDevnet(
  dir: string,
  window: number,
  overrides: StartDevnetParameters = {},
): Promise<StartDevnetReturnType> {
  return startDevnet({
    dir,
    port: 0,
    rpcPort: 0,
    audit: { auditRateBps: 10_000, commitWindow: window, revealWindow: window, randomnessDelay: 2 },
    traffic: false,
    blockIntervalMs: 0,
    settleIntervalMs: 3_600_000,
    validatorPollIntervalMs: 200,
    payerDeposit: parseAipg('10000'),
    gatewayOptions: {
      'rateLimit.requestsPerMinute': 100_000,
      'rateLimit.burst': 10_000,
      'rateLimit.payerRequestsPerMinute': 100_000,
      'rateLimit.payerBurst': 10_000,
      'settlement.minReceipts': 10_000,
    },
    logLevel: 'silent',
    ...overrides,
  });
}

export type ChatResult = {
  grid: { job_id: Hex; worker: Address };
  content: string;
  /** `stop` or `length` (streamed: the finish chunk's). */
  finishReason?: string;
  /** `usage.completion_tokens` (non-streamed answers). */
  outputTokens?: number;
};
export type Refusal = { status: number; code: string | undefined; message: string };
export type Finalized = { leaf: Hex; worker: Address; verdict: number; slashed: bigint };
type Nodes = StartDevnetReturnType['validatorNodes'];

/** What a validator node's state file keeps of each audit (by leaf): the fields the red teams read. */
export type ValidatorAuditRecord = { jobId: string; vote?: string; reasons?: { code: string }[] };

/** A validator node's audits as its state file holds them, by leaf. */
export async function validatorAudits<T = ValidatorAuditRecord>(
  node: Nodes[number],
): Promise<Record<string, T>> {
  return (JSON.parse(await readFile(node.status().stateFile, 'utf8')) as { audits: Record<string, T> })
    .audits;
}

/** A node's abstentions: how many, and the reasons its state file holds (so a failure says why). */
export async function abstentions(node: Nodes[number]) {
  const audits = await validatorAudits<{ status: string; abstainReason?: string }>(node);
  return {
    abstained: node.status().audits.abstained,
    reasons: Object.values(audits)
      .filter((a) => a.status === 'abstained')
      .map((a) => a.abstainReason),
  };
}

/** Audits a node has judged: voted (committed, revealed, finalized) or abstained on. */
export const judgedCount = (v: Nodes[number]) => {
  const a = v.status().audits;
  return a.committed + a.revealed + a.finalized + a.abstained;
};

export async function waitUntil(what: string, check: () => boolean | Promise<boolean>, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

/** Runs `n` jobs, `concurrency` at a time. */
export async function runJobs(n: number, concurrency: number, job: (i: number) => Promise<unknown>) {
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await job(next++);
    }),
  );
}

/** The helpers bound to one devnet; `window` is its commit and reveal window (s). */
export function redTeam(net: StartDevnetReturnType, window: number) {
  const { publicClient } = createGridClients({ rpcUrl: net.rpcUrl, chainId: net.chainId });
  const rpc = <T = unknown>(method: string, params: unknown[] = []) =>
    publicClient.request({ method, params } as never) as Promise<T>;

  /** A chat request pinned to `worker`: the user message is one of PROMPTS, unless `messages` say otherwise. */
  const post = (worker: Address, i: number, params: Record<string, unknown>) =>
    fetch(`${net.gatewayUrl}/v1/chat/completions`, {
      method: 'POST',
      headers: { authorization: `Bearer ${net.apiKey}`, 'content-type': 'application/json' },
      body: JSON.stringify({
        model: net.model.name,
        messages: [{ role: 'user', content: `${PROMPTS[i % PROMPTS.length]} (${i})` }],
        ...params,
        grid: { workers: [worker] },
      }),
    });

  async function chat(worker: Address, i: number, params: Record<string, unknown>): Promise<ChatResult> {
    const res = await post(worker, i, params);
    const body = (await res.json()) as {
      grid: ChatResult['grid'];
      choices: { message: { content: string }; finish_reason: string }[];
      usage: { completion_tokens: number };
      error?: { message: string };
    };
    if (!res.ok) throw new Error(`chat ${i} to ${worker}: HTTP ${res.status} ${body.error?.message}`);
    expect(body.grid.worker).toBe(worker);
    return {
      grid: body.grid,
      content: body.choices[0]!.message.content,
      finishReason: body.choices[0]!.finish_reason,
      outputTokens: body.usage.completion_tokens,
    };
  }

  /** A streamed chat: the text deltas as the user read them, and the `grid` of the finish chunk. */
  async function streamChat(
    worker: Address,
    i: number,
    params: Record<string, unknown>,
  ): Promise<ChatResult & { deltas: string[] }> {
    const res = await post(worker, i, { ...params, stream: true });
    const text = await res.text();
    if (!res.ok) throw new Error(`stream ${i} to ${worker}: HTTP ${res.status} ${text}`);
    const deltas: string[] = [];
    let grid: ChatResult['grid'] | undefined;
    for (const line of text.split('\n')) {
      if (!line.startsWith('data: ') || line === 'data: [DONE]') continue;
      const chunk = JSON.parse(line.slice(6)) as {
        choices?: { delta?: { content?: string } }[];
        grid?: ChatResult['grid'];
        error?: { message: string };
      };
      if (chunk.error) throw new Error(`stream ${i} to ${worker}: ${chunk.error.message}`);
      const delta = chunk.choices?.[0]?.delta?.content;
      if (delta) deltas.push(delta);
      grid ??= chunk.grid;
    }
    expect(grid?.worker).toBe(worker);
    return { grid: grid!, content: deltas.join(''), deltas };
  }

  /** A chat whose worker's receipt the gateway must refuse: what the user got instead of an answer. */
  async function refusedChat(worker: Address, i: number, params: Record<string, unknown>): Promise<Refusal> {
    const res = await post(worker, i, params);
    const body = (await res.json()) as { error?: { message: string; code?: string } };
    return { status: res.status, code: body.error?.code, message: body.error?.message ?? '' };
  }

  /** The payer's balance at the gateway (wei): escrow still unsettled, reserved and available. */
  async function balance(): Promise<{ unsettled: bigint; reserved: bigint; available: bigint }> {
    const res = await fetch(`${net.gatewayUrl}/v1/balance`, {
      headers: { authorization: `Bearer ${net.apiKey}` },
    });
    expect(res.status).toBe(200);
    const b = (await res.json()) as Record<'unsettled' | 'reserved' | 'available', { wei: string }>;
    return {
      unsettled: BigInt(b.unsettled.wei),
      reserved: BigInt(b.reserved.wei),
      available: BigInt(b.available.wei),
    };
  }

  /**
   * Settles what waits, mines past the randomness delay and waits until every node has judged
   * `expected[i]` audits in all (`judgedCount`) with nothing left in progress.
   */
  async function settleAndCommit(nodes: Nodes, expected: number[]) {
    await net.gateway.settleNow();
    await rpc('anvil_mine', [`0x${(net.auditConfig.randomnessDelay + 1).toString(16)}`]);
    await waitUntil(
      'the validators to commit',
      () =>
        nodes.every((v, i) => {
          const a = v.status().audits;
          return a.pending + a.judged + a.committing === 0 && judgedCount(v) >= expected[i]!;
        }),
      // Every validator checks every job on two cores shared with the rest of the suite.
      480_000,
    );
  }

  /** Moves chain time past the commit deadline and waits for the nodes to reveal what they committed. */
  async function openReveals(nodes: Nodes) {
    await rpc('evm_increaseTime', [window + 1]);
    await rpc('anvil_mine', ['0x1']);
    await waitUntil(
      'the votes to be revealed',
      () => nodes.every((v) => v.status().audits.committed + v.status().audits.revealing === 0),
      120_000,
    );
  }

  /** Moves chain time past the reveal deadline and waits for the nodes to finalize what they revealed. */
  async function closeReveals(nodes: Nodes) {
    await rpc('evm_increaseTime', [window + 1]);
    await rpc('anvil_mine', ['0x1']);
    await waitUntil(
      'the audits to be finalized',
      () => nodes.every((v) => v.status().audits.revealed === 0),
      120_000,
    );
  }

  /** Commit, reveal, finalize: the whole audit round after the nodes committed. */
  async function closeWindow(nodes: Nodes) {
    await openReveals(nodes);
    await closeReveals(nodes);
  }

  async function finalizedSince(fromBlock: bigint): Promise<Finalized[]> {
    const logs = await publicClient.getLogs({
      address: net.contracts.grid,
      fromBlock,
      event: gridAbi.find((x) => x.type === 'event' && x.name === 'AuditFinalized') as never,
    });
    return parseEventLogs({ abi: gridAbi, logs, eventName: 'AuditFinalized' }).map((l) => ({
      leaf: l.args.leaf,
      worker: l.args.worker,
      verdict: l.args.verdict,
      slashed: l.args.slashed,
    }));
  }

  const earningsOf = (account: Address) =>
    publicClient.readContract({
      address: net.contracts.grid,
      abi: gridAbi,
      functionName: 'earningsOf',
      args: [account],
    });

  return {
    publicClient,
    rpc,
    chat,
    streamChat,
    refusedChat,
    balance,
    settleAndCommit,
    openReveals,
    closeReveals,
    closeWindow,
    finalizedSince,
    earningsOf,
  };
}
