import { randomUUID } from 'node:crypto';
import type { Envelope, EventTypeName } from './types.ts';

export interface EnvelopeOptions {
  correlationId?: string | null;
  causationId?: string | null;
  /** Defaults to now; replayed or derived events pass the time they stand for. */
  eventTime?: number;
  eventId?: string;
}

export function newEnvelope(eventType: EventTypeName, producerId: string, options: EnvelopeOptions = {}): Envelope {
  return {
    eventId: options.eventId ?? randomUUID(),
    eventType,
    correlationId: options.correlationId ?? null,
    causationId: options.causationId ?? null,
    producerId,
    eventTime: options.eventTime ?? Date.now(),
  };
}
