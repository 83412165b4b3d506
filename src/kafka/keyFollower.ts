/**
 * Follows one key of a topic as it is written: a throw-away consumer
 * (committed data only) of the one partition the key hashes to, read from
 * the beginning, handing over each decoded record of that key — what a
 * client that waits on one study or one plan reads.
 */
import type { Consumer, Kafka } from 'kafkajs';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import { partitionOfKey } from '../engine/routing.ts';
import { describeError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { prefixOfTopic, readerGroupId } from '../topics/names.ts';

export interface KeyFollowerOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  /** The prefixed topic and its partition count. */
  topic: string;
  partitions: number;
  key: string;
  /** Names the throw-away group: `<groupPrefix>-<random>`. */
  groupPrefix: string;
  /** Each record of the key, decoded, in log order (an undecodable one is logged and skipped). */
  onEvent: (decoded: DecodedEvent) => void;
}

export class KeyFollower {
  private readonly o: KeyFollowerOptions;
  private consumer: Consumer | undefined;

  constructor(options: KeyFollowerOptions) {
    this.o = options;
  }

  /** Resolves once the consumer reads. */
  async start(): Promise<void> {
    const o = this.o;
    const mine = partitionOfKey(Buffer.from(o.key), o.partitions);
    const others = Array.from({ length: o.partitions }, (_, p) => p).filter((p) => p !== mine);
    const consumer = o.kafka.consumer({ groupId: readerGroupId(prefixOfTopic(o.topic), o.groupPrefix), maxWaitTimeInMs: 100 });
    this.consumer = consumer;
    let joined = false;
    const ready = new Promise<void>((resolve) => {
      consumer.on(consumer.events.GROUP_JOIN, () => {
        if (others.length > 0) consumer.pause([{ topic: o.topic, partitions: others }]);
        if (!joined) {
          joined = true;
          const off = consumer.on(consumer.events.FETCH, () => {
            off();
            resolve();
          });
        }
      });
    });
    await consumer.connect();
    await consumer.subscribe({ topic: o.topic, fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachMessage: async ({ message, partition }) => {
        if (partition !== mine || message.key?.toString() !== o.key) return;
        let decoded;
        try {
          decoded = await o.codec.decode(message.value);
        } catch (error) {
          o.logger.warn({ topic: o.topic, partition, offset: message.offset, error: describeError(error) }, 'an undecodable record; skipped');
          return;
        }
        o.onEvent(decoded);
      },
    });
    await ready;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect().catch(() => undefined);
  }
}
