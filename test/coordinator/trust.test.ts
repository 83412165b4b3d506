/**
 * Exactly one outcome per round, whatever producers and coordinators do:
 * records on partitions their key does not hash to (a librdkafka producer),
 * a coordinator restarted over answers to rounds that never opened, and a
 * coordinator paused past its session timeout that wakes up mid-burst.
 * Real coordinator processes on the real broker and registry.
 */
import type { KafkaMessage, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest } from '../../src/events/types.ts';
import { partitionOfKey } from '../../src/engine/routing.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { runCliProcess, stopAgentProcess } from '../agentProcesses.ts';
import { collectRaw, testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
let producer: Producer;
let events: EventProducer;
let outcomes: Awaited<ReturnType<typeof collectRaw>>;
const partitions = 12;

beforeAll(async () => {
  ctx = await testContext('trust');
  producer = await ctx.producer();
  events = new EventProducer(producer, ctx.codec);
  outcomes = await collectRaw(ctx, ctx.topic('outcomes'));
});
afterAll(() => ctx?.close());

function coordinatorProcess() {
  const p = runCliProcess(ctx.stack, ['coordinator', 'run', '--prefix', ctx.prefix, '--session-timeout-ms', '3000']);
  ctx.defer(() => stopAgentProcess(p));
  return p;
}

const request = (roundId: string, eligible: string[], deadlineMs: number): BidRequest => ({
  envelope: newEnvelope('BidRequest', 'client', { correlationId: roundId }),
  roundId, protocol: 'first-price', item: '"slot"', requiredCapabilities: [], eligibleAgents: eligible, reservePrice: null, deadline: Date.now() + deadlineMs, parameters: null,
});
const bid = (roundId: string, agentId: string, amount: number): Bid => ({ envelope: newEnvelope('Bid', agentId, { correlationId: roundId }), roundId, agentId, amount, bundle: [], attributes: null });

/** Produces an event to a partition its key does not hash to, as another client's partitioner might. */
async function sendMisplaced(topic: string, key: string, type: string, event: object): Promise<number> {
  const right = partitionOfKey(Buffer.from(key), partitions);
  const wrong = (right + 1 + Math.floor(Math.random() * (partitions - 1))) % partitions;
  await producer.send({ topic: ctx.topic(topic), messages: [{ key, value: await ctx.codec.encode(type, event), partition: wrong }] });
  return wrong;
}

/** Everything on `outcomes` by round, decoded. */
async function byRound(messages: KafkaMessage[]): Promise<Map<string, Array<{ type: string; event: Record<string, unknown> }>>> {
  const map = new Map<string, Array<{ type: string; event: Record<string, unknown> }>>();
  for (const m of messages) {
    const d = await ctx.codec.decode<Record<string, unknown>>(m.value);
    const id = (d.event['roundId'] ?? d.event['subjectId']) as string;
    map.set(id, [...(map.get(id) ?? []), { type: d.type, event: d.event }]);
  }
  return map;
}

async function outcomesOf(roundIds: string[], what: string, timeoutMs = 60_000) {
  return waitFor(async () => {
    const map = await byRound(outcomes.messages);
    return roundIds.every((id) => map.get(id)?.some((e) => e.type === 'RoundOutcome')) && map;
  }, { what, crashed: outcomes.crashed, timeoutMs });
}

/** A round decided after everything else: once its outcome is read, what came before is written. */
async function barrier(): Promise<void> {
  const id = uniqueName('barrier');
  await events.send(ctx.topic('bid-requests'), id, 'BidRequest', request(id, ['a'], 60_000));
  await events.send(ctx.topic('bids'), id, 'Bid', bid(id, 'a', 1));
  await outcomesOf([id], 'the barrier round');
}

describe('outcomes you can trust', () => {
  it('requests and bids on the wrong partitions, three coordinators: exactly one outcome per round, the right winner', async () => {
    const coordinators = [coordinatorProcess(), coordinatorProcess(), coordinatorProcess()];
    await Promise.all(coordinators.map((c) => c.ready));
    const rounds = Array.from({ length: 12 }, (_, i) => uniqueName(`placed-${i}`));
    for (const [i, roundId] of rounds.entries()) {
      // The request on a wrong partition, the bids on others (each its own), and a deadline that passes afterwards.
      await sendMisplaced('bid-requests', roundId, 'BidRequest', request(roundId, ['a', 'b', 'c'], 4_000));
      await sendMisplaced('bids', roundId, 'Bid', bid(roundId, 'a', 10 + i));
      await sendMisplaced('bids', roundId, 'Bid', bid(roundId, 'b', 30 + i));
      await sendMisplaced('bids', roundId, 'Bid', bid(roundId, 'c', 20 + i));
    }
    const map = await outcomesOf(rounds, 'the outcome of every round');
    // Past every deadline: a coordinator that held only a misplaced request would decide "no-decision" now.
    await new Promise((resolve) => setTimeout(resolve, 5_000));
    await barrier();
    const after = await byRound(outcomes.messages);
    for (const [i, roundId] of rounds.entries()) {
      const list = after.get(roundId) ?? [];
      const decided = list.filter((e) => e.type === 'RoundOutcome');
      expect(decided, roundId).toHaveLength(1);
      expect(decided[0]!.event).toMatchObject({ status: 'decided', winners: ['b'], price: 30 + i });
      expect(list.filter((e) => e.type === 'RoundClosed')).toHaveLength(1);
      expect(list.filter((e) => e.type === 'Rejection')).toHaveLength(0);
    }
    expect(map.size).toBeGreaterThan(0);
    await Promise.all(coordinators.map((c) => stopAgentProcess(c)));
  });

  it('a coordinator restarted over answers to rounds that never opened decides the next round, and refuses each answer once', async () => {
    const first = coordinatorProcess();
    await first.ready;
    const ghosts = Array.from({ length: 20 }, (_, i) => uniqueName(`ghost-${i}`));
    // Answers to rounds that never open, some with a log time already past the grace period.
    for (const [i, ghost] of ghosts.entries()) {
      const answer = bid(ghost, 'x', 5);
      if (i % 2 === 0) answer.envelope = { ...answer.envelope, eventTime: Date.now() - 60_000 };
      await events.send(ctx.topic('bids'), ghost, 'Bid', answer);
    }
    await barrier();
    process.kill(first.pid, 'SIGKILL');
    await first.exited;
    const second = coordinatorProcess();
    await second.ready;
    const next = uniqueName('next');
    await events.send(ctx.topic('bid-requests'), next, 'BidRequest', request(next, ['a', 'b'], 60_000));
    await events.send(ctx.topic('bids'), next, 'Bid', bid(next, 'a', 3));
    await events.send(ctx.topic('bids'), next, 'Bid', bid(next, 'b', 4));
    const map = await outcomesOf([next], 'the next round after the restart');
    expect(map.get(next)!.find((e) => e.type === 'RoundOutcome')!.event).toMatchObject({ status: 'decided', winners: ['b'], price: 4 });
    // Every ghost answer is refused (at once, or when the clock passes its grace period), and only once.
    const refusals = await waitFor(async () => {
      const m = await byRound(outcomes.messages);
      return ghosts.every((g) => (m.get(g) ?? []).length > 0) && m;
    }, { what: 'a refusal of every ghost answer', timeoutMs: 40_000 }).catch(async (error: unknown) => {
      const m = await byRound(outcomes.messages);
      throw new Error(`${String(error)}; refused: ${ghosts.map((g) => (m.get(g) ?? []).length).join(',')}`);
    });
    await barrier();
    const final = await byRound(outcomes.messages);
    for (const ghost of ghosts) {
      expect((final.get(ghost) ?? []).map((e) => `${e.type}:${String(e.event['reasonCode'])}`), ghost).toEqual(['Rejection:UNKNOWN_ROUND']);
    }
    expect(refusals.size).toBeGreaterThan(0);
    expect(second.stderr()).not.toMatch(/stopped for good/);
  });

  it('a coordinator paused past its session timeout mid-burst, another takes over, then it resumes: exactly one outcome per round', async () => {
    const paused = coordinatorProcess();
    await paused.ready;
    const rounds = Array.from({ length: 40 }, (_, i) => uniqueName(`burst-${i}`));
    const send = async (roundId: string, i: number) => {
      await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', request(roundId, ['a', 'b'], 20_000));
      await events.send(ctx.topic('bids'), roundId, 'Bid', bid(roundId, 'a', i));
      await events.send(ctx.topic('bids'), roundId, 'Bid', bid(roundId, 'b', i + 1));
    };
    // A burst at once, and the pause as soon as its first outcome is out: the coordinator is mid-work.
    const burst = Promise.all(rounds.slice(0, 15).map((roundId, i) => send(roundId, i)));
    await outcomesOf(rounds.slice(0, 1), 'the first outcome of the burst');
    process.kill(paused.pid, 'SIGSTOP');
    await burst;
    let resumed = false;
    ctx.defer(() => !resumed && process.kill(paused.pid, 'SIGCONT'));
    // Sent while it sleeps: fetched by no one until the other takes over.
    for (const [i, roundId] of rounds.slice(15, 30).entries()) await send(roundId, 15 + i);
    const other = coordinatorProcess();
    await other.ready;
    await outcomesOf(rounds.slice(0, 30), 'the other coordinator to decide the rounds', 60_000);
    process.kill(paused.pid, 'SIGCONT');
    resumed = true;
    for (const [i, roundId] of rounds.slice(30).entries()) await send(roundId, 30 + i);
    await outcomesOf(rounds, 'every round of the burst', 60_000);
    await barrier();
    const final = await byRound(outcomes.messages);
    for (const [i, roundId] of rounds.entries()) {
      const list = final.get(roundId) ?? [];
      expect(list.filter((e) => e.type === 'RoundOutcome'), roundId).toHaveLength(1);
      expect(list.find((e) => e.type === 'RoundOutcome')!.event).toMatchObject({ status: 'decided', winners: ['b'], price: i + 1 });
      expect(list.filter((e) => e.type === 'RoundClosed')).toHaveLength(1);
    }
  });
});
