import { describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import type { MetricSample } from '../../src/events/types.ts';
import { directiveActions } from '../../src/orchestrator/actions.ts';
import { planAdaptations, relevantSamples } from '../../src/orchestrator/adaptation.ts';
import { directiveEvent, directiveEventId, planDirectives } from '../../src/orchestrator/directives.ts';
import { FunctionRegistry, registerAdaptation, registerCoordination, sharedFunctions, type AgentInfo } from '../../src/orchestrator/functions.ts';
import { defaultStrategy, topologyPeers } from '../../src/orchestrator/strategies.ts';
import {
  adaptationRate,
  agentSelection,
  communicationTopology,
  coordinationPattern,
  performanceThreshold,
  resourceAllocation,
  typedVariable,
  type Value,
  type VariableDefinition,
} from '../../src/variables/model.ts';
import type { VariableRecord } from '../../src/variables/types.ts';

const record = (definition: VariableDefinition, value: Value = definition.initial, version = 1): VariableRecord => ({
  id: definition.id, definition, value, version, eventTime: 1_000, writerId: 'test',
});
const agent = (agentId: string, ...capabilities: string[]): AgentInfo => ({ agentId, capabilities, state: 'running' });
const none = { agents: [] as AgentInfo[] };
const brief = (planned: Array<{ agentId: string; action: string }>) => planned.map((d) => `${d.action}:${d.agentId}`);

describe('the closed list of directive actions', () => {
  it('names every action the orchestrator may send, award included', () => {
    expect([...directiveActions]).toEqual([
      'start', 'stop', 'reconfigure', 'migrate', 'scale_up', 'scale_down', 'change_role', 'update_communication', 'adjust_parameters', 'activate', 'deactivate', 'allocate_resources', 'award',
    ]);
  });
});

describe('default strategy: agent_selection', () => {
  const team = ['a', 'b', 'c', 'd'];

  it('activates the selected agents and deactivates the other affected ones', () => {
    const planned = defaultStrategy(record(agentSelection('team', { agents: team }), ['b', 'd'], 3), none);
    expect(planned).toEqual([
      { agentId: 'b', action: 'activate', parameters: { variableId: 'team', version: 3 } },
      { agentId: 'd', action: 'activate', parameters: { variableId: 'team', version: 3 } },
      { agentId: 'a', action: 'deactivate', parameters: { variableId: 'team', version: 3 } },
      { agentId: 'c', action: 'deactivate', parameters: { variableId: 'team', version: 3 } },
    ]);
  });

  it('keeps only selected agents with every required capability (an unknown agent has none), then at most maxConcurrent', () => {
    const definition = agentSelection('team', { agents: team, requirements: ['gpu', 'python'], maxConcurrent: 2 });
    const agents = [agent('a', 'gpu'), agent('b', 'gpu', 'python'), agent('c', 'python', 'gpu', 'extra'), agent('d', 'gpu', 'python')];
    const planned = defaultStrategy(record(definition, ['a', 'b', 'c']), { agents });
    expect(brief(planned)).toEqual(['activate:b', 'activate:c', 'deactivate:a', 'deactivate:d']);
    expect(planned.find((d) => d.agentId === 'a')!.parameters).toEqual({ variableId: 'team', version: 1, reason: 'missing capabilities: python' });
    expect(planned.find((d) => d.agentId === 'd')!.parameters).toEqual({ variableId: 'team', version: 1 });

    const over = defaultStrategy(record(definition, ['d', 'b']), { agents: [...agents, agent('x')] });
    expect(brief(over)).toEqual(['activate:d', 'activate:b', 'deactivate:a', 'deactivate:c']);
    const unknown = defaultStrategy(record(agentSelection('t2', { agents: team, requirements: ['gpu'] }), ['a', 'b']), { agents: [agent('a', 'gpu')] });
    expect(unknown.find((d) => d.agentId === 'b')).toEqual({ agentId: 'b', action: 'deactivate', parameters: { variableId: 't2', version: 1, reason: 'missing capabilities: gpu' } });
  });

  it('drops selected agents over maxConcurrent in the order of the value', () => {
    const definition = { ...agentSelection('team', { agents: team }), constraints: { maxConcurrent: 1 } };
    const planned = defaultStrategy(record(definition, ['c', 'a']), none);
    expect(brief(planned)).toEqual(['activate:c', 'deactivate:a', 'deactivate:b', 'deactivate:d']);
    expect(planned[1]!.parameters).toMatchObject({ reason: 'over maxConcurrent 1' });
  });
});

describe('default strategy: resource_allocation', () => {
  it('tells each agent its share; an affected agent the value leaves out gets 0', () => {
    const definition = resourceAllocation('gpu-hours', { agents: ['a', 'b', 'c'], total: 12, resource: 'gpu' });
    expect(defaultStrategy(record(definition), none)).toEqual([
      { agentId: 'a', action: 'allocate_resources', parameters: { resource: 'gpu', amount: 4 } },
      { agentId: 'b', action: 'allocate_resources', parameters: { resource: 'gpu', amount: 4 } },
      { agentId: 'c', action: 'allocate_resources', parameters: { resource: 'gpu', amount: 4 } },
    ]);
    const planned = defaultStrategy(record(definition, { c: 10, a: 2 }, 2), none);
    expect(planned.map((d) => [d.agentId, d.parameters['amount']])).toEqual([['a', 2], ['b', 0], ['c', 10]]);
  });

  it('names the resource after the variable when the constraints do not, and includes agents outside affectedAgents that the value names', () => {
    const definition = { ...resourceAllocation('memory', { agents: ['a'], total: 10 }), constraints: {} };
    expect(defaultStrategy(record(definition, { a: 3, z: 7 }), none)).toEqual([
      { agentId: 'a', action: 'allocate_resources', parameters: { resource: 'memory', amount: 3 } },
      { agentId: 'z', action: 'allocate_resources', parameters: { resource: 'memory', amount: 7 } },
    ]);
  });
});

describe('default strategy: communication_topology', () => {
  const agents = ['a', 'b', 'c', 'd'];
  const peersOf = (value: string, definition = communicationTopology('topo', { agents })) =>
    Object.fromEntries(defaultStrategy(record(definition, value), none).map((d) => {
      expect(d.action).toBe('update_communication');
      expect(d.parameters['topology']).toBe(value);
      return [d.agentId, d.parameters['peers']];
    }));

  it('broadcast and mesh: every other agent', () => {
    for (const topology of ['broadcast', 'mesh']) {
      expect(peersOf(topology)).toEqual({ a: ['b', 'c', 'd'], b: ['a', 'c', 'd'], c: ['a', 'b', 'd'], d: ['a', 'b', 'c'] });
    }
  });

  it('ring: the previous and the next agent in affectedAgents order, wrapping', () => {
    expect(peersOf('ring')).toEqual({ a: ['d', 'b'], b: ['a', 'c'], c: ['b', 'd'], d: ['c', 'a'] });
    expect(topologyPeers('ring', ['a', 'b'])).toEqual([{ agentId: 'a', peers: ['b'] }, { agentId: 'b', peers: ['a'] }]);
    expect(topologyPeers('ring', ['a'])).toEqual([{ agentId: 'a', peers: [] }]);
  });

  it('star: the first agent is the hub unless constraints.hub names one; hub ↔ everyone', () => {
    expect(peersOf('star')).toEqual({ a: ['b', 'c', 'd'], b: ['a'], c: ['a'], d: ['a'] });
    const withHub = communicationTopology('topo', { agents, hub: 'c' });
    expect(peersOf('star', withHub)).toEqual({ c: ['a', 'b', 'd'], a: ['c'], b: ['c'], d: ['c'] });
    expect(defaultStrategy(record(withHub, 'star'), none)[0]).toEqual({ agentId: 'c', action: 'update_communication', parameters: { topology: 'star', peers: ['a', 'b', 'd'], hub: 'c' } });
    const outside = communicationTopology('topo', { agents: ['a', 'b'], hub: 'router' });
    expect(peersOf('star', outside)).toEqual({ router: ['a', 'b'], a: ['router'], b: ['router'] });
  });
});

describe('default strategy: parameters', () => {
  it('adaptation_rate, performance_threshold, coordination_pattern and custom: adjust_parameters { [variableId]: value } to every affected agent', () => {
    const affectedAgents = ['a', 'b'];
    const cases: Array<[VariableDefinition, Value]> = [
      [adaptationRate('lr', { affectedAgents }), 0.3],
      [performanceThreshold('accuracy', { affectedAgents }), 0.9],
      [coordinationPattern('pattern', { patterns: ['auction', 'consensus'], affectedAgents }), 'consensus'],
      [typedVariable('model', { kind: 'choice', options: ['small', 'large'] }, 'small', { affectedAgents }), 'large'],
      [typedVariable('settings', { kind: 'struct' }, {}, { affectedAgents }), { depth: 3, tools: ['search'] }],
    ];
    for (const [definition, value] of cases) {
      expect(defaultStrategy(record(definition, value), none)).toEqual(affectedAgents.map((agentId) => ({ agentId, action: 'adjust_parameters', parameters: { [definition.id]: value } })));
    }
    expect(defaultStrategy(record(adaptationRate('lonely')), none)).toEqual([]);
  });
});

describe('function registry', () => {
  it('registers coordination and adaptation functions by name, refuses duplicates and bad names, and keeps registries apart', () => {
    const registry = new FunctionRegistry();
    const coordinate = () => [];
    const adapt = () => undefined;
    registerCoordination('round-robin', coordinate, registry);
    registerAdaptation('round-robin', adapt, registry); // another kind: the same name is fine
    expect(registry.coordination('round-robin')).toBe(coordinate);
    expect(registry.adaptation('round-robin')).toBe(adapt);
    expect(registry.names()).toEqual({ coordination: ['round-robin'], adaptation: ['round-robin'] });
    expect(() => registerCoordination('round-robin', coordinate, registry)).toThrow(/already registered/);
    expect(() => registry.registerAdaptation('has space', adapt)).toThrow(/letters, digits/);
    expect(() => registry.registerAdaptation('not-a-function', 42 as never)).toThrow(/must be a function/);
    expect(sharedFunctions().coordination('round-robin')).toBeUndefined();

    const name = `shared-${Math.random().toString(36).slice(2)}`;
    registerAdaptation(name, adapt);
    expect(sharedFunctions().adaptation(name)).toBe(adapt);
  });

  it('a definition that names a coordination function gets its directives; an unregistered name or a bad plan is refused', () => {
    const registry = new FunctionRegistry()
      .registerCoordination('hub-first', (variable, { agents }) => [
        { agentId: agents[0]!.agentId, action: 'change_role', parameters: { role: 'hub', from: variable.id } },
        { agentId: agents[1]!.agentId, action: 'scale_up', parameters: { replicas: 2 } },
      ])
      .registerCoordination('bad-action', () => [{ agentId: 'a', action: 'explode' as never, parameters: {} }])
      .registerCoordination('twice', () => [{ agentId: 'a', action: 'start', parameters: {} }, { agentId: 'a', action: 'start', parameters: {} }])
      .registerCoordination('not-json', () => [{ agentId: 'a', action: 'start', parameters: { at: new Date(0) } }])
      .registerCoordination('throws', () => {
        throw new Error('boom');
      });
    const context = { agents: [agent('x'), agent('y')] };
    const variable = (coordination: string) => record(typedVariable('v', { kind: 'integer' }, 1, { coordination }));
    expect(planDirectives(variable('hub-first'), context, registry)).toEqual([
      { agentId: 'x', action: 'change_role', parameters: { role: 'hub', from: 'v' } },
      { agentId: 'y', action: 'scale_up', parameters: { replicas: 2 } },
    ]);
    expect(() => planDirectives(variable('missing'), context, registry)).toThrow(/names the coordination function "missing", which is not registered/);
    expect(() => planDirectives(variable('bad-action'), context, registry)).toThrow(/action "explode" is not one of start, stop/);
    expect(() => planDirectives(variable('twice'), context, registry)).toThrow(/"start" for agent a twice/);
    expect(() => planDirectives(variable('not-json'), context, registry)).toThrow(/plain JSON/);
    expect(() => planDirectives(variable('throws'), context, registry)).toThrow(/coordination function "throws" failed for variable v: boom/);
    // Without a name: the type's default strategy.
    expect(brief(planDirectives(record(adaptationRate('lr', { affectedAgents: ['x'] })), context, registry))).toEqual(['adjust_parameters:x']);
  });
});

describe('directive events', () => {
  it('are keyed to the agent, carry the variable and JSON parameters, and have an id derived from (variable, version, agent, action)', () => {
    const planned = { agentId: 'a', action: 'activate' as const, parameters: { variableId: 'team', version: 4 } };
    const event = directiveEvent(planned, { id: 'team', version: 4 }, 'orchestrator', 5_000);
    expect(event).toEqual({
      envelope: { eventId: directiveEventId('team', 4, 'a', 'activate'), eventType: 'Directive', correlationId: 'team', causationId: null, producerId: 'orchestrator', eventTime: 5_000 },
      agentId: 'a', action: 'activate', parameters: '{"variableId":"team","version":4}', roundId: null, variableId: 'team',
    });
    expect(directiveEvent(planned, { id: 'team', version: 4 }, 'elsewhere').envelope.eventId).toBe(event.envelope.eventId);
    const others = [directiveEventId('team', 5, 'a', 'activate'), directiveEventId('team', 4, 'b', 'activate'), directiveEventId('team', 4, 'a', 'deactivate'), directiveEventId('crew', 4, 'a', 'activate')];
    expect(new Set([event.envelope.eventId, ...others]).size).toBe(5);
  });
});

describe('adaptation planning', () => {
  let n = 0;
  const sample = (name: string, value: number, labels: Record<string, string> = {}): MetricSample => ({
    envelope: newEnvelope('MetricSample', 'bench', { eventId: `s${++n}`, eventTime: 1_000 + n }), name, value, labels, source: 'bench',
  });
  const functions = new FunctionRegistry()
    .registerAdaptation('halve-on-loss', (variable, metrics) => {
      const loss = Math.max(...metrics.filter((m) => m.name === 'loss').map((m) => m.value));
      return loss > 1 ? { value: (variable.value as number) / 2, reason: `loss ${loss} > 1` } : undefined;
    })
    .registerAdaptation('constant', () => ({ value: 0.5, reason: 'always 0.5' }))
    .registerAdaptation('broken', () => {
      throw new Error('no');
    });

  it('gives a variable the unlabelled samples and those labelled with its id, and records them in the trigger', () => {
    const lr = record(adaptationRate('lr', { initial: 0.4, adaptation: 'halve-on-loss' }), 0.4, 7);
    const samples = [sample('loss', 3), sample('loss', 9, { variable: 'other' }), sample('loss', 2, { variable: 'lr' }), sample('latency', 0.1)];
    expect(relevantSamples('lr', samples).map((s) => s.envelope.eventId)).toEqual([samples[0], samples[2], samples[3]].map((s) => s!.envelope.eventId));
    const { changes, problems } = planAdaptations([lr, record(adaptationRate('still'))], samples, functions);
    expect(problems).toEqual([]);
    expect(changes).toEqual([{
      variableId: 'lr', expectedVersion: 7, value: 0.2,
      trigger: { function: 'halve-on-loss', reason: 'loss 3 > 1', metrics: [samples[0], samples[2], samples[3]].map((s) => ({ eventId: s!.envelope.eventId, name: s!.name, value: s!.value })) },
    }]);
  });

  it('asks nobody without relevant samples, skips answers that change nothing, and reports unknown or failing functions', () => {
    const mine = record(adaptationRate('mine', { adaptation: 'halve-on-loss' }));
    expect(planAdaptations([mine], [sample('loss', 5, { variable: 'theirs' })], functions)).toEqual({ changes: [], problems: [] });
    expect(planAdaptations([mine], [sample('loss', 0.5)], functions).changes).toEqual([]);
    const settled = record(adaptationRate('settled', { adaptation: 'constant', initial: 0.5 }));
    expect(planAdaptations([settled], [sample('loss', 5)], functions).changes).toEqual([]);
    const { changes, problems } = planAdaptations(
      [record(adaptationRate('x', { adaptation: 'nobody' })), record(adaptationRate('y', { adaptation: 'broken' })), record(adaptationRate('z', { adaptation: 'constant' }))],
      [sample('loss', 5)],
      functions,
    );
    expect(problems).toEqual([
      { variableId: 'x', reason: 'the adaptation function "nobody" is not registered' },
      { variableId: 'y', reason: 'the adaptation function "broken" failed: no' },
    ]);
    expect(changes.map((c) => [c.variableId, c.value])).toEqual([['z', 0.5]]);
  });
});
