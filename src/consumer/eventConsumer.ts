import type { Consumer, ConsumerConfig, Kafka, KafkaMessage } from 'kafkajs';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import type { DeadLetterWriter, SourceMessage } from '../deadletters/deadLetterWriter.ts';
import { MabeamError, describeError, isMabeamError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { StoppedLatch, type StopsForGood } from '../runtime/stopped.ts';
import type { TopicDefinition } from '../topics/types.ts';

export interface ConsumedTopic {
  /** The prefixed topic name. */
  topic: string;
  definition: TopicDefinition;
}

export interface EventContext {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  headers: KafkaMessage['headers'];
}

export interface EventConsumerOptions {
  kafka: Kafka;
  groupId: string;
  topics: ConsumedTopic[];
  codec: EventCodec;
  deadLetters: DeadLetterWriter;
  logger: Logger;
  onEvent: (event: DecodedEvent, context: EventContext) => Promise<void> | void;
  /** A null value on a compacted topic: the key was deleted. Without a handler it is ignored. */
  onTombstone?: (context: EventContext) => Promise<void> | void;
  /** Called after a message went to dead-letters (the consumer then moves past it). */
  onDeadLettered?: (context: EventContext, error: unknown) => Promise<void> | void;
  /**
   * What to do when onEvent (or onTombstone) throws: dead-letter the event
   * (default), or let Kafka deliver it again — then a retriable error is
   * tried again and any other stops the consumer for good (see
   * stoppedForGood), so a handler on 'retry' must catch what a record's
   * content can cause.
   */
  onHandlerError?: 'dead-letter' | 'retry';
  fromBeginning?: boolean;
  /** How many partitions' messages are handled at once (kafkajs's partitionsConsumedConcurrently; default 1). Each partition's messages are handled in order. */
  partitionsConsumedConcurrently?: number;
  consumerConfig?: Omit<ConsumerConfig, 'groupId'>;
}

/**
 * A consumer group member that decodes every message and never stops on bad
 * input. A message that cannot be decoded, names an event type the topic does
 * not carry, or fails validation (including a key that disagrees with the
 * field the topic is keyed by) goes to dead-letters with its reason, and the
 * consumer moves on. Offsets advance only after the event was handled or the
 * dead letter written, so nothing is lost. Only a retriable failure (the
 * registry is down) makes Kafka deliver the message again. A dead letter
 * the broker refuses for its size is written without the original value
 * (the reason says so, and where the record is).
 *
 * `stoppedForGood` resolves if kafkajs stops the consumer with an error it
 * will not restart from (a record batch it cannot read, a non-retriable
 * broker error, a non-retriable handler error on 'retry').
 */
export class EventConsumer implements StopsForGood {
  readonly consumer: Consumer;
  private readonly options: EventConsumerOptions;
  private readonly byTopic: Map<string, TopicDefinition>;
  private readonly latch = new StoppedLatch();

  readonly groupId: string;

  constructor(options: EventConsumerOptions) {
    this.options = options;
    this.groupId = options.groupId;
    this.byTopic = new Map(options.topics.map((t) => [t.topic, t.definition]));
    // An idle fetch waits at most this long; the broker answers at once when data arrives, so it
    // costs no latency, and a short wait lets disconnect() finish quickly.
    this.consumer = options.kafka.consumer({ maxWaitTimeInMs: 500, ...options.consumerConfig, groupId: options.groupId });
    this.consumer.on(this.consumer.events.CRASH, ({ payload }) => {
      // After a retriable error kafkajs restarts the consumer itself; only a crash it will not
      // restart from stops this consumer.
      options.logger[payload.restart ? 'warn' : 'error']({ group: options.groupId, error: describeError(payload.error), restart: payload.restart }, 'consumer crashed');
    });
    this.latch.watch(this.consumer);
  }

  /** Set when kafkajs reported a crash it will not restart from. */
  get crash(): Error | undefined {
    return this.latch.error;
  }

  get stoppedForGood(): Promise<Error> {
    return this.latch.stoppedForGood;
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.byTopic.keys()], fromBeginning: this.options.fromBeginning ?? false });
    // kafkajs heartbeats between messages: a handler slower than the session timeout would lose
    // the member its partitions, and the message redelivered to a new member would do it again.
    // So the member beats while a handler works.
    const beatEveryMs = this.options.consumerConfig?.heartbeatInterval ?? 3_000;
    await this.consumer.run({
      partitionsConsumedConcurrently: this.options.partitionsConsumedConcurrently ?? 1,
      eachMessage: async ({ topic, partition, message, heartbeat }) => {
        const beat = setInterval(() => void heartbeat().catch(() => undefined), beatEveryMs);
        try {
          await this.handle(topic, partition, message);
        } finally {
          clearInterval(beat);
        }
      },
    });
  }

  async stop(): Promise<void> {
    await this.consumer.disconnect();
  }

  private async handle(topic: string, partition: number, message: KafkaMessage): Promise<void> {
    const definition = this.byTopic.get(topic);
    const context: EventContext = {
      topic,
      partition,
      offset: message.offset,
      key: message.key ? message.key.toString('utf8') : null,
      headers: message.headers,
    };
    const source: SourceMessage = {
      topic,
      partition,
      offset: message.offset,
      timestamp: message.timestamp,
      key: message.key,
      value: message.value,
      ...(message.headers ? { headers: message.headers } : {}),
    };
    if (message.value === null && definition?.config['cleanup.policy']?.includes('compact')) {
      try {
        await this.options.onTombstone?.(context);
      } catch (error) {
        if (this.options.onHandlerError === 'retry') throw error;
        await this.deadLetter(source, context, new MabeamError('HANDLER_FAILED', `Handling the tombstone of key ${context.key ?? '(none)'} failed: ${describeThrown(error)}`, { cause: error }));
      }
      return;
    }
    let decoded: DecodedEvent;
    try {
      decoded = await this.options.codec.decode(message.value, definition ? { allowedTypes: definition.eventTypes } : {});
      if (definition) checkKey(decoded, definition, context.key);
    } catch (error) {
      if (isMabeamError(error) && error.retriable) throw error;
      await this.deadLetter(source, context, error);
      return;
    }
    try {
      await this.options.onEvent(decoded, context);
    } catch (error) {
      if (this.options.onHandlerError === 'retry') throw error;
      const envelope = decoded.event['envelope'] as { eventId?: unknown } | undefined;
      const failure = new MabeamError('HANDLER_FAILED', `Handling ${decoded.type} ${String(envelope?.eventId ?? '')} failed: ${describeThrown(error)}`, {
        cause: error,
        details: { schemaId: decoded.schemaId },
      });
      await this.deadLetter(source, context, failure);
    }
  }

  /** Writes the dead letter (without the original value if the broker refuses it for its size), then tells onDeadLettered. */
  private async deadLetter(source: SourceMessage, context: EventContext, error: unknown): Promise<void> {
    try {
      await this.options.deadLetters.write(source, error);
    } catch (writeError) {
      if (!tooLarge(writeError)) throw writeError;
      const code = isMabeamError(error) ? error.code : 'HANDLER_FAILED';
      const where = `${source.topic}/${source.partition}@${source.offset}`;
      // The value (and headers, and a key over 1 KB) made it too large: the dead letter says where they are.
      const keepKey = (source.key?.length ?? 0) <= 1024;
      const { headers: _headers, ...withoutHeaders } = source;
      await this.options.deadLetters.write(
        { ...withoutHeaders, value: null, key: keepKey ? source.key : null },
        new MabeamError(code, `${describeThrown(error)} (the original record, ${source.value?.length ?? 0} bytes of value, made the dead letter too large to write; its value${keepKey ? '' : ', key'} and headers are kept only at ${where}, while retained)`, {
          details: isMabeamError(error) ? error.details : {},
        }),
      );
    }
    try {
      await this.options.onDeadLettered?.(context, error);
    } catch (hookError) {
      // The dead letter is written: the message is accounted for. A failing hook is the caller's
      // fault to be retried, or (dead-letter policy) said and passed.
      if (this.options.onHandlerError === 'retry') throw hookError;
      this.options.logger.error({ topic: source.topic, partition: source.partition, offset: source.offset, error: describeThrown(hookError) }, 'onDeadLettered failed');
    }
  }
}

/** Whether a producer error is the broker refusing a record for its size (kafkajs wraps it in its retrier's error). */
function tooLarge(error: unknown): boolean {
  for (let e: unknown = error, depth = 0; e && typeof e === 'object' && depth < 5; e = (e as { cause?: unknown }).cause, depth++) {
    const { type } = e as { type?: unknown };
    if (type === 'MESSAGE_TOO_LARGE' || type === 'RECORD_LIST_TOO_LARGE') return true;
  }
  return false;
}

/** Anything thrown, as text, even an object that cannot be turned into a string. */
function describeThrown(error: unknown): string {
  try {
    return String(describeError(error));
  } catch {
    return `a thrown ${typeof error} that cannot be described`;
  }
}

/** The message key must equal the event's field that the topic is keyed by (co-partitioning depends on it). */
function checkKey(decoded: DecodedEvent, definition: TopicDefinition, key: string | null): void {
  // The key field is named by the topic's definition, at run time.
  const fields: object = decoded.event;
  const expected = (fields as Record<string, unknown>)[definition.key];
  if (typeof expected !== 'string') return;
  if (key !== expected) {
    throw new MabeamError(
      'VALIDATION_FAILED',
      `Invalid ${decoded.type}: the message key ${key === null ? "is missing" : `is "${key}"`} but ${definition.name} is keyed by ${definition.key} ("${expected}")`,
      { details: { schemaId: decoded.schemaId, type: decoded.fullName } },
    );
  }
}
