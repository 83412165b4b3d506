import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { auditAgent, auditRound, auditVariable, describeCause, lifecycleStory, type AnswerInfo, type LifecycleStep, type RoundAudit } from '../../src/audit/index.ts';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { RoundClient } from '../../src/coordinator/roundClient.ts';
import { partitionOfKey } from '../../src/engine/routing.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest, Directive } from '../../src/events/types.ts';
import { createTransactionalProducer } from '../../src/kafka/client.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { VariablesClient } from '../../src/variables/client.ts';
import { proposeVariableChange } from '../../src/variables/consensus.ts';
import { adaptationRate, agentSelection } from '../../src/variables/model.ts';
import { VariableOwner } from '../../src/variables/owner.ts';
import { runCli } from '../agentProcesses.ts';
import { testContext, uniqueName, waitFor, type TestContext } from '../helpers.ts';

/**
 * Audits of histories made on the real stack: one coordinator and one
 * variable owner in this process, agents in hosts, requests and answers
 * produced as any client would (some on the wrong partition, some in an
 * aborted transaction, some garbage).
 */
let ctx: TestContext;
let events: EventProducer;
let coordinator: Coordinator;
let rounds: RoundClient;
let variables: VariablesClient;
let bidders: AgentHost;
const directivesSeen: string[] = [];

/** English bidders: each bids the asking price up to its value, then passes. */
const values: Record<string, number> = { e1: 40, e2: 95, e3: 70 };
const bidder = (id: string) =>
  defineAgent({
    id,
    role: 'bidder',
    capabilities: ['english'],
    onBidRequest: (request: BidRequest) => {
      const p = (request.parameters ? JSON.parse(request.parameters) : {}) as Record<string, unknown>;
      if (p['leader'] === id) return undefined;
      const asking = (p['asking'] ?? p['startPrice'] ?? 0) as number;
      return asking <= values[id]! ? { amount: asking } : { amount: 0, attributes: { pass: true } };
    },
    onDirective: (d: Directive) => {
      directivesSeen.push(`${id}:${d.action}`);
      if (d.action === 'reconfigure') throw new Error('this agent cannot be reconfigured');
    },
  });
const bidderHost = () => new AgentHost({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'audit-bidders', agents: Object.keys(values).map(bidder) });

beforeAll(async () => {
  ctx = await testContext('audit');
  const conn = { kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions };
  coordinator = new Coordinator(conn);
  const owner = new VariableOwner(conn);
  bidders = bidderHost();
  const voters = new AgentHost({
    ...conn, pool: 'audit-voters',
    agents: ['v1', 'v2', 'v3'].map((id) => defineAgent({ id, role: 'voter', capabilities: ['vote'], onProposal: () => ({ choice: 'yes' }) })),
  });
  rounds = new RoundClient({ kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix });
  variables = new VariablesClient({ kafka: ctx.kafka, codec: ctx.codec, producer: await ctx.producer(), logger: ctx.logger, prefix: ctx.prefix });
  ctx.defer(() => coordinator.stop());
  ctx.defer(() => owner.stop());
  ctx.defer(() => bidders.stop());
  ctx.defer(() => voters.stop());
  ctx.defer(() => rounds.stop());
  ctx.defer(() => variables.stop());
  await Promise.all([coordinator.start(), owner.start(), bidders.start(), voters.start(), rounds.start(), variables.start()]);
  events = new EventProducer(await ctx.producer(), ctx.codec);
});
afterAll(() => ctx?.close());

const audit = { get conn() { return { kafka: ctx.kafka, codec: ctx.codec, prefix: ctx.prefix, definitions: ctx.definitions }; } };

const bidRequest = (roundId: string, protocol: string, eligibleAgents: string[], over: Partial<BidRequest> = {}): BidRequest => ({
  envelope: newEnvelope('BidRequest', 'client', { correlationId: roundId }),
  roundId, protocol, item: '"4 gpu-hours"', requiredCapabilities: [], eligibleAgents, reservePrice: null, deadline: Date.now() + 60_000, parameters: null, ...over,
});
const bid = (roundId: string, agentId: string, amount: number): Bid => ({ envelope: newEnvelope('Bid', agentId, { correlationId: roundId }), roundId, agentId, amount, bundle: [], attributes: null });
const answersOf = (a: RoundAudit, agentId: string): AnswerInfo[] => a.answers.filter((x) => x.agentId === agentId);

const mabeam = (args: string[]) => runCli(ctx.stack, args);

let sealed: string;

describe('auditRound', () => {
  it('tells a sealed-bid round: every bid with its verdict and reason, the closing, who won and why, the award and where each is', { timeout: 60_000 }, async () => {
    sealed = uniqueName('sealed');
    const partition = partitionOfKey(Buffer.from(sealed), 12);
    const wrong = (partition + 5) % 12;
    const producer = await ctx.producer();
    await events.send(ctx.topic('bid-requests'), sealed, 'BidRequest', bidRequest(sealed, 'first-price', ['a', 'b', 'c'], { reservePrice: 5 }));
    const first = bid(sealed, 'a', 10);
    await events.send(ctx.topic('bids'), sealed, 'Bid', first);
    await events.send(ctx.topic('bids'), sealed, 'Bid', bid(sealed, 'e2', 12)); // not a bidder of this round
    await events.send(ctx.topic('bids'), sealed, 'Bid', bid(sealed, 'b', 4)); // under the reserve
    await events.send(ctx.topic('bids'), sealed, 'Bid', bid(sealed, 'b', 30));
    await events.send(ctx.topic('bids'), sealed, 'Bid', bid(sealed, 'a', 50)); // a second bid of a
    // A bid in a transaction that aborts is not in the committed log.
    const txProducer = createTransactionalProducer(ctx.kafka, uniqueName('aborting'));
    await txProducer.connect();
    ctx.defer(() => txProducer.disconnect());
    const tx = await txProducer.transaction();
    await tx.send({ topic: ctx.topic('bids'), messages: [{ key: sealed, value: await ctx.codec.encode('Bid', bid(sealed, 'c', 999)) }] });
    await tx.abort();
    // Garbage on the round's partition, and a copy of a's first bid (same event id).
    await producer.send({ topic: ctx.topic('bids'), messages: [{ key: sealed, value: Buffer.from('{"amount": 1}'), partition }] });
    await producer.send({ topic: ctx.topic('bids'), messages: [{ key: sealed, value: await ctx.codec.encode('Bid', first) }] });
    // c's bid on another partition than its key's: the coordinator moves it, then counts it.
    await producer.send({ topic: ctx.topic('bids'), messages: [{ key: sealed, value: await ctx.codec.encode('Bid', bid(sealed, 'c', 20)), partition: wrong }] });

    await waitFor(async () => (await auditRound(audit.conn, sealed)).outcome, { what: 'the outcome', timeoutMs: 30_000 });
    await events.send(ctx.topic('bids'), sealed, 'Bid', bid(sealed, 'c', 25)); // after the close
    const a = await waitFor(async () => {
      const r = await auditRound(audit.conn, sealed);
      return answersOf(r, 'c').some((x) => x.amount === 25 && x.verdict === 'refused') && r;
    }, { what: 'the late bid refused', timeoutMs: 30_000 });
    // The coordinator has decided on everything: the audit read the request and answer topics from just before the round until it had every record the outputs name.
    expect(a.read.whole).toBe(false);

    expect(a).toMatchObject({ roundId: sealed, state: 'decided', protocol: 'first-price', kind: 'auction', partition });
    expect(a.read.partition).toBe(partition);
    expect(a.request).toMatchObject({ type: 'BidRequest', protocol: 'first-price', subject: '4 gpu-hours', eligible: ['a', 'b', 'c'], reservePrice: 5, sentBy: 'client', stage: 0 });
    expect(a.request!.position).toMatchObject({ topic: ctx.topic('bid-requests'), partition });
    // Each bidder with its amount and what became of the bid.
    const verdicts = a.answers.map((x) => [x.agentId, x.amount, x.verdict, x.refusal?.reasonCode ?? null]);
    expect(verdicts).toEqual([
      ['a', 10, 'counted', null],
      ['e2', 12, 'refused', 'NOT_ELIGIBLE'],
      ['b', 4, 'refused', 'BELOW_RESERVE'],
      ['b', 30, 'counted', null],
      ['a', 50, 'refused', 'DUPLICATE_ANSWER'],
      ['c', 20, 'counted', null],
      ['c', 25, 'refused', 'ROUND_CLOSED'],
    ]);
    expect(answersOf(a, 'e2')[0]!.refusal!.reason).toMatch(/e2 is not one of the bidders/);
    expect(a.answers.every((x) => x.position.topic === ctx.topic('bids') && x.position.partition === partition)).toBe(true);
    // The aborted bid is nowhere; the copy of a's bid is one answer with a copy the coordinator refused.
    expect(a.answers.some((x) => x.amount === 999)).toBe(false);
    const a10 = answersOf(a, 'a')[0]!;
    expect(a10.duplicates).toHaveLength(1);
    expect(a10.duplicateRefusals.map((f) => f.reasonCode)).toEqual(['DUPLICATE_EVENT']);
    // The bid written elsewhere was moved to the round's partition.
    const c20 = answersOf(a, 'c')[0]!;
    expect(c20.position.forwardedFrom).toEqual({ partition: wrong, offset: expect.any(Number) });
    // The garbage is listed where it is.
    expect(a.undecodable).toEqual([expect.objectContaining({ topic: ctx.topic('bids'), partition, code: 'BAD_MAGIC_BYTE' })]);

    expect(a.closed).toMatchObject({ cause: 'complete', final: true, stage: 0, countedAgents: ['a', 'b', 'c'] });
    expect(a.outcome).toMatchObject({ status: 'decided', winners: ['b'], price: 30, reason: 'highest bid 30' });
    expect(a.outcomes).toHaveLength(1);
    // The coordinator's outputs: where, and written in a transaction of the partition's producer.
    for (const output of [a.closed!, a.outcome!]) {
      expect(output.position).toMatchObject({ topic: ctx.topic('outcomes'), partition });
      expect(output.writtenBy).toMatchObject({ transactional: true, producerId: expect.any(String) });
    }
    expect(a.closed!.writtenBy!.producerId).toBe(a.outcome!.writtenBy!.producerId);
    // The award is on the winner's partition of the directives topic, with the id derived from the round.
    expect(a.directives).toEqual([expect.objectContaining({ agentId: 'b', action: 'award', expectedId: true, parameters: { roundId: sealed, price: 30 } })]);
    expect(a.directives[0]!.position).toMatchObject({ topic: ctx.topic('directives'), partition: partitionOfKey(Buffer.from('b'), 6) });
    expect(a.directives[0]!.writtenBy).toMatchObject({ producerId: a.outcome!.writtenBy!.producerId, transactional: true });
    expect(a.read.directivePartitions).toEqual([partitionOfKey(Buffer.from('b'), 6)]);
    expect(a.missingDirectives).toEqual([]);
  });

  it('a round closed by its deadline says so, and counts the bids it had', { timeout: 30_000 }, async () => {
    const roundId = uniqueName('late');
    await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', bidRequest(roundId, 'vickrey', ['a', 'b', 'c'], { deadline: Date.now() + 1_500 }));
    await events.send(ctx.topic('bids'), roundId, 'Bid', bid(roundId, 'a', 8));
    await events.send(ctx.topic('bids'), roundId, 'Bid', bid(roundId, 'b', 6));
    const open = await auditRound(audit.conn, roundId);
    expect(open.state === 'open' || open.closed?.cause === 'deadline').toBe(true);
    const a = await waitFor(async () => {
      const r = await auditRound(audit.conn, roundId);
      return r.outcome && r;
    }, { what: 'the deadline', timeoutMs: 20_000 });
    expect(a.closed).toMatchObject({ cause: 'deadline', countedAgents: ['a', 'b'] });
    expect(a.outcome).toMatchObject({ status: 'decided', winners: ['a'], price: 6 });
    expect(a.answers.map((x) => x.verdict)).toEqual(['counted', 'counted']);
  });

  it('an English auction shows each stage: the requests the coordinator wrote, their closings and the bids of each', { timeout: 60_000 }, async () => {
    const roundId = uniqueName('english');
    const outcome = await rounds.auction({ roundId, protocol: 'english', item: 'a licence', bidders: ['e1', 'e2', 'e3'], parameters: { increment: 10, startPrice: 10 } });
    expect(outcome).toMatchObject({ status: 'decided', winners: ['e2'] });
    const a = await waitFor(async () => {
      const r = await auditRound(audit.conn, roundId);
      return r.directives.length > 0 && r;
    }, { what: 'the award of the English auction' });
    expect(a.stages.length).toBeGreaterThan(3);
    expect(a.stages.map((s) => s.stage)).toEqual(a.stages.map((_, i) => i));
    expect(a.stages.map((s) => s.closed?.final)).toEqual(a.stages.map((_, i) => i === a.stages.length - 1));
    expect(a.stages[0]!.request).toBe(a.request);
    expect(a.request!.sentBy).toBe(rounds.clientId);
    for (const s of a.stages.slice(1)) {
      expect(s.request).toMatchObject({ stage: s.stage, sentBy: coordinator.instanceId, type: 'BidRequest' });
      expect(s.request!.writtenBy).toMatchObject({ transactional: true });
      expect((s.request!.parameters as { asking: number }).asking).toBeGreaterThan(10);
    }
    // Every bid belongs to a stage and was counted there; the last stage brings only passes.
    expect(a.answers.length).toBeGreaterThan(4);
    expect(a.answers.every((x) => x.verdict === 'counted' && x.stage !== null)).toBe(true);
    expect(a.answers.filter((x) => x.stage === a.stages.length - 1).every((x) => x.pass)).toBe(true);
    expect(a.closed).toMatchObject({ final: true, stage: a.stages.length - 1 });
    expect(a.outcome).toMatchObject({ status: 'decided', winners: ['e2'], price: outcome.price });
    expect(a.directives).toEqual([expect.objectContaining({ agentId: 'e2', action: 'award' })]);
  });

  it('a refused request: the round is refused, with the reason code, and so are its answers', { timeout: 30_000 }, async () => {
    const roundId = uniqueName('lottery');
    await events.send(ctx.topic('bid-requests'), roundId, 'BidRequest', bidRequest(roundId, 'lottery', ['a']));
    const a = await waitFor(async () => {
      const r = await auditRound(audit.conn, roundId);
      return r.request?.refused && r;
    }, { what: 'the refusal of the request' });
    expect(a).toMatchObject({ state: 'refused', protocol: 'lottery', request: { refused: { reasonCode: 'UNKNOWN_PROTOCOL', reason: expect.stringContaining('lottery') } } });
    expect(a.request!.refused!.position).toMatchObject({ topic: ctx.topic('outcomes'), partition: a.partition });
    expect(a.outcomes).toEqual([]);
    expect(a.directives).toEqual([]);
    expect(a.read.directivePartitions).toEqual([]);
  });

  it('a round the log does not hold is NOT_IN_LOG', async () => {
    await expect(auditRound(audit.conn, uniqueName('never'))).rejects.toMatchObject({ code: 'NOT_IN_LOG' });
  });

  it('mabeam audit round R --json prints the audit; an unknown round exits 1 with NOT_IN_LOG', { timeout: 60_000 }, async () => {
    const found = await mabeam(['audit', 'round', sealed, '--prefix', ctx.prefix, '--json']);
    expect(found.code).toBe(0);
    const parsed = JSON.parse(found.stdout) as RoundAudit;
    expect(parsed).toMatchObject({ roundId: sealed, state: 'decided', outcome: { winners: ['b'], price: 30 }, closed: { cause: 'complete' } });
    expect(parsed.answers.filter((x) => x.verdict === 'refused').map((x) => x.refusal!.reasonCode)).toEqual(['NOT_ELIGIBLE', 'BELOW_RESERVE', 'DUPLICATE_ANSWER', 'ROUND_CLOSED']);
    const story = await mabeam(['audit', 'round', sealed, '--prefix', ctx.prefix]);
    expect(story.code).toBe(0);
    expect(story.stdout).toMatch(/first-price auction, decided\n\s+b won at 30 — highest bid 30/);
    expect(story.stdout).toMatch(/e2\s+12\s+\S+\s+refused NOT_ELIGIBLE/);
    expect(story.stdout).toMatch(/award to b/);
    const missing = await mabeam(['audit', 'round', 'no-such-round', '--prefix', ctx.prefix]);
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/no-such-round.*\[NOT_IN_LOG\]/);
  });
});

describe('auditVariable', () => {
  it('tells every version with its cause and request, and every refused change with its reason', { timeout: 60_000 }, async () => {
    const id = uniqueName('rate');
    await variables.define(adaptationRate(id, { min: 0, max: 1, initial: 0.1 }));
    await variables.set(id, 0.2);
    await variables.set(id, 0.3, { expectedVersion: 2 });
    await expect(variables.set(id, 0.9, { expectedVersion: 2 })).rejects.toMatchObject({ details: { reasonCode: 'STALE_VERSION' } });
    await expect(variables.set(id, 5)).rejects.toMatchObject({ details: { reasonCode: 'OUT_OF_RANGE' } });

    const a = await auditVariable(audit.conn, id);
    expect(a.read.partitions).toEqual({ [ctx.topic('variable-requests')]: partitionOfKey(Buffer.from(id), 6), [ctx.topic('variable-changes')]: partitionOfKey(Buffer.from(id), 6) });
    expect(a.current).toEqual({ version: 3, value: 0.3 });
    expect(a.definition).toMatchObject({ id, type: 'adaptation_rate' });
    expect(a.versions.map((v) => [v.version, v.previousValue, v.value, v.cause.kind, v.writerId])).toEqual([
      [1, null, 0.1, 'define', variables.clientId],
      [2, 0.1, 0.2, 'set', variables.clientId],
      [3, 0.2, 0.3, 'compare-and-set', variables.clientId],
    ]);
    expect(a.versions[2]!.cause).toMatchObject({ expectedVersion: 2, summary: 'compare-and-set on version 2' });
    for (const v of a.versions) {
      expect(v.request).toMatchObject({ requesterId: variables.clientId });
      expect(v.writtenBy).toMatchObject({ transactional: true });
      expect(v.position.topic).toBe(ctx.topic('variable-changes'));
    }
    expect(a.refused.map((f) => [f.reasonCode, f.attemptedValue, f.cause?.kind])).toEqual([
      ['STALE_VERSION', 0.9, 'compare-and-set'],
      ['OUT_OF_RANGE', 5, 'set'],
    ]);
    expect(a.refused[0]!.reason).toMatch(/is at version 3, not 2/);
    expect(a.unanswered).toEqual([]);
    const story = await mabeam(['audit', 'variable', id, '--prefix', ctx.prefix]);
    expect(story.code).toBe(0);
    expect(story.stdout).toMatch(/^Variable \S+: version 3, value 0\.3$/m);
    expect(story.stdout).toMatch(/3\s+0\.3\s+0\.2\s+\S+\s+compare-and-set on version 2/);
    expect(story.stdout).toMatch(/STALE_VERSION: \S+ is at version 3, not 2/);
  });

  it('a consensus-gated change names its round; the round audit shows the vote', { timeout: 60_000 }, async () => {
    const id = uniqueName('team');
    await variables.define(agentSelection(id, { agents: ['v1', 'v2', 'v3'], initial: ['v1'] }));
    const applied = await proposeVariableChange(variables, rounds, id, ['v1', 'v2']);
    expect(applied).toMatchObject({ version: 2 });
    const a = await auditVariable(audit.conn, id);
    const v2 = a.versions.find((v) => v.version === 2)!;
    expect(v2).toMatchObject({ previousValue: ['v1'], value: ['v1', 'v2'], cause: { kind: 'consensus', protocol: 'majority', roundId: expect.any(String), expectedVersion: 1 } });
    const roundId = v2.cause.roundId!;
    expect(v2.cause.summary).toContain(`consensus round ${roundId}`);
    const round = await auditRound(audit.conn, roundId);
    expect(round).toMatchObject({ kind: 'consensus', state: 'decided', outcome: { value: 'yes' }, request: { type: 'Proposal', eligible: ['v1', 'v2', 'v3'] } });
    expect(round.answers.map((x) => [x.agentId, x.choice, x.verdict]).sort()).toEqual([['v1', 'yes', 'counted'], ['v2', 'yes', 'counted'], ['v3', 'yes', 'counted']]);
    expect(round.directives).toEqual([]);
  });

  it('a variable the log does not hold is NOT_IN_LOG', async () => {
    await expect(auditVariable(audit.conn, uniqueName('none'))).rejects.toMatchObject({ code: 'NOT_IN_LOG' });
  });

  it('causes in words: adaptation from samples, market rounds, anything else as written', () => {
    const trigger = { function: 'halve', reason: 'latency over 200 ms', metrics: [{ eventId: 'm1', name: 'latency', value: 250 }] };
    expect(describeCause('adaptation', trigger, 4)).toMatchObject({ kind: 'adaptation', function: 'halve', reason: 'latency over 200 ms', samples: [{ eventId: 'm1', name: 'latency', value: 250 }], expectedVersion: 4 });
    expect(describeCause('adaptation', trigger, 4).summary).toBe('adaptation by halve: latency over 200 ms from 1 sample (latency=250) at version 4');
    expect(describeCause('market', { roundId: 'm-1', protocol: 'double-auction', status: 'decided' }, 2)).toMatchObject({ kind: 'market', roundId: 'm-1', summary: 'market round m-1 (double-auction, decided) at version 2' });
    expect(describeCause('coordination', null, null)).toMatchObject({ kind: 'other', name: 'coordination', summary: 'coordination' });
  });
});

describe('auditAgent', () => {
  it("tells an agent's bids (counted or refused), the rounds it won, its directives and whether it handled them, its failures and its migration", { timeout: 90_000 }, async () => {
    // (e2 won the English auction above and was refused in the sealed round.)
    const producer = await ctx.producer();
    const reconfigure: Directive = { envelope: newEnvelope('Directive', 'operator', { correlationId: 'e2' }), agentId: 'e2', action: 'reconfigure', parameters: '{"mode":"fast"}', roundId: null, variableId: null };
    await new EventProducer(producer, ctx.codec).send(ctx.topic('directives'), 'e2', 'Directive', reconfigure);
    await waitFor(() => directivesSeen.includes('e2:reconfigure'), { what: 'the reconfigure directive handled' });
    const stopped = new Promise<string>((resolve) => bidders.once('stopped', resolve));
    const migrate: Directive = { envelope: newEnvelope('Directive', 'operator', { correlationId: 'e2' }), agentId: 'e2', action: 'migrate', parameters: null, roundId: null, variableId: null };
    await new EventProducer(producer, ctx.codec).send(ctx.topic('directives'), 'e2', 'Directive', migrate);
    await stopped;
    const first = bidders.instanceId;
    bidders = bidderHost();
    await bidders.start();

    const a = await waitFor(async () => {
      const r = await auditAgent(audit.conn, 'e2');
      const handled = r.directives.every((d) => d.handling !== 'pending' && d.handling !== 'unknown');
      return handled && r.handlerFailures.length > 0 && r.lifecycle.some((l) => l.to === 'running' && l.instanceId === bidders.instanceId) && r;
    }, { what: 'the agent audit with every directive handled', timeoutMs: 30_000 });

    expect(a.registration).toMatchObject({ role: 'bidder', consumerGroup: `${ctx.prefix}.agents.audit-bidders` });
    // Its bids: every English stage bid counted, the sealed-round bid refused as not eligible.
    expect(a.answers.filter((x) => x.roundId === sealed).map((x) => [x.amount, x.verdict, x.refusal?.reasonCode])).toEqual([[12, 'refused', 'NOT_ELIGIBLE']]);
    const english = a.answers.filter((x) => x.roundId.includes('english'));
    expect(english.length).toBeGreaterThan(2);
    expect(english.every((x) => x.verdict === 'counted' && x.countedAt !== undefined)).toBe(true);
    expect(a.roundsWon).toEqual([expect.objectContaining({ protocol: 'english', winners: ['e2'], roundId: english[0]!.roundId })]);
    // Directives: the award delivered, the reconfigure failed in its handler, the migrate carried out by the host.
    expect(a.directives.map((d) => [d.action, d.handling])).toEqual([['award', 'delivered'], ['reconfigure', 'failed'], ['migrate', 'carried-out']]);
    expect(a.directives.every((d) => d.position.topic === ctx.topic('directives') && d.position.partition === partitionOfKey(Buffer.from('e2'), 6))).toBe(true);
    expect(a.handlerFailures).toEqual([expect.objectContaining({ handler: 'onDirective', causeEventId: reconfigure.envelope.eventId, error: expect.stringContaining('cannot be reconfigured') })]);
    expect(a.directives[1]!.failure!.eventId).toBe(a.handlerFailures[0]!.eventId);
    // The lifecycle: started, ran, migrated, and the next instance resumed.
    expect(a.lifecycle.map((l) => l.to)).toEqual(['starting', 'running', 'migrating', 'stopped', 'starting', 'running']);
    expect(a.migrations).toEqual([expect.objectContaining({ fromInstanceId: first, toInstanceId: bidders.instanceId, reason: `migrate directive ${migrate.envelope.eventId}` })]);
    expect(a.instances.map((i) => [i.instanceId, i.lastState])).toEqual([[first, 'stopped'], [bidders.instanceId, 'running']]);
    expect(a.restarts).toEqual([]);
    expect(a.read.agentPartition).toBe(partitionOfKey(Buffer.from('e2'), 6));
  });

  it('an agent the log knows nothing of is NOT_IN_LOG', async () => {
    await expect(auditAgent(audit.conn, uniqueName('nobody'))).rejects.toMatchObject({ code: 'NOT_IN_LOG' });
  });

  it('restarts and migrations from lifecycle transitions alone', () => {
    const at = (i: number, from: LifecycleStep['from'], to: LifecycleStep['to'], instanceId: string | null, reason = ''): LifecycleStep => ({
      from, to, reason, instanceId, host: 'h', eventTime: i, position: { topic: 't', partition: 0, offset: i, timestamp: i },
    });
    const story = lifecycleStory([
      at(1, null, 'starting', 'i1'), at(2, 'starting', 'running', 'i1'), at(3, 'running', 'failed', 'i1', 'process 7 killed by SIGKILL'),
      at(4, 'failed', 'starting', null, 'restart 1 of 3'), at(5, 'starting', 'running', 'i2'),
      at(6, 'running', 'migrating', 'i2', 'migrate directive d1'), at(7, 'migrating', 'stopped', 'i2', 'handed over'),
      at(8, null, 'starting', 'i3'), at(9, 'starting', 'running', 'i3'),
      // An instance that died without a word, and the next one starting.
      at(10, null, 'starting', 'i4'),
    ]);
    expect(story.restarts.map((r) => [r.instanceId, r.after, r.previousInstanceId])).toEqual([[null, 'failed', 'i1'], ['i4', 'running', 'i3']]);
    expect(story.migrations).toEqual([{ fromInstanceId: 'i2', toInstanceId: 'i3', reason: 'migrate directive d1', at: 6, resumedAt: 8 }]);
    expect(story.instances.map((i) => [i.instanceId, i.states])).toEqual([['i1', ['starting', 'running', 'failed']], ['i2', ['running', 'migrating', 'stopped']], ['i3', ['starting', 'running']], ['i4', ['starting']]]);
  });
});
