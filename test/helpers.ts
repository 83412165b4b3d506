import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Admin, Consumer, Kafka, KafkaMessage, Producer } from 'kafkajs';
import { Registry } from 'prom-client';
import { inject } from 'vitest';
import { EventCodec } from '../src/codec/codec.ts';
import { createProducer, kafkaFor, silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger, type Logger } from '../src/log/logger.ts';
import { createMetrics, type Metrics } from '../src/metrics/metrics.ts';
import { loadCatalog, type SchemaCatalog } from '../src/schemas/catalog.ts';
import { createRegistryClient, registryTargetFor, type RegistryClient } from '../src/schemas/registry.ts';
import type { StackCredentials } from '../src/stack/credentials.ts';
import type { StackEndpoints } from '../src/stack/types.ts';
import { applyTopics, loadTopicDefinitions, topicName, type TopicDefinition } from '../src/topics/index.ts';

silenceKafkajsTimerWarnings();

/** Unique names so test files share one cluster without seeing each other. */
export function uniqueName(label: string): string {
  return `t-${label}-${randomBytes(4).toString('hex')}`;
}

export interface TestContext {
  stack: StackEndpoints;
  prefix: string;
  logger: Logger;
  kafka: Kafka;
  admin: Admin;
  registry: RegistryClient;
  catalog: SchemaCatalog;
  codec: EventCodec;
  metrics: Metrics;
  definitions: TopicDefinition[];
  topic(name: string): string;
  definition(name: string): TopicDefinition;
  producer(): Promise<Producer>;
  /** Registers a cleanup for close(), which runs them in reverse order. */
  defer(cleanup: () => Promise<unknown> | unknown): void;
  /** Runs every cleanup. Call it from the file's own afterAll (a hook registered inside beforeAll never runs). */
  close(): Promise<void>;
}

/**
 * Everything a test file needs, isolated by a unique topic prefix. Create it
 * in the file's beforeAll and close it in its afterAll.
 */
export async function testContext(label: string, options: { applyTopics?: boolean; stack?: StackEndpoints } = {}): Promise<TestContext> {
  // Another stack (the secure one) when given, with its logins.
  const stack = options.stack ?? inject('stack');
  const prefix = uniqueName(label);
  const logger = createLogger({ level: process.env['MABEAM_LOG_LEVEL'] ?? 'error', name: label });
  const kafka = kafkaFor(stack, prefix, logger);
  const admin = kafka.admin();
  await admin.connect();
  const cleanups: Array<() => Promise<unknown> | unknown> = [async () => admin.disconnect()];
  // Every cleanup runs, even after one fails: a skipped one can leave a process behind.
  const close = async (): Promise<void> => {
    const failures: unknown[] = [];
    for (const cleanup of cleanups.splice(0).reverse()) {
      try {
        await cleanup();
      } catch (error) {
        failures.push(error);
      }
    }
    if (failures.length > 0) throw new AggregateError(failures, `${failures.length} cleanup step(s) failed`);
  };
  const registry = createRegistryClient(registryTargetFor(stack));
  const catalog = await loadCatalog();
  const definitions = await loadTopicDefinitions();
  if (options.applyTopics !== false) await applyTopics(admin, definitions, { prefix });
  const byName = new Map(definitions.map((d) => [d.name, d]));
  return {
    stack,
    prefix,
    logger,
    kafka,
    admin,
    registry,
    catalog,
    codec: new EventCodec({ registry, registryUrl: stack.schemaRegistryUrl, ...(stack.registryAuth ? { registryAuth: stack.registryAuth } : {}), catalog }),
    metrics: createMetrics({ registry: new Registry() }),
    definitions,
    topic: (name) => topicName(prefix, name),
    definition: (name) => {
      const d = byName.get(name);
      if (!d) throw new Error(`no topic definition ${name}`);
      return d;
    },
    producer: async () => {
      const producer = createProducer(kafka);
      await producer.connect();
      cleanups.push(async () => producer.disconnect());
      return producer;
    },
    defer: (cleanup) => {
      cleanups.push(cleanup);
    },
    close,
  };
}

export interface WaitOptions {
  timeoutMs?: number;
  /** Fail at once, with the crash, if this consumer crashes while waiting. */
  crashed?: () => Error | undefined;
  what?: string;
}

/** Polls until `check` returns a value other than undefined/false; fails fast on a crashed consumer. */
export async function waitFor<T>(check: () => T | undefined | false | Promise<T | undefined | false>, options: WaitOptions = {}): Promise<T> {
  const deadline = Date.now() + (options.timeoutMs ?? 20_000);
  for (;;) {
    const crash = options.crashed?.();
    if (crash) throw new Error(`consumer crashed while waiting for ${options.what ?? 'a condition'}: ${crash.message}`);
    const value = await check();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${options.what ?? 'a condition'}`);
    await sleep(25);
  }
}

/** Reads a topic from the beginning into an array (raw messages), until stopped. */
export async function collectRaw(ctx: TestContext, topic: string): Promise<{ messages: KafkaMessage[]; consumer: Consumer; crashed: () => Error | undefined }> {
  const consumer = ctx.kafka.consumer({ groupId: uniqueName('reader'), maxWaitTimeInMs: 50 });
  const messages: KafkaMessage[] = [];
  let crash: Error | undefined;
  consumer.on(consumer.events.CRASH, ({ payload }) => {
    // kafkajs restarts the consumer after a retriable error; only a crash it will not restart from counts.
    if (!payload.restart) crash = payload.error;
  });
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({ eachMessage: async ({ message }) => void messages.push(message) });
  ctx.defer(async () => consumer.disconnect());
  return { messages, consumer, crashed: () => crash };
}

/** The secure test stack (see globalSetup), or a failure saying why it is missing. */
export function secureStack(): { stack: StackEndpoints; credentials: StackCredentials } {
  const stack = inject('secureStack');
  const credentials = inject('secureCredentials');
  if (!stack || !credentials) throw new Error('The secure test stack was not started (MABEAM_TEST_SECURE_STACK=0): this test needs it.');
  return { stack, credentials };
}
