import type { Admin, Kafka, Producer } from 'kafkajs';
import { Redis } from 'ioredis';
import { Registry } from 'prom-client';
import { EventCodec } from '../codec/codec.ts';
import { createProducer, kafkaFor } from '../kafka/client.ts';
import type { Logger } from '../log/logger.ts';
import { createMetrics, type Metrics } from '../metrics/metrics.ts';
import { loadCatalog, type SchemaCatalog } from '../schemas/catalog.ts';
import { createRegistryClient, registryTargetFor, type RegistryClient, type RegistryTarget } from '../schemas/registry.ts';
import type { StackEndpoints } from '../stack/types.ts';
import { loadTopicDefinitions, type TopicDefinition } from '../topics/index.ts';

/** Clients for one command run, built from the stack's addresses; `close()` ends them all. */
export interface Connections {
  endpoints: StackEndpoints;
  logger: Logger;
  kafka: Kafka;
  admin: Admin;
  producer: Producer;
  registry: RegistryClient;
  /** The registry's address and login, for the requests beyond the client library. */
  registryTarget: RegistryTarget;
  redis: Redis;
  catalog: SchemaCatalog;
  codec: EventCodec;
  definitions: TopicDefinition[];
  metrics: Metrics;
  close(): Promise<void>;
}

export interface ConnectOptions {
  /** Also collect the process and Node.js default metrics (for commands that serve /metrics). */
  defaultMetrics?: boolean;
  /** Connect to Redis now (default), so a command that reads it fails at once when it does not answer; false: only on a first command. */
  redis?: boolean;
}

export async function connect(endpoints: StackEndpoints, logger: Logger, clientId = 'mabeam-cli', options: ConnectOptions = {}): Promise<Connections> {
  const kafka = kafkaFor(endpoints, clientId, logger);
  const admin = kafka.admin();
  const producer = createProducer(kafka);
  const redis = new Redis(endpoints.redisUrl, { lazyConnect: true, maxRetriesPerRequest: 2 });
  redis.on('error', (error: Error) => logger.warn({ ns: 'redis', pid: process.pid, error: error.message }, 'redis connection error'));
  // A command that does not use Redis (replay, audit, round start) works without it: it would connect on a first command.
  await Promise.all([admin.connect(), producer.connect(), ...(options.redis === false ? [] : [redis.connect()])]);
  const registryTarget = registryTargetFor(endpoints);
  const registry = createRegistryClient(registryTarget);
  const [catalog, definitions] = await Promise.all([loadCatalog(), loadTopicDefinitions()]);
  return {
    endpoints,
    logger,
    kafka,
    admin,
    producer,
    registry,
    redis,
    catalog,
    definitions,
    registryTarget,
    codec: new EventCodec({ registry, registryUrl: registryTarget.url, ...(registryTarget.auth ? { registryAuth: registryTarget.auth } : {}), catalog }),
    metrics: createMetrics({ registry: new Registry(), ...(options.defaultMetrics ? { defaults: true } : {}) }),
    close: async () => {
      await Promise.allSettled([admin.disconnect(), producer.disconnect(), redis.status === 'wait' ? Promise.resolve(redis.disconnect()) : redis.quit()]);
    },
  };
}
