/**
 * W3C trace context through every hop, with the OpenTelemetry API: a record
 * carries its span in `traceparent` / `tracestate` headers; whoever handles
 * it works in a child span and writes what follows with that span's
 * headers, so a round's request, answers, outcome and directives share one
 * trace id. Without an SDK the spans do not record: what is left is
 * reading and writing two headers. Set up an SDK (tracing/export.ts does
 * when OTEL_EXPORTER_OTLP_ENDPOINT is set) and the spans are exported.
 */
import { ROOT_CONTEXT, SpanKind, trace, type Context, type Span, type TextMapGetter, type TextMapSetter } from '@opentelemetry/api';
import { W3CTraceContextPropagator } from '@opentelemetry/core';
import type { IHeaders } from 'kafkajs';

const propagator = new W3CTraceContextPropagator();

const getter: TextMapGetter<IHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    if (value === undefined) return undefined;
    return Array.isArray(value) ? value.map(String) : value.toString();
  },
};
const setter: TextMapSetter<Record<string, string>> = { set: (carrier, key, value) => void (carrier[key] = value) };

/** The trace context a record carries in its headers (none: a new trace starts from it). */
export function contextOf(headers: IHeaders | undefined): Context {
  return headers ? propagator.extract(ROOT_CONTEXT, headers, getter) : ROOT_CONTEXT;
}

/** The headers that carry a span to the next hop. */
export function headersOf(context: Context): Record<string, string> {
  const headers: Record<string, string> = {};
  propagator.inject(context, headers, setter);
  return headers;
}

type SpanAttributes = { roundId?: string; key?: string | null; group?: string; subject?: Record<string, string> };

export interface MessagingSpan {
  span: Span;
  /** The context with this span: what the records it leads to carry. */
  context: Context;
  /** traceparent (and tracestate) of this span. */
  headers: Record<string, string>;
  end(error?: unknown): void;
}

/**
 * A span of one messaging step (semantic conventions: `process <topic>` for
 * a consumer, `send <topic>` for a producer), child of `parent`, with the
 * round (or plan, study, variable) it is about.
 */
export function messagingSpan(operation: 'process' | 'send', topic: string, parent: Context, attributes: SpanAttributes = {}): MessagingSpan {
  const span = trace.getTracer('mabeam').startSpan(
    `${operation} ${topic}`,
    {
      kind: operation === 'process' ? SpanKind.CONSUMER : SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'kafka',
        'messaging.destination.name': topic,
        'messaging.operation.type': operation,
        ...(attributes.key ? { 'messaging.kafka.message.key': attributes.key } : {}),
        ...(attributes.group ? { 'messaging.consumer.group.name': attributes.group } : {}),
        ...(attributes.roundId ? { 'mabeam.round_id': attributes.roundId } : {}),
        ...attributes.subject,
      },
    },
    parent,
  );
  const context = trace.setSpan(parent, span);
  return {
    span,
    context,
    headers: headersOf(context),
    end: (error) => {
      if (error !== undefined) span.recordException(error instanceof Error ? error : String(error));
      span.end();
    },
  };
}

/** Runs `work` in a messaging span (see messagingSpan), ended when it settles, with the error if it throws. */
export async function traced<T>(operation: 'process' | 'send', topic: string, parent: Context, attributes: SpanAttributes, work: (step: MessagingSpan) => Promise<T>): Promise<T> {
  const step = messagingSpan(operation, topic, parent, attributes);
  try {
    const result = await work(step);
    step.end();
    return result;
  } catch (error) {
    step.end(error);
    throw error;
  }
}
