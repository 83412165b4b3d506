import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest, Proposal, RoundOutcome, Vote } from '../../src/events/types.ts';
import { partitionOfKey } from '../../src/engine/routing.ts';
import { createTransactionalProducer } from '../../src/kafka/client.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { defaultProtocols } from '../../src/protocols/builtins.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { replayRounds } from '../../src/replay/replayRounds.ts';
import { runCli, runCliProcess, stopAgentProcess } from '../agentProcesses.ts';
import { collectRaw, testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('replay');
});
afterAll(() => ctx?.close());

const roundTopics = ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes'];
const lowestBid = fileURLToPath(new URL('../fixtures/protocols/lowestBid.ts', import.meta.url));

const mabeam = (args: string[]) => runCli(ctx.stack, args);
const json = (run: { stdout: string }) => JSON.parse(run.stdout) as Record<string, unknown> & { rounds: Array<Record<string, unknown>> };

describe('replay', () => {
  it('re-runs 108 mixed rounds (deadlines and a coordinator crash included) to identical outcomes, from the API and with mabeam replay; names a round given a contradictory outcome; decides first-price rounds again under vickrey and under a protocol module', { timeout: 120_000 }, async () => {
    const raw = await ctx.producer();
    const events = new EventProducer(raw, ctx.codec);
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
        // And every twelfth round (others than those) its request so.
        if (i % 12 === 6) {
          const wrong = (partitionOfKey(Buffer.from(roundId), 12) + 1) % 12;
          await raw.send({ topic: ctx.topic('bid-requests'), messages: [{ key: roundId, value: await ctx.codec.encode('BidRequest', request), partition: wrong }] });
        } else await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', request);
        const bidders = kind === 0 ? ['a', 'b', 'c'] : ['a', 'b'];
        for (const [j, agentId] of bidders.entries()) {
          const bid: Bid = { envelope: env('Bid', agentId), roundId, agentId, amount: ((i * 7 + j * 13) % 50) + 5, bundle: [], attributes: null };
          // Every twelfth round gets one bid on another partition than its key's, as another client's partitioner may put it: the coordinator moves it.
          if (i % 12 === 0 && j === 2) {
            const wrong = (partitionOfKey(Buffer.from(roundId), 12) + 1) % 12;
            await raw.send({ topic: ctx.topic('bids'), messages: [{ key: roundId, value: await ctx.codec.encode('Bid', bid), partition: wrong }] });
          } else await events.send(ctx.topic('bids'), roundId, 'Bid', bid);
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
    // A contradictory outcome written in a transaction that aborts is not in the committed log.
    const aborting = createTransactionalProducer(ctx.kafka, uniqueName('aborting'));
    await aborting.connect();
    ctx.defer(() => aborting.disconnect());
    const tx = await aborting.transaction();
    const r3 = `${ctx.prefix}-r3`;
    await tx.send({ topic: ctx.topic('outcomes'), messages: [{ key: r3, value: await ctx.codec.encode('RoundOutcome', {
      envelope: newEnvelope('RoundOutcome', 'aborted', { correlationId: r3 }), roundId: r3, protocol: 'weighted', status: 'no-decision', winners: [], price: null, value: null,
      reason: 'aborted', details: '{}', subject: null, kind: 'consensus', eligible: [],
    }) }] });
    await tx.abort();

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

    // The same from the command line, in one thread and split among worker threads by partition
    // (the moved bids' first copies are on another share than their rounds): every round identical, exit 0.
    // The commands only read, so they run side by side.
    const [clean1, clean3, human, oneRun, quorum] = await Promise.all([
      mabeam(['replay', '--prefix', ctx.prefix, '--json', '--no-progress', '--workers', '1']),
      mabeam(['replay', '--prefix', ctx.prefix, '--json', '--no-progress', '--workers', '3']),
      mabeam(['replay', '--prefix', ctx.prefix]),
      mabeam(['replay', '--prefix', ctx.prefix, '--round', `${ctx.prefix}-r7`, '--json', '--all', '--no-progress']),
      mabeam(['replay', '--prefix', ctx.prefix, '--protocol', 'quorum', '--json', '--no-progress']),
    ]);
    for (const clean of [clean1, clean3]) {
      expect(clean.code).toBe(0);
      expect(json(clean)).toMatchObject({ identical: 108, different: 0, contradictory: 0, duplicate: 0, incomplete: 0, open: 0, refused: 0, ok: true, rounds: [] });
    }
    expect(human.code).toBe(0);
    expect(human.stdout).toMatch(/replayed 108 rounds from \d[\d,]* events/);
    expect(human.stdout).toMatch(/the log replays identically/);
    // The progress bar is on stderr: records read of records to read, and the rate.
    expect(human.stderr).toMatch(/\d+\/\d+ records \| \d+\/s/);
    // Filters: one round (only its partition is read), one protocol.
    const one = json(oneRun);
    expect(one.rounds.map((r) => [r['roundId'], r['verdict']])).toEqual([[`${ctx.prefix}-r7`, 'identical']]);
    expect(one['events'] as number).toBeLessThan(report.events);
    expect(json(quorum)['identical']).toBe(18);

    // A second, contradictory outcome of one round written into the log: that round is named, exit 3.
    const victim = report.rounds.find((r) => r.protocol === 'first-price')!;
    const forged: RoundOutcome = {
      envelope: newEnvelope('RoundOutcome', 'another-coordinator', { correlationId: victim.roundId }), roundId: victim.roundId, protocol: 'first-price', status: 'no-decision',
      winners: [], price: null, value: null, reason: 'deadline', details: '{}', subject: null, kind: 'auction', eligible: [],
    };
    await events.send(ctx.topic('outcomes'), victim.roundId, 'RoundOutcome', forged);
    // From here on the log stays as it is: the commands run side by side.
    const other = uniqueName('counterfactual');
    const [broken, brokenHuman, bad, noRule, writeToSelf, noTopics, unknown, vickreyRun, vickreyHuman, lowestRun, written] = await Promise.all([
      mabeam(['replay', '--prefix', ctx.prefix, '--json', '--no-progress']),
      mabeam(['replay', '--prefix', ctx.prefix, '--no-progress']),
      mabeam(['replay', '--prefix', ctx.prefix, '--since', 'yesterday-ish']),
      mabeam(['replay', '--prefix', ctx.prefix, '--with', 'no-such-rule']),
      mabeam(['replay', '--prefix', ctx.prefix, '--with', 'vickrey', '--write-to', ctx.prefix]),
      mabeam(['replay', '--prefix', `${ctx.prefix}-typo`]),
      mabeam(['replay', '--prefix', ctx.prefix, '--round', `${ctx.prefix}-r7,no-such-round`, '--json', '--no-progress']),
      mabeam(['replay', '--prefix', ctx.prefix, '--protocol', 'first-price', '--with', 'vickrey', '--json', '--all', '--no-progress']),
      mabeam(['replay', '--prefix', ctx.prefix, '--protocol', 'first-price', '--with', 'vickrey', '--no-progress']),
      mabeam(['replay', '--prefix', ctx.prefix, '--protocol', 'first-price', '--with', lowestBid, '--json', '--all', '--no-progress']),
      mabeam(['replay', '--prefix', ctx.prefix, '--protocol', 'first-price', '--with', 'vickrey', '--write-to', other, '--no-progress']),
    ]);
    expect(broken.code).toBe(3);
    expect(json(broken)).toMatchObject({ identical: 107, contradictory: 1, ok: false });
    expect(json(broken).rounds.map((r) => [r['roundId'], r['verdict'], r['outcomes']])).toEqual([[victim.roundId, 'contradictory', 2]]);
    expect(brokenHuman.code).toBe(3);
    expect(brokenHuman.stdout).toContain(victim.roundId);
    expect(brokenHuman.stdout).toMatch(/does NOT replay identically/);

    // Bad input: exit 2, a clear message.
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/"yesterday-ish" is neither a time/);
    expect(noRule.stderr).toMatch(/No protocol "no-such-rule" \(known: .*vickrey/);
    expect(writeToSelf.code).toBe(2);
    expect(noTopics.code).toBe(2);
    expect(noTopics.stderr).toMatch(/No topic .*-typo\.bid-requests.* is the prefix ".*-typo" right/);
    // A round named that the log knows nothing of is said, and fails the replay.
    expect(unknown.code).toBe(3);
    expect(json(unknown)).toMatchObject({ identical: 1, notFound: ['no-such-round'], ok: false });

    // Counterfactual: the first-price rounds under vickrey. Each winner pays the second-highest bid instead.
    const firstPrice = report.rounds.filter((r) => r.protocol === 'first-price');
    const secondPrices = new Map(firstPrice.map((r) => [r.roundId, r.counted.map((a) => a.amount!).sort((a, b) => b - a)[1]!]));
    const vickrey = json(vickreyRun);
    expect(vickrey).toMatchObject({ protocol: 'vickrey', considered: 18, changed: 18, same: 0, notComparable: 0 });
    const byRound = new Map(vickrey.rounds.map((r) => [r['roundId'] as string, r as { counterfactual: { price: number; winners: string[] }; recorded: { winners: string[] }; differences: Array<{ field: string }> }]));
    for (const [roundId, price] of secondPrices) {
      expect(byRound.get(roundId)!.counterfactual.price).toBe(price);
      expect(byRound.get(roundId)!.counterfactual.winners).toEqual(byRound.get(roundId)!.recorded.winners);
      expect(byRound.get(roundId)!.differences.map((d) => d.field)).toEqual(['price']);
    }
    expect((vickrey['firstChanged'] as { roundId: string }).roundId).toBe(firstPrice[0]!.roundId);
    expect(vickrey['auctions']).toMatchObject({
      priceTotalRecorded: firstPrice.reduce((t, r) => t + r.recorded!.price!, 0),
      priceTotalCounterfactual: [...secondPrices.values()].reduce((t, p) => t + p, 0),
      winnersChanged: 0,
      pricesChanged: 18,
    });
    expect(vickreyHuman.code).toBe(0);
    expect(vickreyHuman.stdout).toMatch(new RegExp(`first round that changes: ${firstPrice[0]!.roundId}`));

    // A registered protocol module works the same way: the lowest bid wins now.
    const lowest = json(lowestRun);
    expect(lowest).toMatchObject({ protocol: 'lowest-bid', considered: 18, changed: 18 });
    for (const r of firstPrice) {
      const low = [...r.counted].sort((a, b) => a.amount! - b.amount!)[0]!;
      expect((lowest.rounds.find((x) => x['roundId'] === r.roundId) as { counterfactual: { winners: string[]; price: number } }).counterfactual).toMatchObject({ winners: [low.agentId], price: low.amount });
    }

    // --write-to: the counterfactual rounds as a history of their own, which replays identically; the recorded log is untouched.
    expect(written.code).toBe(0);
    expect(written.stdout).toMatch(new RegExp(`wrote \\d+ records under ${other}`));
    const [againRun, untouched] = await Promise.all([
      mabeam(['replay', '--prefix', other, '--json', '--all', '--no-progress']),
      mabeam(['replay', '--prefix', ctx.prefix, '--json', '--no-progress']),
    ]);
    const again = json(againRun);
    expect(again).toMatchObject({ identical: 18, ok: true });
    expect(new Map(again.rounds.map((r) => [r['roundId'], (r['recorded'] as { price: number }).price]))).toEqual(secondPrices);
    expect(json(untouched)).toMatchObject({ identical: 107, contradictory: 1 });
  });
});
