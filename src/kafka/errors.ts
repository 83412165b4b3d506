/**
 * The Kafka error code (kafkajs's `type`, e.g. CONCURRENT_TRANSACTIONS) a
 * failure carries, if a broker answered with one. kafkajs wraps protocol
 * errors (KafkaJSNumberOfRetriesExceeded → cause, originalError): the chain
 * is looked down.
 */
export function kafkaErrorType(error: unknown): string | undefined {
  const seen = new Set<unknown>();
  for (let e = error as { type?: unknown; cause?: unknown; originalError?: unknown } | undefined; e && typeof e === 'object' && !seen.has(e); e = (e.cause ?? e.originalError) as typeof e) {
    seen.add(e);
    if (typeof e.type === 'string') return e.type;
  }
  return undefined;
}
