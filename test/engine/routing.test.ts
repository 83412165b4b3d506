import { randomBytes } from 'node:crypto';
import kafkajs from 'kafkajs';
import { describe, expect, it } from 'vitest';
import '../../src/kafka/abortedFilter.ts';
import { murmur2, partitionOfKey } from '../../src/engine/routing.ts';

describe('the partition a key belongs on', () => {
  const partitioner = kafkajs.Partitioners.DefaultPartitioner();
  const metadata = (n: number) => Array.from({ length: n }, (_, partitionId) => ({ partitionId, leader: 0, partitionErrorCode: 0, replicas: [0], isr: [0] }));

  it('is where kafkajs (and the Java client) put a keyed record, for keys of every length and content', () => {
    for (const partitions of [1, 3, 6, 12, 50]) {
      const partitionMetadata = metadata(partitions);
      for (let i = 0; i < 2_000; i++) {
        const key = i % 3 === 0 ? Buffer.from(`round-${i}-${randomBytes(4).toString('hex')}`) : randomBytes(i % 41);
        expect(partitionOfKey(key, partitions), `${key.toString('hex')} of ${partitions}`).toBe(partitioner({ topic: 't', partitionMetadata, message: { key, value: null } }));
      }
    }
  });

  it('computes the Java client\'s murmur2', () => {
    // Values of org.apache.kafka.common.utils.Utils.murmur2 (see its UtilsTest).
    expect(murmur2(Buffer.from('21'))).toBe(-973932308);
    expect(murmur2(Buffer.from('foobar'))).toBe(-790332482);
    expect(murmur2(Buffer.from('a-little-bit-long-string'))).toBe(-985981536);
    expect(murmur2(Buffer.from('a-little-bit-longer-string'))).toBe(-1486304829);
    expect(murmur2(Buffer.from('lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8'))).toBe(-58897971);
    expect(murmur2(Buffer.from([97, 98, 99]))).toBe(479470107);
  });
});
