import type { IHeaders, Producer, RecordMetadata } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import type { EventTypeName, EventTypes } from '../events/types.ts';

export interface TraceContext {
  traceparent?: string;
  tracestate?: string;
}

export interface SendOptions {
  trace?: TraceContext;
  headers?: IHeaders;
}

/** Headers every event carries, so tools can route and inspect without decoding. */
export const eventHeaders = { type: 'mabeam-event-type', id: 'mabeam-event-id' } as const;

/**
 * Encodes events with the codec and produces them keyed as the topic's
 * definition says. The caller owns the kafkajs producer (and its
 * transactions, where outcomes must be written atomically).
 */
export class EventProducer {
  private readonly producer: Pick<Producer, 'send'>;
  private readonly codec: EventCodec;

  constructor(producer: Pick<Producer, 'send'>, codec: EventCodec) {
    this.producer = producer;
    this.codec = codec;
  }

  async send<K extends EventTypeName>(topic: string, key: string, type: K, event: EventTypes[K], options: SendOptions = {}): Promise<RecordMetadata[]> {
    const value = await this.codec.encode(type, event);
    return this.producer.send({
      topic,
      messages: [{ key, value, headers: { ...options.headers, ...traceHeaders(options.trace), [eventHeaders.type]: type, [eventHeaders.id]: event.envelope.eventId } }],
    });
  }
}

function traceHeaders(trace: TraceContext | undefined): IHeaders {
  const headers: IHeaders = {};
  if (trace?.traceparent) headers['traceparent'] = trace.traceparent;
  if (trace?.tracestate) headers['tracestate'] = trace.tracestate;
  return headers;
}
