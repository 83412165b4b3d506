import { hash as digestOf, randomUUID } from 'node:crypto';
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

/**
 * An event id derived from its parts (a name-based UUID, version 5 layout):
 * the same answer to the same request always gets the same id, so a
 * redelivered request yields a duplicate that readers can recognise.
 */
export function deterministicEventId(...parts: string[]): string {
  const hash = digestOf('sha1', parts.join('\u0000'), 'buffer');
  hash[6] = (hash[6]! & 0x0f) | 0x50;
  hash[8] = (hash[8]! & 0x3f) | 0x80;
  return uuidOfHex(hash.toString('hex', 0, 16));
}

/** 32 hex digits in the dashed 8-4-4-4-12 layout of a UUID. */
export function uuidOfHex(hex: string): string {
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20, 32)}`;
}
