import { describe, expect, it } from 'vitest';
import { Outputs } from '../../src/engine/outputs.ts';
import { partitionOfKey } from '../../src/engine/routing.ts';

describe("a transaction's produce requests", () => {
  const out = () => {
    const o = new Outputs();
    o.add('outcomes', { key: 'r1', value: 'closed', partition: 3 });
    o.add('directives', { key: 'ada', value: 'award ada' });
    o.add('outcomes', { key: 'r1', value: 'outcome', partition: 3 });
    o.add('directives', { key: 'bo', value: 'award bo' });
    o.add('round-state', { key: 'r1', value: 'state', partition: 3 });
    o.add('directives', { key: 'ada', value: 'again ada' });
    return o;
  };
  const partitionOf = (_topic: string, key: unknown) => partitionOfKey(Buffer.from(String(key)), 6);

  it('go one topic-partition each on a cluster of several brokers, in order within a partition', () => {
    const chunks = out().partitionChunks(partitionOf);
    const requests = chunks.map((c) => c.topicMessages.map((t) => ({ topic: t.topic, partitions: [...new Set(t.messages.map((m) => m.partition))], values: t.messages.map((m) => m.value) })));
    for (const r of requests) expect(r).toHaveLength(1); // one topic
    for (const [r] of requests) expect(r!.partitions).toHaveLength(1); // one partition, named
    const ada = partitionOfKey(Buffer.from('ada'), 6);
    const bo = partitionOfKey(Buffer.from('bo'), 6);
    const values = (topic: string, partition: number) => requests.flat().filter((r) => r.topic === topic && r.partitions[0] === partition).flatMap((r) => r.values);
    expect(values('outcomes', 3)).toEqual(['closed', 'outcome']);
    expect(values('round-state', 3)).toEqual(['state']);
    if (ada === bo) expect(values('directives', ada)).toEqual(['award ada', 'award bo', 'again ada']);
    else {
      expect(values('directives', ada)).toEqual(['award ada', 'again ada']);
      expect(values('directives', bo)).toEqual(['award bo']);
    }
    expect(chunks.flatMap((c) => c.records)).toHaveLength(6);
  });

  it('split a partition over requests of at most about maxBytes, still in order', () => {
    const o = new Outputs();
    for (let i = 0; i < 10; i++) o.add('outcomes', { key: 'r', value: Buffer.alloc(100, i), partition: 0 });
    const chunks = o.partitionChunks(partitionOf, 400);
    expect(chunks.length).toBeGreaterThan(2);
    expect(chunks.flatMap((c) => c.topicMessages.flatMap((t) => t.messages.map((m) => (m.value as Buffer)[0])))).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  });
});
