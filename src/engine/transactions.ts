import { kafkaErrorType } from '../kafka/errors.ts';

/**
 * Kafka answers CONCURRENT_TRANSACTIONS while the previous transaction's
 * markers are still being written; it is retriable, but kafkajs gives up on
 * it when adding offsets to a transaction. Retried from 5 ms (kafkajs's own
 * 100 ms backoff costs a round its latency budget; 1 ms made the tail worse).
 */
export async function retryConcurrentTransactions<T>(work: () => Promise<T>, attempts = 50): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await work();
    } catch (error) {
      if (kafkaErrorType(error) !== 'CONCURRENT_TRANSACTIONS' || i >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, 5 * i)));
    }
  }
}

/** A producer whose transactional id another member has taken over: it may never write again. */
export function isFenced(error: unknown): boolean {
  const type = kafkaErrorType(error);
  return type === 'INVALID_PRODUCER_EPOCH' || type === 'PRODUCER_FENCED';
}
