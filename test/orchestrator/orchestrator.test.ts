import { Redis } from 'ioredis';
import type { Producer } from 'kafkajs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { AgentHost } from '../../src/agents/host.ts';
import { AgentRegistry } from '../../src/agents/registry.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Directive, MetricSample, VariableChanged, VariableChangeRejected } from '../../src/events/types.ts';
import type { AppliedAdaptation } from '../../src/orchestrator/adapter.ts';
import { FunctionRegistry } from '../../src/orchestrator/functions.ts';
import { allocateByMarket, marketItem } from '../../src/orchestrator/market.ts';
import { adaptSystem, coordinateSystem, readRecentEvents, systemStatus } from '../../src/orchestrator/orchestrator.ts';
import { Coordinator } from '../../src/coordinator/coordinator.ts';
import { RoundClient } from '../../src/coordinator/roundClient.ts';
import { EventProducer } from '../../src/producer/eventProducer.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { VariablesClient } from '../../src/variables/client.ts';
import { adaptationRate, agentSelection, performanceThreshold, resourceAllocation } from '../../src/variables/model.ts';
import { VariableOwner } from '../../src/variables/owner.ts';
import { collectRaw, testContext, waitFor, type TestContext } from '../helpers.ts';

let ctx: TestContext;
let redis: Redis;
let producer: Producer;
let variables: VariablesClient;
let registry: AgentRegistry;
beforeAll(async () => {
  ctx = await testContext('orchestrator');
  redis = new Redis(ctx.stack.redisUrl, { db: 6 });
  ctx.defer(() => redis.quit());
  producer = await ctx.producer();
  const owner = new VariableOwner({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
  ctx.defer(() => owner.stop());
  await owner.start();
  variables = new VariablesClient({ kafka: ctx.kafka, codec: ctx.codec, producer, logger: ctx.logger, prefix: ctx.prefix, redis, definitions: ctx.definitions });
  ctx.defer(() => variables.stop());
  await variables.start();
  registry = new AgentRegistry({ kafka: ctx.kafka, redis, codec: ctx.codec, producer, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
  ctx.defer(() => registry.stop());
  await registry.start();
});
afterAll(() => ctx?.close());

/** The variable-changes log of one variable, in order. */
async function history(variableId: string) {
  const log = await readLog(ctx.kafka, ctx.codec, [ctx.topic('variable-changes')]);
  return log
    .filter((r) => (r.decoded.event as { variableId?: string }).variableId === variableId)
    .map((r) => ({ type: r.decoded.type, event: r.decoded.event as unknown as VariableChanged & VariableChangeRejected }));
}

describe('orchestrator over Kafka', () => {
  const workers = ['w1', 'w2', 'w3', 'w4'];
  const told: Array<{ agentId: string; directive: Directive }> = [];

  it('coordinateSystem: of four agents selected by a variable, exactly the two selected are activated and the other two deactivated', async () => {
    const host = new AgentHost({
      kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'workers', heartbeatIntervalMs: 500,
      agents: workers.map((id) =>
        defineAgent<{ active?: boolean }>({
          id, role: 'worker', capabilities: ['analysis'],
          onDirective: (directive, { state, report }) => {
            told.push({ agentId: id, directive });
            if (directive.action === 'activate') state.active = true;
            if (directive.action === 'deactivate') state.active = false;
            // Agents report what they did: a sample on the metrics topic.
            report('directive_applied', 1, { action: directive.action, directive: directive.envelope.eventId });
          },
        })),
    });
    ctx.defer(() => host.stop());
    await host.start();
    await registry.caughtUp();

    await variables.define(agentSelection('team', { agents: workers, requirements: ['analysis'], maxConcurrent: 2 }));
    const selected = await variables.set('team', ['w2', 'w4']);
    expect(selected.version).toBe(2);

    const report = await coordinateSystem({ variables, agents: registry, producer, codec: ctx.codec, prefix: ctx.prefix, ids: ['team'], logger: ctx.logger });
    expect(report.failures).toEqual([]);
    expect(report.directives.map((d) => `${d.action}:${d.agentId}`)).toEqual(['activate:w2', 'activate:w4', 'deactivate:w1', 'deactivate:w3']);

    await waitFor(() => told.length >= 4, { what: 'four directives handled' });
    const byAgent = Object.fromEntries(told.map(({ agentId, directive }) => [agentId, directive]));
    expect(Object.keys(byAgent).sort()).toEqual(workers);
    for (const id of workers) {
      const d = byAgent[id]!;
      expect(d).toMatchObject({ agentId: id, action: ['w2', 'w4'].includes(id) ? 'activate' : 'deactivate', variableId: 'team', roundId: null });
      expect(JSON.parse(d.parameters!)).toEqual({ variableId: 'team', version: 2 });
      expect(d.envelope.eventId).toBe(report.directives.find((r) => r.agentId === id)!.eventId);
      expect((host.stateOf(id) as { active: boolean }).active).toBe(['w2', 'w4'].includes(id));
    }

    const reports = await waitFor(async () => {
      const samples = (await readLog(ctx.kafka, ctx.codec, [ctx.topic('metrics')])).map((r) => r.decoded.event as unknown as MetricSample).filter((m) => m.name === 'directive_applied');
      return samples.length >= 4 && samples;
    }, { what: 'the agents\' reports' });
    expect(reports.map((m) => `${m.source}:${m.labels['action']}`).sort()).toEqual(['w1:deactivate', 'w2:activate', 'w3:deactivate', 'w4:activate']);
    expect(new Set(reports.map((m) => m.labels['directive']))).toEqual(new Set(report.directives.map((d) => d.eventId)));

    // Coordinating the same version again writes the same events: recognisable duplicates.
    const again = await coordinateSystem({ variables, agents: registry, producer, codec: ctx.codec, prefix: ctx.prefix, ids: ['team', 'nobody'] });
    expect(again.directives.map((d) => d.eventId)).toEqual(report.directives.map((d) => d.eventId));
    expect(again.failures).toEqual([{ variableId: 'nobody', reason: 'no such variable' }]);
    await waitFor(() => told.length >= 8, { what: 'the repeated directives' });
    expect(new Set(told.map((t) => t.directive.envelope.eventId)).size).toBe(4);
  });

  it('adaptSystem: samples on the metrics topic drive an adaptation function; the change carries its trigger, a refused one is skipped', async () => {
    const functions = new FunctionRegistry()
      .registerAdaptation('halve-on-high-loss', (variable, metrics) => {
        const losses = metrics.filter((m) => m.name === 'loss');
        const worst = Math.max(...losses.map((m) => m.value));
        return losses.length > 0 && worst > 1 ? { value: (variable.value as number) / 2, reason: `loss ${worst} is over 1` } : undefined;
      })
      .registerAdaptation('overshoot', (variable) => ({ value: (variable.value as number) + 1, reason: 'always more' }));
    await variables.define(adaptationRate('learning-rate', { initial: 0.4, adaptation: 'halve-on-high-loss' }));
    await variables.define(performanceThreshold('accuracy-floor', { initial: 0.8, adaptation: 'overshoot' }));

    const adapter = adaptSystem({ kafka: ctx.kafka, codec: ctx.codec, producer, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, variables, functions });
    ctx.defer(() => adapter.stop());
    const seen: AppliedAdaptation[] = [];
    adapter.onAdaptation((a) => seen.push(a));
    await adapter.start();

    const events = new EventProducer(producer, ctx.codec);
    const sample = (name: string, value: number, labels: Record<string, string>): MetricSample => ({
      envelope: newEnvelope('MetricSample', 'trainer'), name, value, labels, source: 'trainer',
    });
    const elsewhere = sample('loss', 9, { variable: 'another-variable' });
    const loss = sample('loss', 2.5, { variable: 'learning-rate' });
    await events.send(ctx.topic('metrics'), 'trainer', 'MetricSample', elsewhere);
    await events.send(ctx.topic('metrics'), 'trainer', 'MetricSample', loss);
    await producer.send({ topic: ctx.topic('metrics'), messages: [{ key: 'trainer', value: Buffer.from('not an event') }] }); // dead-lettered, the loop goes on

    const adapted = await waitFor(async () => {
      const r = await variables.get('learning-rate');
      return r && r.version >= 2 && r;
    }, { what: 'the adapted learning rate', crashed: () => adapter.crash });
    expect(adapted).toMatchObject({ value: 0.2, version: 2 });

    const changes = await history('learning-rate');
    const change = changes.find((c) => c.type === 'VariableChanged' && c.event.version === 2)!;
    expect(change.event).toMatchObject({ cause: 'adaptation', previousValue: '0.4', value: '0.2' });
    expect(JSON.parse(change.event.trigger!)).toEqual({
      function: 'halve-on-high-loss',
      reason: 'loss 2.5 is over 1',
      metrics: [{ eventId: loss.envelope.eventId, name: 'loss', value: 2.5 }],
    });

    // The samples above were labelled for other variables; an unlabelled (system-wide) one goes to the threshold too,
    // whose function asks for 1.8: the owners refuse it (OUT_OF_RANGE) and the loop goes on.
    await events.send(ctx.topic('metrics'), 'trainer', 'MetricSample', sample('accuracy', 0.7, {}));
    await waitFor(() => seen.some((a) => a.change.variableId === 'accuracy-floor'), { what: 'the refused adaptation', crashed: () => adapter.crash });
    const refused = seen.find((a) => a.change.variableId === 'accuracy-floor')!;
    expect(refused.result).toMatchObject({ rejected: 'OUT_OF_RANGE' });
    expect((await history('accuracy-floor')).map((c) => `${c.type}${c.type === 'VariableChangeRejected' ? `:${c.event.reasonCode}` : ''}`)).toEqual(['VariableChanged', 'VariableChangeRejected:OUT_OF_RANGE']);
    expect(await variables.get('accuracy-floor')).toMatchObject({ version: 1, value: 0.8 });
    // The system-wide sample reached the learning rate too; its loss rule did not fire.
    expect((await variables.get('learning-rate'))!.version).toBe(2);

    const letters = await collectRaw(ctx, ctx.topic('dead-letters'));
    await waitFor(() => letters.messages.length >= 1, { what: 'the dead letter' });
    expect((await ctx.codec.decode(letters.messages[0]!.value)).event).toMatchObject({ reasonCode: 'BAD_MAGIC_BYTE', sourceTopic: ctx.topic('metrics'), consumerGroup: adapter.groupId });
  });

  it('systemStatus: agents by state, every variable, recent rounds and the latest sample per metric; fills the agents gauge', async () => {
    const outcome = {
      envelope: newEnvelope('RoundOutcome', 'coordinator'), roundId: 'round-1', protocol: 'vickrey', status: 'decided' as const, winners: ['w2'], price: 3, value: null, reason: 'w2 bid highest', details: null,
    };
    await new EventProducer(producer, ctx.codec).send(ctx.topic('outcomes'), 'round-1', 'RoundOutcome', outcome);
    await registry.caughtUp();
    const recent = await readRecentEvents(ctx.kafka, ctx.codec, ctx.prefix, { last: 5 });
    const status = await systemStatus({ agents: registry, variables, ...recent, metrics: ctx.metrics });
    expect(status.agents.total).toBe(4);
    expect(status.agents.byState.running).toEqual(workers);
    expect(status.agents.byState.failed).toEqual([]);
    expect(status.variables.map((v) => `${v.id}@${v.version}`)).toEqual(['accuracy-floor@1', 'learning-rate@2', 'team@2']);
    expect(status.recentCoordination).toEqual([{ roundId: 'round-1', protocol: 'vickrey', status: 'decided', winners: ['w2'], price: 3, value: null, reason: 'w2 bid highest', eventId: outcome.envelope.eventId, eventTime: outcome.envelope.eventTime }]);
    expect(status.performance['loss']).toMatchObject({ value: 2.5, labels: { variable: 'learning-rate' }, source: 'trainer' });
    expect(status.performance['accuracy']).toMatchObject({ value: 0.7 });
    const gauge = await ctx.metrics.agentsByState.get();
    expect(gauge.values.find((v) => v.labels.state === 'running')?.value).toBe(4);
    expect(gauge.values.find((v) => v.labels.state === 'stopped')?.value).toBe(0);
  });

  it('resource allocation by market: the agents bid their demand, the grants become the allocation, and each agent is told its share', async () => {
    const demand: Record<string, number> = { m1: 6, m2: 3, m3: 3 };
    const shares: Record<string, number> = {};
    const host = new AgentHost({
      kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions, pool: 'market',
      agents: Object.keys(demand).map((id) =>
        defineAgent({
          id, role: 'worker', capabilities: ['gpu'],
          onBidRequest: (request) => (marketItem(request)?.resource === 'gpu-hours' ? { amount: demand[id]!, attributes: { minimum: 1 } } : undefined),
          onDirective: (d) => {
            if (d.action === 'allocate_resources') shares[id] = (JSON.parse(d.parameters!) as { amount: number }).amount;
          },
        })),
    });
    const coordinator = new Coordinator({ kafka: ctx.kafka, codec: ctx.codec, logger: ctx.logger, prefix: ctx.prefix, definitions: ctx.definitions });
    const rounds = new RoundClient({ kafka: ctx.kafka, codec: ctx.codec, producer, logger: ctx.logger, prefix: ctx.prefix });
    ctx.defer(() => host.stop());
    ctx.defer(() => coordinator.stop());
    ctx.defer(() => rounds.stop());
    await Promise.all([host.start(), coordinator.start(), rounds.start()]);

    await variables.define(resourceAllocation('gpu-split', { agents: Object.keys(demand), total: 8, resource: 'gpu-hours', strategy: 'market' }));
    // Demand 12 for 8: shared in proportion, 4 / 2 / 2.
    const allocated = await allocateByMarket(variables, rounds, 'gpu-split');
    expect(allocated).toMatchObject({ version: 2, value: { m1: 4, m2: 2, m3: 2 } });
    const report = await coordinateSystem({ variables, agents: registry, producer, codec: ctx.codec, prefix: ctx.prefix, ids: ['gpu-split'] });
    expect(report.directives.map((d) => d.action)).toEqual(['allocate_resources', 'allocate_resources', 'allocate_resources']);
    await waitFor(() => Object.keys(shares).length === 3 && shares, { what: 'the three shares' });
    expect(shares).toEqual({ m1: 4, m2: 2, m3: 2 });
    const changed = (await readLog(ctx.kafka, ctx.codec, [ctx.topic('variable-changes')])).map((r) => r.decoded.event as unknown as VariableChanged).filter((e) => e.variableId === 'gpu-split' && e.version === 2);
    expect(changed[0]).toMatchObject({ cause: 'market' });
    expect(JSON.parse(changed[0]!.trigger!)).toMatchObject({ protocol: 'resource-grant', status: 'decided', roundId: expect.any(String) });
  });
});
