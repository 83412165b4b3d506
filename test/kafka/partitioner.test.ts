import { randomBytes } from 'node:crypto';
import kafkajs, { type PartitionerArgs } from 'kafkajs';
import { describe, expect, it } from 'vitest';
import { keyPartitioner } from '../../src/kafka/partitioner.ts';

const metadata = (n: number, leaderless: number[] = []) => Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: leaderless.includes(partitionId) ? -1 : 0, replicas: [0], isr: [0], partitionErrorCode: 0 }));

describe('the key partitioner', () => {
  it('places every keyed record where kafkajs\'s default partitioner (the Java client\'s) does', () => {
    const ours = keyPartitioner();
    const theirs = kafkajs.Partitioners.DefaultPartitioner();
    for (const partitions of [1, 3, 12, 100]) {
      for (let i = 0; i < 2_000; i++) {
        const key = i % 2 === 0 ? randomBytes(i % 61) : `round-${randomBytes(6).toString('hex')}-${'é'.repeat(i % 5)}`;
        const args = { topic: 't', partitionMetadata: metadata(partitions, [0]), message: { key, value: null } } as unknown as PartitionerArgs;
        expect(ours(args)).toBe(theirs(args));
      }
    }
  });

  it('keeps a partition it is given, and spreads records without a key over the partitions with a leader', () => {
    const ours = keyPartitioner();
    expect(ours({ topic: 't', partitionMetadata: metadata(12), message: { key: 'k', value: null, partition: 7 } } as unknown as PartitionerArgs)).toBe(7);
    const seen = new Set(Array.from({ length: 60 }, () => ours({ topic: 't', partitionMetadata: metadata(4, [2]), message: { value: null } } as unknown as PartitionerArgs)));
    expect([...seen].sort()).toEqual([0, 1, 3]);
  });
});
