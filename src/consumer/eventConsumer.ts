import type { Consumer, ConsumerConfig, Kafka, KafkaMessage } from 'kafkajs';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import type { DeadLetterWriter, SourceMessage } from '../deadletters/deadLetterWriter.ts';
import { MabeamError, describeError, isMabeamError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
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
  /** What to do when onEvent throws: dead-letter the event (default) or let Kafka redeliver it. */
  onHandlerError?: 'dead-letter' | 'retry';
  fromBeginning?: boolean;
  consumerConfig?: Omit<ConsumerConfig, 'groupId'>;
}

/**
 * A consumer group member that decodes every message and never stops on bad
 * input. A message that cannot be decoded, names an event type the topic does
 * not carry, or fails validation (including a key that disagrees with the
 * field the topic is keyed by) goes to dead-letters with its reason, and the
 * consumer moves on. Offsets advance only after the event was handled or the
 * dead letter written, so nothing is lost. Only a retriable failure (the
 * registry is down) makes Kafka deliver the message again.
 */
export class EventConsumer {
  readonly consumer: Consumer;
  private readonly options: EventConsumerOptions;
  private readonly byTopic: Map<string, TopicDefinition>;
  private crashed: Error | undefined;

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
      if (!payload.restart) this.crashed = payload.error;
      options.logger[payload.restart ? 'warn' : 'error']({ error: describeError(payload.error), restart: payload.restart }, 'consumer crashed');
    });
  }

  /** Set when kafkajs reported a crash it will not restart from. */
  get crash(): Error | undefined {
    return this.crashed;
  }

  async start(): Promise<void> {
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.byTopic.keys()], fromBeginning: this.options.fromBeginning ?? false });
    await this.consumer.run({
      eachMessage: async ({ topic, partition, message }) => this.handle(topic, partition, message),
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
      await this.options.onTombstone?.(context);
      return;
    }
    let decoded: DecodedEvent;
    try {
      decoded = await this.options.codec.decode(message.value, definition ? { allowedTypes: definition.eventTypes } : {});
      if (definition) checkKey(decoded, definition, context.key);
    } catch (error) {
      if (isMabeamError(error) && error.retriable) throw error;
      await this.options.deadLetters.write(source, error);
      await this.options.onDeadLettered?.(context, error);
      return;
    }
    try {
      await this.options.onEvent(decoded, context);
    } catch (error) {
      if (this.options.onHandlerError === 'retry') throw error;
      const failure = new MabeamError('HANDLER_FAILED', `Handling ${decoded.type} ${decoded.event['envelope'] ? (decoded.event['envelope'] as { eventId: string }).eventId : ''} failed: ${describeError(error)}`, {
          cause: error,
          details: { schemaId: decoded.schemaId },
        });
      await this.options.deadLetters.write(source, failure);
      await this.options.onDeadLettered?.(context, failure);
    }
  }
}

/** The message key must equal the event's field that the topic is keyed by (co-partitioning depends on it). */
function checkKey(decoded: DecodedEvent, definition: TopicDefinition, key: string | null): void {
  const expected = decoded.event[definition.key];
  if (typeof expected !== 'string') return;
  if (key !== expected) {
    throw new MabeamError(
      'VALIDATION_FAILED',
      `Invalid ${decoded.type}: the message key ${key === null ? "is missing" : `is "${key}"`} but ${definition.name} is keyed by ${definition.key} ("${expected}")`,
      { details: { schemaId: decoded.schemaId, type: decoded.fullName } },
    );
  }
}
