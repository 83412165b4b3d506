import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Kafka } from 'kafkajs';
import type { ChainableCommander, Redis } from 'ioredis';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import { EventConsumer } from '../consumer/eventConsumer.ts';
import type { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { MabeamError } from '../errors.ts';
import { ReadPositions, fetchEnds, type PartitionEnd } from '../kafka/readToEnd.ts';
import type { Logger } from '../log/logger.ts';
import type { TopicDefinition } from '../topics/types.ts';
import { viewScripts, type ViewKeys, type ViewScripts } from './scripts.ts';
import { prefixOfTopic, readerGroupId } from '../topics/names.ts';

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
   * The topic is written in transactions. Informational: every topic is
   * caught up by the one end rule of readToEnd (src/kafka/readToEnd.ts),
   * which counts commit markers and aborted records as read.
   */
  transactional?: boolean;
  /**
   * The view belongs to this process only (its namespace names the process):
   * its keys go when it stops, and while it runs they carry a time to live
   * (`disposableTtlMs`, default 10 min), set on keys new since and renewed
   * every 5 s (at most a sixth of it), so the keys of a process that died
   * without stopping go too. A view whose keys
   * expired (a process stalled that long) is rebuilt from the topic.
   */
  disposable?: boolean;
  disposableTtlMs?: number;
}

/**
 * A read model of a compacted topic in Redis: one hash field per message key
 * holding the latest value, plus the last applied offset of each partition.
 * Records apply through a Lua script that skips anything at or before the
 * stored offset, so redelivery and replays are harmless. Redis is never the
 * source of truth: when the view's keys are missing (Redis flushed or new),
 * the view reads the topic again from the beginning, with a new consumer.
 * One process maintains a namespace; other processes read it (or keep their
 * own namespace). Caught up means read to the end readToEnd defines: every
 * offset below the end handled (applied, dead-lettered, or a marker).
 */
export class CompactedView {
  private readonly options: CompactedViewOptions;
  private readonly scripts: ViewScripts;
  private consumer: EventConsumer | undefined;
  /** What the current consumer has read (a rebuild starts a new consumer, and new positions). */
  private positions = new ReadPositions();
  private rebuilding: Promise<void> | undefined;
  private generation = '';
  private renewal: NodeJS.Timeout | undefined;
  readonly keys: ViewKeys;

  constructor(options: CompactedViewOptions) {
    this.options = options;
    this.scripts = viewScripts(options.redis);
    this.keys = {
      values: `${options.namespace}:values`,
      offsets: `${options.namespace}:offsets`,
      generation: `${options.namespace}:generation`,
      memberships: `${options.namespace}:memberships`,
    };
  }

  async start(): Promise<void> {
    // Keep a view this namespace already holds (records apply at most once); else start one.
    this.generation = (await this.options.redis.get(this.keys.generation)) ?? (await this.newGeneration());
    await this.startConsumer();
    if (this.options.disposable) {
      const ttlMs = this.options.disposableTtlMs ?? 600_000;
      await this.renew(ttlMs);
      this.renewal = setInterval(() => {
        this.renew(ttlMs).catch((error: unknown) => this.options.logger.warn({ namespace: this.options.namespace, error: String(error) }, 'could not renew the view\'s time to live'));
      }, Math.max(1_000, Math.min(5_000, Math.floor(ttlMs / 6))));
      this.renewal.unref();
    }
  }

  /** Every key of the view: its values, offsets, generation, memberships and indexes. */
  private async allKeys(): Promise<string[]> {
    const indexKeys = await scanKeys(this.options.redis, `${this.options.namespace}:index:*`);
    return [this.keys.values, this.keys.offsets, this.keys.generation, this.keys.memberships, ...indexKeys];
  }

  private async renew(ttlMs: number): Promise<void> {
    const pipeline = this.options.redis.pipeline();
    for (const key of await this.allKeys()) pipeline.pexpire(key, ttlMs);
    await pipeline.exec();
  }

  /** A consumer reading the topic from the beginning into the view, with positions of its own. */
  private async startConsumer(): Promise<void> {
    const o = this.options;
    const positions = new ReadPositions();
    const read = (partition: number, offset: string) => positions.advance(o.topic, partition, Number(offset) + 1);
    const consumer = new EventConsumer({
      kafka: o.kafka,
      // A private group: every view instance reads every partition; positions live in Redis.
      groupId: readerGroupId(prefixOfTopic(o.topic), 'view'),
      topics: [{ topic: o.topic, definition: o.definition }],
      codec: o.codec,
      deadLetters: o.deadLetters,
      logger: o.logger,
      fromBeginning: true,
      consumerConfig: { maxWaitTimeInMs: 100 },
      onHandlerError: 'retry',
      onEvent: async (decoded, context) => {
        if (context.key !== null) {
          const projected = o.project ? o.project(decoded) : decoded.event;
          if (projected !== undefined) {
            const sets = (o.indexes?.(projected) ?? []).map((name) => this.indexKey(name));
            await this.scripts.applyRecord(this.keys, this.generation, context.partition, context.offset, context.key, JSON.stringify(projected), sets);
          }
        }
        read(context.partition, context.offset);
      },
      onDeadLettered: (context) => void read(context.partition, context.offset),
      onTombstone: async (context) => {
        if (context.key !== null) await this.scripts.applyRecord(this.keys, this.generation, context.partition, context.offset, context.key, null);
        read(context.partition, context.offset);
      },
    });
    // kafkajs reports each batch once every message in it was handled, and a batch of only aborted
    // records or transaction markers, which reaches no handler: its offsets are read too.
    positions.followAllBatches(consumer.consumer);
    this.consumer = consumer;
    this.positions = positions;
    await consumer.start();
  }

  async stop(): Promise<void> {
    clearInterval(this.renewal);
    await this.consumer?.stop();
    if (this.options.disposable) await this.options.redis.del(...(await this.allKeys())).catch(() => undefined);
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
    const ends = await fetchEnds(this.options.kafka, [this.options.topic], undefined, deadline);
    await this.readTo(ends, deadline, timeoutMs);
  }

  private async readTo(ends: PartitionEnd[], deadline: number, timeoutMs: number): Promise<void> {
    for (;;) {
      const crash = this.consumer?.crash;
      if (crash) throw new MabeamError('HANDLER_FAILED', `The view of ${this.options.topic} stopped: ${crash.message}`, { cause: crash });
      if (this.positions.behind(ends).length === 0) return;
      if (Date.now() > deadline) {
        const behind = this.positions.behind(ends);
        throw new MabeamError('LOG_READ_TIMEOUT', `The view of ${this.options.topic} did not catch up within ${timeoutMs} ms (not yet read: ${this.positions.describe(ends)}).`, {
          details: { behind: behind.map((e) => ({ topic: e.topic, partition: e.partition, position: this.positions.get(e.topic, e.partition) ?? e.low, end: e.high })) },
        });
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
    // The consumer that built the lost view stops first: nothing it still holds can reach the new one.
    await this.consumer?.stop();
    const indexKeys = await scanKeys(o.redis, `${o.namespace}:index:*`);
    await o.redis.del(this.keys.values, this.keys.offsets, this.keys.memberships, ...indexKeys);
    this.generation = await this.newGeneration();
    await this.startConsumer();
    const deadline = Date.now() + 30_000;
    await this.readTo(await fetchEnds(o.kafka, [o.topic], undefined, deadline), deadline, 30_000);
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
