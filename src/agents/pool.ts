import type { Kafka } from 'kafkajs';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import { EventConsumer, type EventContext } from '../consumer/eventConsumer.ts';
import type { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { MabeamError } from '../errors.ts';
import { joinedAndFetched } from '../kafka/client.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { StopsForGood } from '../runtime/stopped.ts';
import type { TopicDefinition } from '../topics/types.ts';
import { heartbeatIntervalFor } from '../kafka/sessionTimeout.ts';

export interface PoolMemberOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  groupId: string;
  /** The prefixed topics the pool reads, with their definitions. */
  topics: Array<{ topic: string; definition: TopicDefinition }>;
  deadLetters: DeadLetterWriter;
  sessionTimeoutMs: number;
  /** How many partitions are handled at once (see AgentHostOptions.concurrentPartitions). */
  concurrentPartitions: number;
  metrics?: Metrics;
  onEvent: (event: DecodedEvent, context: EventContext) => Promise<void>;
}

/**
 * This instance's membership of its pool's consumer group: it joins, pins
 * the start position of every partition the pool never committed, keeps the
 * pool's lag (the consumer-lag gauge and what heartbeats report), and says
 * when its consumer has stopped for good.
 */
export class PoolMember implements StopsForGood {
  readonly consumer: EventConsumer;
  private readonly options: PoolMemberOptions;
  private readonly lagByPartition = new Map<string, number>();

  constructor(options: PoolMemberOptions) {
    this.options = options;
    this.consumer = new EventConsumer({
      kafka: options.kafka,
      groupId: options.groupId,
      topics: options.topics,
      codec: options.codec,
      deadLetters: options.deadLetters,
      logger: options.logger,
      // Handlers are sandboxed in dispatch; anything escaping it is a fault of the host (its
      // producer): Kafka delivers the message again.
      onHandlerError: 'retry',
      partitionsConsumedConcurrently: options.concurrentPartitions,
      consumerConfig: {
        sessionTimeout: options.sessionTimeoutMs,
        heartbeatInterval: heartbeatIntervalFor(options.sessionTimeoutMs),
        maxWaitTimeInMs: 200,
      },
      onEvent: options.onEvent,
    });
    const consumer = this.consumer.consumer;
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      this.lagByPartition.set(`${payload.topic}/${payload.partition}`, Number(payload.offsetLag));
      // The pool's lag per topic: what its members have yet to read.
      const topicLag = [...this.lagByPartition].filter(([key]) => key.startsWith(`${payload.topic}/`)).reduce((sum, [, l]) => sum + Math.max(0, l), 0);
      options.metrics?.consumerLag.set({ group: options.groupId, topic: payload.topic }, topicLag);
    });
  }

  get stoppedForGood(): Promise<Error> {
    return this.consumer.stoppedForGood;
  }

  /** What this member has yet to read, over all its partitions. */
  get lag(): number {
    return [...this.lagByPartition.values()].reduce((sum, l) => sum + Math.max(0, l), 0);
  }

  /**
   * Joins the group and returns once this member has fetched and its start
   * positions are committed; rejects with the cause if its consumer stops
   * for good meanwhile (it would never have joined).
   */
  async join(): Promise<void> {
    const joined = joinedAndFetched(this.consumer.consumer);
    const stopped = this.stoppedForGood.then((cause) => {
      throw new MabeamError('HANDLER_FAILED', `The consumer of group ${this.options.groupId} crashed while joining and kafkajs will not restart it: ${cause.message}`, { cause });
    });
    this.options.logger.debug({ group: this.options.groupId }, 'joining the pool');
    await Promise.race([this.consumer.start(), stopped]);
    const assignment = await Promise.race([joined, stopped]);
    this.options.logger.debug({ assignment }, 'joined; pinning start positions');
    await Promise.race([this.pinUncommitted(assignment), stopped]);
  }

  stop(): Promise<void> {
    return this.consumer.stop();
  }

  /**
   * A partition the pool has never committed would be read from wherever
   * "latest" is when it is next fetched — after a rebalance or a restart that
   * can skip requests. So, once, every such partition gets its current end
   * committed (kafkajs commits a seek), and join() returns only when the
   * commits are visible: from then on the pool always resumes from its own
   * committed positions, and nothing produced after join() is missed.
   */
  private async pinUncommitted(assignment: Record<string, number[]>): Promise<void> {
    const { groupId } = this.options;
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      const topics = Object.keys(assignment);
      const committed = await admin.fetchOffsets({ groupId, topics });
      const pinned: Array<{ topic: string; partition: number; offset: string }> = [];
      for (const { topic, partitions } of committed) {
        const open = partitions.filter((p) => Number(p.offset) < 0 && assignment[topic]?.includes(p.partition));
        if (open.length === 0) continue;
        const ends = new Map((await admin.fetchTopicOffsets(topic)).map((e) => [e.partition, e.high]));
        for (const { partition } of open) {
          const offset = ends.get(partition) ?? '0';
          this.consumer.consumer.seek({ topic, partition, offset });
          pinned.push({ topic, partition, offset });
        }
      }
      if (pinned.length === 0) return;
      const deadline = Date.now() + 30_000;
      for (;;) {
        const now = await admin.fetchOffsets({ groupId, topics: [...new Set(pinned.map((p) => p.topic))] });
        const at = new Map(now.flatMap((t) => t.partitions.map((p) => [`${t.topic}/${p.partition}`, Number(p.offset)])));
        if (pinned.every((p) => (at.get(`${p.topic}/${p.partition}`) ?? -1) >= 0)) return;
        if (Date.now() > deadline) throw new MabeamError('HANDLER_FAILED', `Committing the start positions of ${groupId} did not complete within 30 s.`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await admin.disconnect();
    }
  }
}
