import '../src/kafka/abortedFilter.ts';
import kafkajs, { type Producer } from 'kafkajs';

const { CompressionCodecs, CompressionTypes } = kafkajs;

/**
 * Raw Snappy with literals only: a valid Snappy stream (varint length, then
 * literal elements of at most 60 bytes), just not a smaller one. Brokers read
 * it (snappy-java takes raw Snappy as well as its framed form).
 */
export function literalSnappy(input: Buffer): Buffer {
  const parts: Buffer[] = [];
  const length: number[] = [];
  let n = input.length;
  do {
    let byte = n & 0x7f;
    n >>>= 7;
    if (n) byte |= 0x80;
    length.push(byte);
  } while (n);
  parts.push(Buffer.from(length));
  for (let i = 0; i < input.length; i += 60) {
    const chunk = input.subarray(i, i + 60);
    parts.push(Buffer.from([(chunk.length - 1) << 2]), chunk);
  }
  return Buffer.concat(parts);
}

/**
 * Produces a Snappy-compressed record, as a client of another language with
 * compression.type=snappy does. kafkajs has no Snappy codec of its own, so a
 * kafkajs consumer that fetches the record stops for good
 * (KafkaJSNotImplemented, CRASH without restart). The codec is lent to
 * kafkajs only for this send.
 */
export async function sendSnappyRecord(producer: Producer, topic: string, key: string, value: Buffer): Promise<void> {
  const codecs = CompressionCodecs as Record<number, unknown>;
  const previous = codecs[CompressionTypes.Snappy];
  codecs[CompressionTypes.Snappy] = () => ({
    compress: async (encoder: { buffer: Buffer }) => literalSnappy(encoder.buffer),
    decompress: async () => {
      throw new Error('this test codec only compresses');
    },
  });
  try {
    await producer.send({ topic, compression: CompressionTypes.Snappy, messages: [{ key, value }] });
  } finally {
    codecs[CompressionTypes.Snappy] = previous;
  }
}
