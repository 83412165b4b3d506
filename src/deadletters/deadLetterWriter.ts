import type { IHeaders, Producer } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { MabeamError, describeError } from '../errors.ts';
import { deterministicEventId, newEnvelope } from '../events/envelope.ts';
import type { DeadLetter, DeadLetterHeader } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { EventProducer } from '../producer/eventProducer.ts';

/** A consumed message as it came off the topic, bytes untouched. */
export interface SourceMessage {
  topic: string;
  partition: number;
  offset: string;
  timestamp?: string;
  key: Buffer | null;
  value: Buffer | null;
  headers?: IHeaders;
}

export interface DeadLetterWriterOptions {
  producer: Pick<Producer, 'send'>;
  codec: EventCodec;
  /** The prefixed dead-letters topic. */
  topic: string;
  producerId: string;
  consumerGroup?: string;
  metrics?: Metrics;
  logger: Logger;
}

export const deadLetterHeaders = { reason: 'mabeam-dead-letter-reason', sourceTopic: 'mabeam-dead-letter-source' } as const;

function headerList(headers: IHeaders | undefined): DeadLetterHeader[] {
  const list: DeadLetterHeader[] = [];
  for (const [key, raw] of Object.entries(headers ?? {})) {
    for (const value of Array.isArray(raw) ? raw : [raw]) {
      list.push({ key, value: value === undefined ? null : Buffer.isBuffer(value) ? value : Buffer.from(value) });
    }
  }
  return list;
}

/**
 * Writes a message that could not be decoded or handled to the dead-letter
 * topic: the reason code and text, where it came from, and its original key,
 * value and headers byte for byte. Keyed by source topic. Resolves only once
 * the broker has the dead letter, so the caller may then move past the
 * message: nothing is lost.
 */
export class DeadLetterWriter {
  private readonly events: EventProducer;
  private readonly options: DeadLetterWriterOptions;

  constructor(options: DeadLetterWriterOptions) {
    this.options = options;
    this.events = new EventProducer(options.producer, options.codec);
  }

  async write(message: SourceMessage, error: unknown): Promise<DeadLetter> {
    const reasonCode = error instanceof MabeamError ? error.code : 'HANDLER_FAILED';
    const schemaId = error instanceof MabeamError && typeof error.details['schemaId'] === 'number' ? error.details['schemaId'] : null;
    const deadLetter: DeadLetter = {
      // One dead letter per source record: its id derives from where the record was read.
      envelope: newEnvelope('DeadLetter', this.options.producerId, {
        correlationId: `${message.topic}/${message.partition}/${message.offset}`,
        eventId: deterministicEventId('DeadLetter', message.topic, String(message.partition), message.offset),
      }),
      reasonCode,
      reason: describeError(error),
      sourceTopic: message.topic,
      sourcePartition: message.partition,
      sourceOffset: Number(message.offset),
      sourceTimestamp: message.timestamp === undefined ? null : Number(message.timestamp),
      consumerGroup: this.options.consumerGroup ?? null,
      schemaId,
      key: message.key,
      value: message.value,
      headers: headerList(message.headers),
    };
    await this.events.send(this.options.topic, message.topic, 'DeadLetter', deadLetter, {
      headers: { [deadLetterHeaders.reason]: reasonCode, [deadLetterHeaders.sourceTopic]: message.topic },
    });
    this.options.metrics?.deadLetters.inc({ topic: message.topic, reason: reasonCode });
    this.options.logger.warn(
      { topic: message.topic, partition: message.partition, offset: message.offset, reasonCode, reason: deadLetter.reason },
      'message sent to dead letters',
    );
    return deadLetter;
  }
}
