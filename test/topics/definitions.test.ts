import { describe, expect, it } from 'vitest';
import { loadCatalog } from '../../src/schemas/catalog.ts';
import { checkTopicSet, loadTopicDefinitions, parseTopicDefinition } from '../../src/topics/definitions.ts';

const valid = {
  name: 'bids',
  purpose: 'p',
  key: 'roundId',
  partitions: 12,
  coPartitionGroup: 'rounds',
  replicationFactor: 3,
  eventTypes: ['io.mabeam.events.Bid'],
  config: { 'cleanup.policy': 'delete' },
};

describe('topic definitions', () => {
  it('declares every topic the product needs, each with a purpose', async () => {
    const definitions = await loadTopicDefinitions();
    expect(definitions.map((d) => d.name).sort()).toEqual(
      ['agent-state', 'agents', 'bid-requests', 'bids', 'dead-letters', 'directives', 'heartbeats', 'lifecycle', 'metrics', 'outcomes', 'plan-inputs', 'plans', 'proposals', 'round-state', 'studies', 'study-inputs', 'variable-changes', 'variable-requests', 'variables', 'votes'].sort(),
    );
    const compacted = definitions.filter((d) => d.config['cleanup.policy'] === 'compact').map((d) => d.name);
    expect(compacted.sort()).toEqual(['agent-state', 'agents', 'round-state', 'variables']);
  });

  it('co-partitions the round topics: one partition count, keyed by round id', async () => {
    const rounds = (await loadTopicDefinitions()).filter((d) => d.coPartitionGroup === 'rounds');
    expect(rounds.map((d) => d.name).sort()).toEqual(['bid-requests', 'bids', 'outcomes', 'proposals', 'round-state', 'votes']);
    expect(new Set(rounds.map((d) => d.partitions)).size).toBe(1);
    expect(new Set(rounds.map((d) => d.key))).toEqual(new Set(['roundId']));
  });

  it('co-partitions the study topics: a study\'s inputs and its log on the same partition number, keyed by study id', async () => {
    const studies = (await loadTopicDefinitions()).filter((d) => d.coPartitionGroup === 'studies');
    expect(studies.map((d) => d.name).sort()).toEqual(['studies', 'study-inputs']);
    expect(new Set(studies.map((d) => d.partitions)).size).toBe(1);
    expect(new Set(studies.map((d) => d.key))).toEqual(new Set(['studyId']));
  });

  it('co-partitions the plan topics: a plan\'s inputs and its log on the same partition number, keyed by plan id', async () => {
    const plans = (await loadTopicDefinitions()).filter((d) => d.coPartitionGroup === 'plans');
    expect(plans.map((d) => d.name).sort()).toEqual(['plan-inputs', 'plans']);
    expect(new Set(plans.map((d) => d.partitions)).size).toBe(1);
    expect(new Set(plans.map((d) => d.key))).toEqual(new Set(['planId']));
  });

  it('names only event types that exist in schemas/, and every event type has a topic', async () => {
    const [definitions, catalog] = await Promise.all([loadTopicDefinitions(), loadCatalog()]);
    const onTopics = new Set(definitions.flatMap((d) => d.eventTypes));
    expect([...onTopics].filter((t) => !catalog.get(t))).toEqual([]);
    expect([...catalog.events.keys()].filter((t) => !onTopics.has(t))).toEqual([]);
  });

  it('says which field is wrong in a bad definition', () => {
    expect(() => parseTopicDefinition({ ...valid, partitions: 0 }, 'bids.json')).toThrow(/bids.json: partitions: /);
    expect(() => parseTopicDefinition({ ...valid, name: 'Bids!' }, 'x.json')).toThrow(/name: lower-case letters/);
    expect(() => parseTopicDefinition({ ...valid, extra: 1 }, 'x.json')).toThrow(/Unrecognized key/);
    expect(() => parseTopicDefinition({ ...valid, config: { 'cleanup.policy': 'forever' } }, 'x.json')).toThrow(/cleanup.policy must be delete, compact or both/);
  });

  it('refuses a co-partition group whose topics disagree', () => {
    const bids = parseTopicDefinition(valid, 'bids.json');
    const votes = parseTopicDefinition({ ...valid, name: 'votes', partitions: 6 }, 'votes.json');
    expect(() => checkTopicSet([bids, votes])).toThrow(/"rounds" must share one partition count and one key.*bids \(12 partitions.*votes \(6 partitions/);
    expect(() => checkTopicSet([bids, bids])).toThrow(/defined twice/);
  });
});
