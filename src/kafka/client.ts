import { Kafka, logLevel, type KafkaConfig, type LogEntry } from 'kafkajs';
import type { Logger } from '../log/logger.ts';

/**
 * The one place a Kafka client is built. Everything else receives a `Kafka`
 * as a dependency, which keeps the client library behind a narrow seam.
 */
export interface KafkaClientOptions {
  brokers: string[];
  clientId: string;
  logger: Logger;
  /** Extra kafkajs settings (timeouts, retry). */
  config?: Omit<KafkaConfig, 'brokers' | 'clientId' | 'logCreator' | 'logLevel'>;
}

const levels: Record<number, 'error' | 'warn' | 'info' | 'debug'> = {
  [logLevel.ERROR]: 'error',
  [logLevel.WARN]: 'warn',
  [logLevel.INFO]: 'info',
  [logLevel.DEBUG]: 'debug',
};

export function createKafka(options: KafkaClientOptions): Kafka {
  const log = options.logger.child({ ns: 'kafkajs' });
  return new Kafka({
    retry: { initialRetryTime: 100, retries: 8 },
    connectionTimeout: 3_000,
    ...options.config,
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

/**
 * kafkajs computes some request timeouts that newer Node versions report as
 * `TimeoutNegativeWarning` (they are clamped to 1 ms, which is what kafkajs
 * means). Entry points call this once so that noise does not reach users.
 */
export function silenceKafkajsTimerWarnings(): void {
  const listeners = process.listeners('warning');
  process.removeAllListeners('warning');
  process.on('warning', (warning) => {
    if (warning.name === 'TimeoutNegativeWarning') return;
    if (listeners.length === 0) process.stderr.write(`${warning.name}: ${warning.message}\n`);
    for (const listener of listeners) listener(warning);
  });
}
