import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Kafka } from 'kafkajs';
import type { ChainableCommander, Redis } from 'ioredis';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import { EventConsumer } from '../consumer/eventConsumer.ts';
import type { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { MabeamError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { TopicDefinition } from '../topics/types.ts';
import { viewScripts, type ViewKeys, type ViewScripts } from './scripts.ts';

export interface CompactedViewOptions {
  kafka: Kafka;
  redis: Redis;
  codec: EventCodec;
  deadLetters: DeadLetterWriter;
  logger: Logger;
  /** The prefixed compacted topic. */
  topic: string;
  definition: TopicDefinition;
  /** Redis key prefix of this view, e.g. `mabeam:<topic prefix>:variables`. */
  namespace: string;
  /**
   * What to store for an event (JSON-serialisable); the decoded event itself
   * by default. Returning undefined leaves the key as it is (for topics that
   * carry other event types too).
   */
  project?: (decoded: DecodedEvent) => unknown;
  /**
   * Secondary indexes: the index names a stored value belongs to (e.g.
   * `capability:gpu`). Each is a Redis set of keys, kept exact as values change.
   */
  indexes?: (value: unknown) => string[];
  /**
   * The topic is written in transactions (each ends in a commit marker that
   * takes an offset and is never delivered): a partition is caught up when
   * only that marker is left.
   */
  transactional?: boolean;
}

/**
 * A read model of a compacted topic in Redis: one hash field per message key
 * holding the latest value, plus the last applied offset of each partition.
 * Records apply through a Lua script that skips anything at or before the
 * stored offset, so redelivery and replays are harmless. Redis is never the
 * source of truth: when the view's keys are missing (Redis flushed or new),
 * the view reads the topic again from the beginning. One process maintains a
 * namespace; other processes read it (or keep their own namespace).
 */
export class CompactedView {
  private readonly options: CompactedViewOptions;
  private readonly scripts: ViewScripts;
  private readonly admin: Admin;
  private consumer: EventConsumer | undefined;
  private rebuilding: Promise<void> | undefined;
  private generation = '';
  /** Offsets this instance passed without a view change (dead-lettered), per partition. */
  private readonly skipped = new Map<number, number>();
  readonly keys: ViewKeys;

  constructor(options: CompactedViewOptions) {
    this.options = options;
    this.scripts = viewScripts(options.redis);
    this.admin = options.kafka.admin();
    this.keys = {
      values: `${options.namespace}:values`,
      offsets: `${options.namespace}:offsets`,
      generation: `${options.namespace}:generation`,
      memberships: `${options.namespace}:memberships`,
    };
  }

  async start(): Promise<void> {
    const o = this.options;
    await this.admin.connect();
    // Keep a view this namespace already holds (records apply at most once); else start one.
    this.generation = (await o.redis.get(this.keys.generation)) ?? (await this.newGeneration());
    this.consumer = new EventConsumer({
      kafka: o.kafka,
      // A private group: every view instance reads every partition; positions live in Redis.
      groupId: `${o.namespace}:view:${randomBytes(4).toString('hex')}`,
      topics: [{ topic: o.topic, definition: o.definition }],
      codec: o.codec,
      deadLetters: o.deadLetters,
      logger: o.logger,
      fromBeginning: true,
      consumerConfig: { maxWaitTimeInMs: 100 },
      onHandlerError: 'retry',
      onEvent: async (decoded, context) => {
        if (context.key === null) return;
        const projected = o.project ? o.project(decoded) : decoded.event;
        if (projected === undefined) {
          this.skipped.set(context.partition, Math.max(this.skipped.get(context.partition) ?? -1, Number(context.offset)));
          return;
        }
        const sets = (o.indexes?.(projected) ?? []).map((name) => this.indexKey(name));
        await this.scripts.applyRecord(this.keys, this.generation, context.partition, context.offset, context.key, JSON.stringify(projected), sets);
      },
      onDeadLettered: (context) => {
        this.skipped.set(context.partition, Math.max(this.skipped.get(context.partition) ?? -1, Number(context.offset)));
      },
      onTombstone: async (context) => {
        if (context.key === null) return;
        await this.scripts.applyRecord(this.keys, this.generation, context.partition, context.offset, context.key, null);
      },
    });
    // A fetch of only aborted records or transaction markers applies nothing, but those offsets are read:
    // kafkajs reports them at the end of the (empty) batch. Not during a rebuild, whose seek to the
    // beginning such a report may predate.
    const consumer = this.consumer.consumer;
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      if (payload.topic !== o.topic || payload.batchSize !== 0 || this.rebuilding) return;
      this.skipped.set(payload.partition, Math.max(this.skipped.get(payload.partition) ?? -1, Number(payload.lastOffset)));
    });
    await this.consumer.start();
  }

  async stop(): Promise<void> {
    await this.consumer?.stop();
    await this.admin.disconnect();
  }

  /** The stored value of a key, rebuilding the view first if Redis lost it. */
  async get<T = unknown>(key: string): Promise<T | undefined> {
    const raw = await this.read((p) => p.hget(this.keys.values, key));
    return raw === null ? undefined : (JSON.parse(raw as string) as T);
  }

  /**
   * Runs a read in the same round trip as the check that the view is still
   * in Redis; if it is not, rebuilds it and reads again.
   */
  private async read(command: (pipeline: ChainableCommander) => ChainableCommander): Promise<unknown> {
    if (this.rebuilding) await this.rebuilding;
    const results = await command(this.options.redis.pipeline().get(this.keys.generation)).exec();
    const [generation, value] = (results ?? []).map(([error, result]) => {
      if (error) throw error;
      return result;
    });
    if (generation === this.generation) return value;
    await this.ensureBuilt();
    const [error, again] = (await command(this.options.redis.pipeline()).exec())?.[0] ?? [null, null];
    if (error) throw error;
    return again;
  }

  async entries<T = unknown>(): Promise<Map<string, T>> {
    await this.ensureBuilt();
    const all = await this.options.redis.hgetall(this.keys.values);
    return new Map(Object.entries(all).map(([k, v]) => [k, JSON.parse(v) as T]));
  }

  /** Partition offsets of the topic; retriable broker errors (a leader moving) are retried. */
  private async topicOffsets(deadline: number): Promise<Array<{ partition: number; low: string; high: string }>> {
    for (;;) {
      try {
        return await this.admin.fetchTopicOffsets(this.options.topic);
      } catch (error) {
        if (!(error as { retriable?: boolean }).retriable || Date.now() > deadline) throw error;
        await sleep(100);
      }
    }
  }

  private indexKey(name: string): string {
    return `${this.options.namespace}:index:${name}`;
  }

  /** Keys whose value belongs to an index (see `indexes`). */
  async lookup(index: string): Promise<string[]> {
    return ((await this.read((p) => p.smembers(this.indexKey(index)))) as string[]).sort();
  }

  /** Resolves once the view has applied everything the topic held when called. */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    if (!this.rebuilding) await this.ensureBuilt();
    const deadline = Date.now() + timeoutMs;
    const ends = await this.topicOffsets(deadline);
    for (;;) {
      const crash = this.consumer?.crash;
      if (crash) throw new MabeamError('HANDLER_FAILED', `The view of ${this.options.topic} stopped: ${crash.message}`, { cause: crash });
      const applied = await this.options.redis.hgetall(this.keys.offsets);
      const position = (partition: number): number => Math.max(Number(applied[String(partition)] ?? -1), this.skipped.get(partition) ?? -1);
      // The last record is at high - 1, or at high - 2 before the commit marker of a transactional topic.
      const last = (p: { high: string }) => Number(p.high) - (this.options.transactional ? 2 : 1);
      const behind = ends.filter((p) => Number(p.high) > Number(p.low) && position(p.partition) < last(p));
      if (behind.length === 0) return;
      if (Date.now() > deadline) {
        const where = behind.map((p) => `partition ${p.partition} at ${position(p.partition)} of ${Number(p.high) - 1}`).join(', ');
        throw new MabeamError('HANDLER_FAILED', `The view of ${this.options.topic} did not catch up within ${timeoutMs} ms (${where}).`);
      }
      await sleep(20);
    }
  }

  private async newGeneration(): Promise<string> {
    const generation = `${Date.now().toString(36)}-${randomBytes(4).toString('hex')}`;
    await this.options.redis.set(this.keys.generation, generation);
    return generation;
  }

  /** Reads the topic again from the beginning when the view's generation is gone from Redis. */
  private async ensureBuilt(): Promise<void> {
    if (this.rebuilding) return this.rebuilding;
    if ((await this.options.redis.get(this.keys.generation)) === this.generation) return;
    this.rebuilding = this.rebuild().finally(() => {
      this.rebuilding = undefined;
    });
    return this.rebuilding;
  }

  private async rebuild(): Promise<void> {
    const o = this.options;
    o.logger.info({ topic: o.topic, namespace: o.namespace }, 'view missing from Redis; rebuilding from the topic');
    const indexKeys = await scanKeys(o.redis, `${o.namespace}:index:*`);
    await o.redis.del(this.keys.values, this.keys.offsets, this.keys.memberships, ...indexKeys);
    this.skipped.clear();
    // Records read before this point carry the old generation and are refused by the script.
    this.generation = await this.newGeneration();
    const partitions = await this.topicOffsets(Date.now() + 30_000);
    for (const p of partitions) this.consumer?.consumer.seek({ topic: o.topic, partition: p.partition, offset: p.low });
    await this.caughtUp();
  }
}

async function scanKeys(redis: Redis, pattern: string): Promise<string[]> {
  const keys: string[] = [];
  let cursor = '0';
  do {
    const [next, batch] = await redis.scan(cursor, 'MATCH', pattern, 'COUNT', 500);
    cursor = next;
    keys.push(...batch);
  } while (cursor !== '0');
  return keys;
}
