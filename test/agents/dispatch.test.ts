import { beforeAll, describe, expect, it } from 'vitest';
import { EventCodec } from '../../src/codec/codec.ts';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { dispatch, tieBreak, type DispatchContext } from '../../src/agents/dispatch.ts';
import type { AgentDefinition, HostedAgent } from '../../src/agents/types.ts';
import type { DecodedEvent } from '../../src/codec/codec.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { Bid, BidRequest, Directive, HandlerFailed, LifecycleState } from '../../src/events/types.ts';
import { stepRoundId } from '../../src/planner/stepRounds.ts';
import { createLogger } from '../../src/log/logger.ts';
import { loadCatalog } from '../../src/schemas/catalog.ts';
import { createRegistryClient } from '../../src/schemas/registry.ts';

// Dispatch has no Kafka and no registry in it: codec.check validates against the catalog only.
let context: DispatchContext;
beforeAll(async () => {
  const registryUrl = 'http://127.0.0.1:9/never-called';
  context = { codec: new EventCodec({ registry: createRegistryClient(registryUrl), registryUrl, catalog: await loadCatalog() }), instanceId: 'i-1', topic: (name) => `p.${name}` };
});

const logger = createLogger({ level: 'silent' });
function hosted(definitions: Array<AgentDefinition<any>>, lifecycle: LifecycleState | null = 'running'): Map<string, HostedAgent> {
  return new Map(
    definitions.map((definition) => [
      definition.id,
      { definition, lifecycle, snapshotSequence: 0, heartbeatSequence: 0, context: { agentId: definition.id, instanceId: 'i-1', logger, state: {}, report: () => undefined } },
    ]),
  );
}
const decoded = (type: string, event: object) => ({ schemaId: 1, fullName: `io.mabeam.events.${type}`, type, event }) as DecodedEvent;
const request = (roundId: string, requiredCapabilities: string[] = []): BidRequest => ({
  envelope: newEnvelope('BidRequest', 'client', { correlationId: roundId }),
  roundId, protocol: 'first-price', item: '"x"', requiredCapabilities, eligibleAgents: [], reservePrice: null, deadline: Date.now() + 60_000, parameters: null,
});

describe('dispatch', () => {
  it('asks every eligible agent, and turns whatever a handler throws or answers wrongly into its own HandlerFailed', async () => {
    const agents = hosted([
      defineAgent({ id: 'ok', role: 'w', capabilities: ['gpu'], onBidRequest: () => ({ amount: 3 }) }),
      defineAgent({ id: 'other-capability', role: 'w', capabilities: ['cpu'], onBidRequest: () => ({ amount: 4 }) }),
      defineAgent({ id: 'infinite', role: 'w', capabilities: ['gpu'], onBidRequest: () => ({ amount: Number.POSITIVE_INFINITY }) }),
      defineAgent({ id: 'bigint', role: 'w', capabilities: ['gpu'], onBidRequest: () => ({ amount: 1, attributes: { n: 1n } }) }),
      defineAgent({
        id: 'rejects',
        role: 'w',
        capabilities: ['gpu'],
        onBidRequest: () => Promise.reject(Symbol('no')),
      }),
    ]);
    const r = request('r-1', ['gpu']);
    const { out, hostAction } = await dispatch(decoded('BidRequest', r), agents, context);
    expect(hostAction).toBeUndefined();
    expect(out.map((o) => `${o.type}:${o.topic}:${o.key}`)).toEqual(['Bid:p.bids:r-1', 'HandlerFailed:p.lifecycle:infinite', 'HandlerFailed:p.lifecycle:bigint', 'HandlerFailed:p.lifecycle:rejects']);
    const errors = out.slice(1).map((o) => (o.event as HandlerFailed).error);
    expect(errors).toEqual(['Invalid Bid: amount: Infinity is not a finite number', expect.stringMatching(/BigInt/), 'Symbol(no)']);
    expect(out.slice(1).every((o) => (o.event as HandlerFailed).causeEventId === r.envelope.eventId)).toBe(true);
    // The bid's stand-in, should the broker refuse it, is the same agent's failure for the same cause.
    const instead = out[0]!.instead;
    expect(typeof instead).toBe('function');
    const failed = (instead as (why: string) => { event: HandlerFailed })('too large');
    expect(failed.event).toMatchObject({ agentId: 'ok', subjectId: 'r-1', causeEventId: r.envelope.eventId, error: 'its answer could not be written: too large' });
  });

  it('leaves agents that are not handling alone, and hands stop and migrate directives of a running agent to the host', async () => {
    const idle = hosted([defineAgent({ id: 'a', role: 'w', capabilities: [], onBidRequest: () => ({ amount: 1 }) })], 'stopped');
    expect((await dispatch(decoded('BidRequest', request('r-2')), idle, context)).out).toEqual([]);

    const running = hosted([defineAgent({ id: 'a', role: 'w', capabilities: [] })]);
    const migrate: Directive = { envelope: newEnvelope('Directive', 'op'), agentId: 'a', action: 'migrate', parameters: null, roundId: null, variableId: null };
    const { out, hostAction } = await dispatch(decoded('Directive', migrate), running, context);
    expect(out).toEqual([]);
    expect(hostAction).toMatchObject({ action: 'migrate', reason: `migrate directive ${migrate.envelope.eventId}` });
  });

  it('answers a step auction for agents that run steps: their load when they name no cost, and a cost that is no cost is their failure', async () => {
    const agents = hosted([
      defineAgent({ id: 'loaded', role: 'w', capabilities: ['compute'], onStep: () => null }),
      defineAgent({ id: 'negative', role: 'w', capabilities: ['compute'], onStep: () => null, stepCost: () => -1 }),
      defineAgent({ id: 'null-pass', role: 'w', capabilities: ['compute'], onStep: () => null, stepCost: () => null }),
      defineAgent({ id: 'other', role: 'w', capabilities: ['gpu'], onStep: () => null, onBidRequest: () => ({ amount: 1 }) }),
    ]);
    const roundId = stepRoundId('p', 's', 2);
    const r: BidRequest = { ...request(roundId), protocol: 'delegation', item: JSON.stringify({ kind: 'plan-step', planId: 'p', stepId: 's', attempt: 2, capability: 'compute', escalated: true, inputs: {} }) };
    const { out } = await dispatch(decoded('BidRequest', r), agents, { ...context, stepsRunning: (id) => (id === 'loaded' ? 2 : 0) });
    expect(out.map((o) => `${o.type}:${o.key}`)).toEqual([`Bid:${roundId}`, 'HandlerFailed:negative', `Bid:${roundId}`]);
    // Its load, and a tie-break below 0.5 drawn from its id and the round's.
    expect((out[0]!.event as Bid)).toMatchObject({ agentId: 'loaded', amount: 2 + tieBreak('loaded', r.roundId), attributes: null });
    expect(tieBreak('loaded', r.roundId)).toBeGreaterThanOrEqual(0);
    expect(tieBreak('loaded', r.roundId)).toBeLessThan(0.5);
    expect(tieBreak('loaded', r.roundId)).not.toBe(tieBreak('other', r.roundId));
    expect((out[1]!.event as HandlerFailed)).toMatchObject({ handler: 'stepCost', error: 'stepCost must answer a finite cost >= 0, or undefined to pass, not -1' });
    expect((out[2]!.event as Bid)).toMatchObject({ agentId: 'null-pass', amount: 0, attributes: '{"pass":true}' });
  });
});
