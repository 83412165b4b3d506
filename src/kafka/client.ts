import './abortedFilter.ts';
import kafkajs, { Kafka, logLevel, type Consumer, type KafkaConfig, type LogEntry, type Producer, type ProducerConfig, type SASLOptions } from 'kafkajs';

/** Config resource type of a topic (kafkajs's ConfigResourceTypes is not a named ESM export). */
export const topicResourceType: 2 = kafkajs.ConfigResourceTypes.TOPIC as 2;
import type { Logger } from '../log/logger.ts';
import type { KafkaSasl, StackEndpoints } from '../stack/types.ts';
import { coPartitionedAssigner } from './coPartitionedAssigner.ts';
import { keyPartitioner } from './partitioner.ts';
import { heartbeatIntervalFor } from './sessionTimeout.ts';

/**
 * The one place a Kafka client is built. Everything else receives a `Kafka`
 * as a dependency, which keeps the client library behind a narrow seam.
 */
export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
  logger: Logger;
  /** A SASL login (a secure cluster); without it the client connects unauthenticated. */
  sasl?: KafkaSasl;
  /** TLS to the brokers (SASL_SSL). */
  ssl?: boolean;
  /** Extra kafkajs settings (timeouts, retry). */
  config?: Omit<KafkaConfig, 'brokers' | 'clientId' | 'logCreator' | 'logLevel'>;
}

// kafkajs reports retriable protocol errors (a coordinator not yet elected,
// a leader moving) at ERROR and retries them; our code raises what it gives
// up on. So its levels are shifted down by one.
const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'warn',
  [logLevel.WARN]: 'info',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

export function createKafka(options: KafkaClientOptions): Kafka {
  const log = options.logger.child({ ns: 'kafkajs' });
  return new Kafka({
    // A broker that comes back is used again within 1 s (kafkajs's own cap is 30 s). kafkajs retries a
    // call on the broker it chose until the retries run out, even on a broker that died; a consumer
    // then gives up and starts again with fresh metadata. So about 5 s of retries in all (a cluster
    // gives a dead broker's partitions new leaders after its broker session timeout): with ~9 s, a
    // reader went deaf for 25–34 s after a broker was killed, with ~2.5 s for 4.5–14 s.
    retry: { initialRetryTime: 100, maxRetryTime: 1_000, retries: 8 },
    connectionTimeout: 3_000,
    ...options.config,
    ...(options.sasl ? { sasl: saslConfig(options.sasl) } : {}),
    ...(options.ssl ? { ssl: true } : {}),
    brokers: options.brokers,
    clientId: options.clientId,
    logLevel: logLevel.INFO,
    logCreator:
      () =>
      ({ level, label, log: entry }: LogEntry) => {
        const { message, ...rest } = entry;
        log[levels[level] ?? 'info']({ label, ...rest }, message);
      },
  });
}

/** The Kafka client of a process, logged in as its endpoints say. */
export function kafkaFor(endpoints: StackEndpoints, clientId: string, logger: Logger, config?: KafkaClientOptions['config']): Kafka {
  return createKafka({
    brokers: endpoints.kafkaBrokers,
    clientId,
    logger,
    ...(endpoints.kafkaSasl ? { sasl: endpoints.kafkaSasl } : {}),
    ...(endpoints.kafkaSsl ? { ssl: true } : {}),
    ...(config ? { config } : {}),
  });
}

function saslConfig(sasl: KafkaSasl): SASLOptions {
  const { username, password } = sasl;
  switch (sasl.mechanism) {
    case 'scram-sha-512':
      return { mechanism: 'scram-sha-512', username, password };
    case 'scram-sha-256':
      return { mechanism: 'scram-sha-256', username, password };
    case 'plain':
      return { mechanism: 'plain', username, password };
  }
}

/**
 * kafkajs computes some request timeouts that newer Node versions report as
 * `TimeoutNegativeWarning` (they are clamped to 1 ms, which is what kafkajs
 * means). Entry points call this once so that noise does not reach users.
 */
export function silenceKafkajsTimerWarnings(): void {
  // Node prints a warning whatever listens to 'warning': drop this one where it is emitted.
  const emit = process.emitWarning.bind(process) as (...args: unknown[]) => void;
  process.emitWarning = ((warning: string | Error, ...rest: unknown[]) => {
    const type = typeof warning === 'string' ? (typeof rest[0] === 'string' ? rest[0] : (rest[0] as { type?: string } | undefined)?.type) : warning.name;
    if (type === 'TimeoutNegativeWarning') return;
    emit(warning, ...rest);
  }) as typeof process.emitWarning;
}

/**
 * A producer that partitions like the Java client (murmur2 of the key), so
 * events keyed by round id land on the same partition number whichever
 * client wrote them: co-partitioning depends on it.
 */
/**
 * The producer of a group member that writes what it decides, with the
 * offsets it read, in Kafka transactions (a coordinator, a variable owner).
 * A short transaction timeout: a dead member's open transaction blocks
 * read_committed readers until the broker aborts it.
 */
export function createTransactionalProducer(kafka: Kafka, transactionalId: string, transactionTimeoutMs = 5_000): Producer {
  return createProducer(kafka, {
    transactionalId,
    idempotent: true,
    maxInFlightRequests: 1,
    transactionTimeout: transactionTimeoutMs,
    // A new transaction's first send often meets CONCURRENT_TRANSACTIONS while the previous one's
    // markers are written; retry within milliseconds, not after kafkajs's default 100 ms.
    retry: { initialRetryTime: 5, maxRetryTime: 200, retries: 40 },
  });
}

/**
 * A consumer of a group whose members each own whole partition numbers of
 * co-partitioned topics (coPartitionedAssigner), read committed data only,
 * and commit their offsets through their own transactions.
 */
export function createPartitionOwnerConsumer(kafka: Kafka, groupId: string, sessionTimeoutMs: number): Consumer {
  return kafka.consumer({
    groupId,
    sessionTimeout: sessionTimeoutMs,
    heartbeatInterval: heartbeatIntervalFor(sessionTimeoutMs),
    maxWaitTimeInMs: 100,
    readUncommitted: false,
    partitionAssigners: [coPartitionedAssigner],
    // Its owner restarts it (from what was committed, with fresh state): kafkajs restarting it too
    // would leave two members of the group in one process.
    retry: { initialRetryTime: 100, maxRetryTime: 2_000, retries: 8, restartOnFailure: async () => false },
  });
}

export function createProducer(kafka: Kafka, config: ProducerConfig = {}): Producer {
  return kafka.producer({ allowAutoTopicCreation: false, createPartitioner: keyPartitioner, ...config });
}

/**
 * Resolves with the member's assignment once the consumer has joined its
 * group and fetched once. A consumer that starts at the end of its topics
 * resolves that end before its first fetch, so whatever is produced after
 * this resolves is seen. Call before `run()`.
 */
export function joinedAndFetched(consumer: Consumer): Promise<Record<string, number[]>> {
  return new Promise((resolve) => {
    let assignment: Record<string, number[]> = {};
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
      assignment = payload.memberAssignment;
      const off = consumer.on(consumer.events.FETCH, () => {
        off();
        resolve(assignment);
      });
    });
  });
}
