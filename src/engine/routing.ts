/**
 * The partition a key belongs on: murmur2 of the key bytes modulo the
 * partition count, as the Java client and kafkajs place keyed records.
 * Producers in other languages may place a record elsewhere (librdkafka's
 * default, `consistent_random`, is CRC32): the engine moves such a record to
 * this partition, so a round's events meet on one owner whoever wrote them.
 * Every record read by the engine and by replay goes through this, so it is
 * the Java client's 32-bit murmur2 in plain integer arithmetic (kafkajs's
 * own does it with 64-bit Long objects, some fifty times slower).
 */
/** The header of a record the engine copied to its key's partition: where it was first written, `topic/partition/offset`. */
export const forwardedFromHeader = 'mabeam-forwarded-from';

export function partitionOfKey(key: Buffer, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions;
}

const seed = 0x9747b28c;
const m = 0x5bd1e995;

/** Kafka's murmur2 (org.apache.kafka.common.utils.Utils.murmur2), as a signed 32-bit integer. */
export function murmur2(data: Uint8Array): number {
  const length = data.length;
  let h = (seed ^ length) | 0;
  const length4 = length >>> 2;
  for (let i = 0; i < length4; i++) {
    const i4 = i * 4;
    let k = data[i4]! | (data[i4 + 1]! << 8) | (data[i4 + 2]! << 16) | (data[i4 + 3]! << 24);
    k = Math.imul(k, m);
    k ^= k >>> 24;
    k = Math.imul(k, m);
    h = Math.imul(h, m) ^ k;
  }
  const tail = length & ~3;
  const rest = length & 3;
  if (rest === 3) h ^= data[tail + 2]! << 16;
  if (rest >= 2) h ^= data[tail + 1]! << 8;
  if (rest >= 1) h = Math.imul(h ^ data[tail]!, m);
  h ^= h >>> 13;
  h = Math.imul(h, m);
  h ^= h >>> 15;
  return h | 0;
}
