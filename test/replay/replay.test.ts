import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest, Proposal, Vote } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { replayRounds } from '../../src/replay/replayRounds.ts';
import { runCliProcess, stopAgentProcess } from '../agentProcesses.ts';
import { collectRaw, testContext, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('replay');
});
afterAll(() => ctx?.close());

const roundTopics = ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes'];

describe('replay', () => {
  it('re-runs 108 mixed rounds (deadlines and a coordinator crash included) from the topics to identical outcomes', { timeout: 120_000 }, async () => {
    const events = new EventProducer(await ctx.producer(), ctx.codec);
    const outcomes = await collectRaw(ctx, ctx.topic('outcomes'));
    const coordinator = () => {
      const p = runCliProcess(ctx.stack, ['coordinator', 'run', '--prefix', ctx.prefix, '--session-timeout-ms', '3000']);
      ctx.defer(() => stopAgentProcess(p));
      return p;
    };

    /** Round i: six kinds, two of which end at their deadline with answers missing. */
    async function round(i: number): Promise<void> {
      const roundId = `${ctx.prefix}-r${i}`;
      const kind = i % 6;
      const soon = Date.now() + 3_000;
      const later = Date.now() + 60_000;
      const env = (type: 'BidRequest' | 'Proposal' | 'Bid' | 'Vote', producer: string) => newEnvelope(type, producer, { correlationId: roundId });
      if (kind <= 1) {
        const request: BidRequest = { envelope: env('BidRequest', 'client'), roundId, protocol: kind === 0 ? 'first-price' : 'vickrey', item: '"slot"', requiredCapabilities: [], eligibleAgents: ['a', 'b', 'c'], reservePrice: kind === 1 ? 3 : null, deadline: kind === 0 ? later : soon, parameters: null };
        await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', request);
        const bidders = kind === 0 ? ['a', 'b', 'c'] : ['a', 'b'];
        for (const [j, agentId] of bidders.entries()) {
          const bid: Bid = { envelope: env('Bid', agentId), roundId, agentId, amount: ((i * 7 + j * 13) % 50) + 5, bundle: [], attributes: null };
          await events.send(ctx.topic('bids'), roundId, 'Bid', bid);
        }
        return;
      }
      const protocol = ['majority', 'weighted', 'unanimous', 'quorum'][kind - 2]!;
      const voters = kind === 5 ? ['a', 'b', 'c', 'd', 'e'] : ['a', 'b', 'c'];
      const proposal: Proposal = { envelope: env('Proposal', 'client'), roundId, protocol, subject: '"size"', options: ['small', 'large'], eligibleVoters: voters, weights: kind === 3 ? { a: 3, b: 1, c: 1 } : {}, quorum: kind === 5 ? 0.6 : null, deadline: kind === 5 ? soon : later, parameters: null };
      await events.send(ctx.topic('proposals'), roundId, 'Proposal', proposal);
      const voting = kind === 5 ? ['a', 'b'] : voters;
      for (const [j, agentId] of voting.entries()) {
        const vote: Vote = { envelope: env('Vote', agentId), roundId, agentId, choice: (i + j) % 3 === 0 ? 'small' : 'large', weight: null, reason: null };
        await events.send(ctx.topic('votes'), roundId, 'Vote', vote);
      }
    }

    const outcomeCount = async () => {
      const decoded = await Promise.all(outcomes.messages.map((m) => ctx.codec.decode(m.value)));
      return decoded.filter((d) => d.type === 'RoundOutcome').length;
    };

    const first = coordinator();
    await first.ready;
    for (let i = 0; i < 60; i++) await round(i);
    await waitFor(async () => (await outcomeCount()) >= 30, { what: '30 outcomes from the first coordinator', crashed: outcomes.crashed, timeoutMs: 30_000 });
    process.kill(first.pid, 'SIGKILL');
    await first.exited;
    const second = coordinator();
    await second.ready;
    for (let i = 60; i < 108; i++) await round(i);
    await waitFor(async () => (await outcomeCount()) >= 108, { what: 'all 108 outcomes', crashed: outcomes.crashed, timeoutMs: 60_000 });

    const log = await readLog(ctx.kafka, ctx.codec, roundTopics.map((t) => ctx.topic(t)));
    // Exactly one outcome per round, across the crash.
    const perRound = new Map<string, number>();
    for (const r of log) if (r.decoded.type === 'RoundOutcome') perRound.set((r.decoded.event as { roundId: string }).roundId, (perRound.get((r.decoded.event as { roundId: string }).roundId) ?? 0) + 1);
    expect(perRound.size).toBe(108);
    expect([...perRound.values()].filter((n) => n !== 1)).toEqual([]);

    const report = await replayRounds(log, defaultProtocols());
    expect(report.incomplete).toBe(0);
    expect(report.rounds).toHaveLength(108);
    expect(report.rounds.filter((r) => !r.identical)).toEqual([]);
    expect(report.identical).toBe(108);
    // Nothing the log holds is left out: no round with a second outcome, no record that did not decode.
    expect(report.repeated).toEqual([]);
    expect(report.undecodable).toEqual([]);
    // Rounds with every answer close complete, the others at their deadline — across the crash
    // too (an answer lost in the takeover would leave its round to the 60 s deadline).
    const wrongCause = report.rounds.filter((r) => r.cause !== ([1, 5].includes(Number(r.roundId.split('-r').pop()) % 6) ? 'deadline' : 'complete'));
    expect(wrongCause.map((r) => `${r.roundId}: ${r.cause}`)).toEqual([]);
    expect(new Set(report.rounds.map((r) => r.protocol))).toEqual(new Set(['first-price', 'vickrey', 'majority', 'weighted', 'unanimous', 'quorum']));
  });
});
