/**
 * Span export, only where it is asked for: with OTEL_EXPORTER_OTLP_ENDPOINT
 * (or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT) set, a tracer provider exports
 * every span over OTLP/HTTP in batches, the service named by
 * OTEL_SERVICE_NAME (default `mabeam`). Otherwise nothing is loaded and the
 * spans of tracing/trace.ts cost nothing.
 */
import { trace } from '@opentelemetry/api';

export interface SpanExport {
  /** Sends what is still buffered; call before the process exits. */
  shutdown(): Promise<void>;
}

export async function startSpanExport(env: NodeJS.ProcessEnv = process.env): Promise<SpanExport | undefined> {
  if (!env['OTEL_EXPORTER_OTLP_ENDPOINT'] && !env['OTEL_EXPORTER_OTLP_TRACES_ENDPOINT']) return undefined;
  const [{ BasicTracerProvider, BatchSpanProcessor }, { OTLPTraceExporter }, { resourceFromAttributes }] = await Promise.all([
    import('@opentelemetry/sdk-trace-base'),
    import('@opentelemetry/exporter-trace-otlp-http'),
    import('@opentelemetry/resources'),
  ]);
  // The exporter reads the endpoint, headers and timeouts from the OTEL_EXPORTER_OTLP_* variables itself.
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': env['OTEL_SERVICE_NAME'] ?? 'mabeam' }),
    spanProcessors: [new BatchSpanProcessor(new OTLPTraceExporter(), { scheduledDelayMillis: 1_000 })],
  });
  trace.setGlobalTracerProvider(provider);
  return { shutdown: () => provider.shutdown() };
}
