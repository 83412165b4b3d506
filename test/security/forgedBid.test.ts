/**
 * Signed bids on the real broker and registry: honest agent hosts sign what
 * they write, a coordinator that requires signatures refuses a forged bid
 * (another agent's id, a valid schema, a higher price) — unsigned, signed
 * by another agent's key, or by a key nobody registered — with a Rejection
 * in its transaction, counts it in mabeam_forged_events_total, and the
 * honest highest bidder wins. Replay with signatures required decides the
 * same; replay of a log whose coordinator did not verify finds the forged
 * bid it counted.
 */
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { IHeaders, KafkaMessage, Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest, Rejection, RoundOutcome } from '../../src/events/types.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { readHistory } from '../../src/replay/readHistory.ts';
import { replayHistory } from '../../src/replay/replayRounds.ts';
import { sharedProtocols } from '../../src/protocols/builtins.ts';
import { loadKeyDirectory } from '../../src/security/directoryFollower.ts';
import { createKey, readKey, type AgentKey } from '../../src/security/keys.ts';
import { signatureHeaders, signingHeaders } from '../../src/security/signing.ts';
import { collectRaw, testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

const keysDir = mkdtempSync(join(tmpdir(), 'mabeam-forged-keys-'));

/** Honest bidders: a bids 10 (slowly, so a forged bid in its name comes first), b 30, c 20; mallory is registered but never bids. */
function hostFor(ctx: TestContext, pool: string): AgentHost {
  const bidder = (id: string, amount: number, delayMs = 0) =>
    defineAgent({ id, role: 'worker', capabilities: ['gpu'], onBidRequest: async () => {
      await sleep(delayMs);
      return { amount };
    } });
  const host = new AgentHost({
    kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool, keysDir,
    agents: [bidder('a', 10, 700), bidder('b', 30), bidder('c', 20), defineAgent({ id: 'mallory', role: 'worker', capabilities: [] })],
  });
  ctx.defer(() => host.stop());
  return host;
}

const request = (roundId: string): BidRequest => ({
  envelope: newEnvelope('BidRequest', 'client', { correlationId: roundId }),
  roundId, protocol: 'first-price', item: '"4 gpu-hours"', requiredCapabilities: [], eligibleAgents: ['a', 'b', 'c'], reservePrice: null, deadline: Date.now() + 20_000, parameters: null,
});

/** A bid in a's name at 100, written with a plain kafkajs producer: valid Avro, signed as `sign` says. */
async function forge(ctx: TestContext, producer: Producer, roundId: string, sign: AgentKey | null): Promise<string> {
  const bid: Bid = { envelope: newEnvelope('Bid', 'a', { correlationId: roundId }), roundId, agentId: 'a', amount: 100, bundle: [], attributes: null };
  const value = await ctx.codec.encode('Bid', bid);
  const headers: IHeaders = sign ? signingHeaders(roundId, value, sign) : {};
  await producer.send({ topic: ctx.topic('bids'), messages: [{ key: roundId, value, headers }] });
  return bid.envelope.eventId;
}

async function roundLog(ctx: TestContext, roundId: string, messages: KafkaMessage[]) {
  const decoded = await Promise.all(messages.map((m) => ctx.codec.decode<Record<string, unknown>>(m.value)));
  return decoded.filter((d) => d.event['roundId'] === roundId || d.event['subjectId'] === roundId);
}

async function outcomeOf(ctx: TestContext, roundId: string, outcomes: Awaited<ReturnType<typeof collectRaw>>) {
  return waitFor(async () => {
    const log = await roundLog(ctx, roundId, outcomes.messages);
    return log.some((d) => d.type === 'RoundOutcome') && log;
  }, { what: `the outcome of ${roundId}`, crashed: outcomes.crashed, timeoutMs: 30_000 });
}

describe('a coordinator that requires signatures', () => {
  let ctx: TestContext;
  let coordinator: Coordinator;
  beforeAll(async () => {
    ctx = await testContext('forged');
    coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, metrics: ctx.metrics, requireSignatures: true });
    ctx.defer(() => coordinator.stop());
    await coordinator.start();
  });
  afterAll(() => ctx?.close());

  it('refuses forged bids (unsigned, another agent\'s key, an unknown key) with Rejections, counts them, and the honest highest bidder wins; replay decides the same', async () => {
    expect(coordinator.verifiesSignatures).toBe(true);
    const outcomes = await collectRaw(ctx, ctx.topic('outcomes'));
    const bids = await collectRaw(ctx, ctx.topic('bids'));
    await hostFor(ctx, 'honest').start();
    const mallory = readKey('mallory', { dir: keysDir })!;
    const stranger = createKey('stranger', { dir: mkdtempSync(join(tmpdir(), 'mabeam-stranger-')) });
    const producer = await ctx.producer();
    const events = new EventProducer(producer, ctx.codec);

    const cases = [
      { label: 'unsigned', signer: null, reasonCode: 'FORGED', reason: /not signed/ },
      { label: 'mallory', signer: mallory, reasonCode: 'FORGED', reason: /of agent mallory/ },
      { label: 'stranger', signer: stranger, reasonCode: 'UNKNOWN_KEY', reason: /not registered for agent a/ },
    ] as const;
    const rounds: string[] = [];
    for (const c of cases) {
      const roundId = uniqueName(`forged-${c.label}`);
      rounds.push(roundId);
      await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', request(roundId));
      const forgedId = await forge(ctx, producer, roundId, c.signer);
      const log = await outcomeOf(ctx, roundId, outcomes);
      const rejections = log.filter((d) => d.type === 'Rejection').map((d) => d.event as unknown as Rejection);
      expect(rejections, c.label).toEqual([expect.objectContaining({ rejectedEventId: forgedId, agentId: 'a', reasonCode: c.reasonCode, reason: expect.stringMatching(c.reason) })]);
      const outcome = log.find((d) => d.type === 'RoundOutcome')!.event as unknown as RoundOutcome;
      expect(outcome, c.label).toMatchObject({ status: 'decided', winners: ['b'], price: 30 });
      const closed = log.find((d) => d.type === 'RoundClosed')!.event as { countedEventIds: string[] };
      expect(closed.countedEventIds).toHaveLength(3);
      expect(closed.countedEventIds).not.toContain(forgedId);
    }

    // The honest bids are signed by their agents' keys.
    const honest = bids.messages.filter((m) => m.headers?.['mabeam-instance'] !== undefined);
    expect(honest.length).toBeGreaterThanOrEqual(9);
    for (const m of honest) expect(m.headers?.[signatureHeaders.sig]).toBeDefined();

    const forged = await ctx.metrics.forgedEvents.get();
    const count = (reason: string) => forged.values.find((v) => v.labels['reason'] === reason && v.labels['topic'] === ctx.topic('bids'))?.value;
    expect(count('FORGED')).toBe(2);
    expect(count('UNKNOWN_KEY')).toBe(1);

    // Replay with signatures required: the same outcomes.
    const keys = await loadKeyDirectory(ctx.kafka, ctx.codec, ctx.prefix);
    const filter = { roundIds: new Set(rounds) };
    const report = replayHistory(await readHistory({ kafka: ctx.kafka, codec: ctx.codec, prefix: ctx.prefix, filter, keys }), sharedProtocols(), filter, { keep: 'all' });
    expect(report.rounds.map((r) => [r.verdict, r.replayed?.winners, r.replayed?.price])).toEqual(rounds.map(() => ['identical', ['b'], 30]));
    expect(report.ok).toBe(true);
  });
});

describe('replay with signatures required, of a coordinator that did not verify', () => {
  let ctx: TestContext;
  beforeAll(async () => {
    ctx = await testContext('unverified');
    const coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, requireSignatures: false });
    ctx.defer(() => coordinator.stop());
    await coordinator.start();
  });
  afterAll(() => ctx?.close());

  it('finds the forged bid that was counted and calls the round different', async () => {
    const outcomes = await collectRaw(ctx, ctx.topic('outcomes'));
    await hostFor(ctx, 'honest').start();
    const producer = await ctx.producer();
    const roundId = uniqueName('counted-forgery');
    await new EventProducer(producer, ctx.codec).send(ctx.topic('bid-requests'), roundId, 'BidRequest', request(roundId));
    const forgedId = await forge(ctx, producer, roundId, null);
    const log = await outcomeOf(ctx, roundId, outcomes);
    // Without verification the forgery wins.
    expect(log.find((d) => d.type === 'RoundOutcome')!.event).toMatchObject({ winners: ['a'], price: 100 });

    const filter = { roundIds: new Set([roundId]) };
    const plain = replayHistory(await readHistory({ kafka: ctx.kafka, codec: ctx.codec, prefix: ctx.prefix, filter }), sharedProtocols(), filter, { keep: 'all' });
    expect(plain.rounds[0]).toMatchObject({ verdict: 'identical' });
    const keys = await loadKeyDirectory(ctx.kafka, ctx.codec, ctx.prefix);
    const verified = replayHistory(await readHistory({ kafka: ctx.kafka, codec: ctx.codec, prefix: ctx.prefix, filter, keys }), sharedProtocols(), filter, { keep: 'all' });
    expect(verified.ok).toBe(false);
    expect(verified.rounds[0]).toMatchObject({ verdict: 'different', forged: [expect.objectContaining({ eventId: forgedId, agentId: 'a', reasonCode: 'FORGED' })], replayed: { winners: ['b'], price: 30 } });
  });
});
