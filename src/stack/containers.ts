import { request as httpRequest } from 'node:http';
import { connect } from 'node:net';
import { homedir } from 'node:os';
import { join } from 'node:path';
import type { StartedNetwork, StartedTestContainer } from 'testcontainers';
import { MabeamError, describeError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { waitForKafka } from './kafka.ts';
import { waitForRedis } from './redis.ts';
import { waitForRegistry } from './registry.ts';
import type { StackEndpoints } from './types.ts';

/**
 * The stack as containers, for machines with a Docker engine: Kafka (KRaft),
 * Confluent Schema Registry and Redis, started with testcontainers and removed
 * on stop (or, should this process die, by testcontainers' reaper). Same
 * images and settings as docker-compose.yml; same `StackEndpoints` as the
 * embedded stack, so nothing downstream tells them apart. testcontainers is
 * loaded only here, when this path is chosen.
 */

/** The images docker-compose.yml runs (a test keeps the two the same). */
export const containerImages = Object.freeze({
  kafka: 'apache/kafka:3.9.2',
  registry: 'confluentinc/cp-schema-registry:7.9.1',
  redis: 'redis:7-alpine',
});

/**
 * The broker's settings, as in docker-compose.yml: PLAINTEXT for clients on
 * the host, INTERNAL for the registry on the container network. The address
 * PLAINTEXT advertises is the mapped host port, known only once the container
 * runs, so it is set by the starter script (see startKafka).
 */
export const kafkaEnvironment: Readonly<Record<string, string>> = Object.freeze({
  CLUSTER_ID: '4L6g3nShT-eMCtK--X86sw',
  KAFKA_NODE_ID: '1',
  KAFKA_PROCESS_ROLES: 'broker,controller',
  KAFKA_CONTROLLER_QUORUM_VOTERS: '1@kafka:9093',
  KAFKA_CONTROLLER_LISTENER_NAMES: 'CONTROLLER',
  KAFKA_LISTENERS: 'PLAINTEXT://0.0.0.0:9092,INTERNAL://0.0.0.0:29092,CONTROLLER://0.0.0.0:9093',
  KAFKA_LISTENER_SECURITY_PROTOCOL_MAP: 'PLAINTEXT:PLAINTEXT,INTERNAL:PLAINTEXT,CONTROLLER:PLAINTEXT',
  KAFKA_INTER_BROKER_LISTENER_NAME: 'INTERNAL',
  KAFKA_LOG_DIRS: '/tmp/kraft-combined-logs',
  KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR: '1',
  KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR: '1',
  KAFKA_TRANSACTION_STATE_LOG_MIN_ISR: '1',
  KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS: '0',
  KAFKA_TRANSACTION_ABORT_TIMED_OUT_TRANSACTION_CLEANUP_INTERVAL_MS: '1000',
  KAFKA_AUTO_CREATE_TOPICS_ENABLE: 'false',
  KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS: '1000',
});

/** The registry's settings, as in docker-compose.yml. */
export const registryEnvironment: Readonly<Record<string, string>> = Object.freeze({
  SCHEMA_REGISTRY_HOST_NAME: 'schema-registry',
  SCHEMA_REGISTRY_LISTENERS: 'http://0.0.0.0:8081',
  SCHEMA_REGISTRY_KAFKASTORE_BOOTSTRAP_SERVERS: 'PLAINTEXT://kafka:29092',
  SCHEMA_REGISTRY_KAFKASTORE_TOPIC_REPLICATION_FACTOR: '1',
  SCHEMA_REGISTRY_SCHEMA_COMPATIBILITY_LEVEL: 'backward',
});

/** Redis is a read model rebuilt from Kafka: no persistence. */
export const redisCommand: readonly string[] = Object.freeze(['redis-server', '--save', '', '--appendonly', 'no']);

export interface ContainerStackOptions {
  /** How long each service may take to answer once its container runs (image pulls come before). */
  startTimeoutMs?: number;
  /** Environment read for DOCKER_HOST; default process.env. */
  env?: Record<string, string | undefined>;
}

export interface ContainerStack {
  endpoints: StackEndpoints;
  /** The images it runs, to say which stack this is. */
  images: typeof containerImages;
  /** Stops and removes the containers and their network. */
  stop(): Promise<void>;
}

type Env = Record<string, string | undefined>;

/** Where a Docker engine may listen: DOCKER_HOST alone when set, else the usual sockets. */
export function dockerEndpoints(env: Env = process.env): string[] {
  const host = env['DOCKER_HOST'];
  if (host) return [host];
  const home = env['HOME'] ?? homedir();
  return [
    'unix:///var/run/docker.sock',
    ...(env['XDG_RUNTIME_DIR'] ? [`unix://${join(env['XDG_RUNTIME_DIR'], 'docker.sock')}`] : []),
    `unix://${join(home, '.docker', 'run', 'docker.sock')}`,
    `unix://${join(home, '.docker', 'desktop', 'docker.sock')}`,
  ];
}

/** Whether the engine at `endpoint` answers `GET /_ping` within `timeoutMs` (a TLS one: whether its port accepts). */
function pingDocker(endpoint: string, timeoutMs: number, env: Env): Promise<{ ok: boolean; reason: string }> {
  return new Promise((resolve) => {
    let url: URL;
    try {
      url = new URL(endpoint);
    } catch {
      resolve({ ok: false, reason: `${endpoint} is not an address` });
      return;
    }
    const done = (ok: boolean, reason: string): void => resolve({ ok, reason });
    if (url.protocol === 'tcp:' && env['DOCKER_TLS_VERIFY']) {
      const socket = connect({ host: url.hostname, port: Number(url.port || 2376), timeout: timeoutMs });
      socket.once('connect', () => (socket.destroy(), done(true, 'accepts')));
      socket.once('timeout', () => (socket.destroy(), done(false, `no answer in ${timeoutMs} ms`)));
      socket.once('error', (error) => done(false, describeError(error)));
      return;
    }
    const target =
      url.protocol === 'unix:' ? { socketPath: url.pathname } : url.protocol === 'tcp:' || url.protocol === 'http:' ? { host: url.hostname, port: Number(url.port || 2375) } : undefined;
    if (!target) {
      done(false, `${url.protocol} is not a Docker address this probe knows`);
      return;
    }
    const req = httpRequest({ ...target, path: '/_ping', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      done(res.statusCode === 200, `HTTP ${res.statusCode}`);
    });
    req.once('timeout', () => (req.destroy(), done(false, `no answer in ${timeoutMs} ms`)));
    req.once('error', (error: NodeJS.ErrnoException) => done(false, error.code ?? describeError(error)));
    req.end();
  });
}

export interface DockerProbe {
  available: boolean;
  /** The address that answered, or the first one tried. */
  endpoint: string;
  /** Why none answered. */
  reason?: string;
}

/** Looks for a Docker engine that answers, each address given `timeoutMs`. */
export async function probeDocker(env: Env = process.env, timeoutMs = 1_500): Promise<DockerProbe> {
  const candidates = dockerEndpoints(env);
  const reasons: string[] = [];
  for (const endpoint of candidates) {
    const { ok, reason } = await pingDocker(endpoint, timeoutMs, env);
    if (ok) return { available: true, endpoint };
    reasons.push(`${endpoint}: ${reason}`);
  }
  return { available: false, endpoint: candidates[0]!, reason: reasons.join('; ') };
}

export async function dockerAvailable(env: Env = process.env, timeoutMs = 1_500): Promise<boolean> {
  return (await probeDocker(env, timeoutMs)).available;
}

/** The error `--containers` gives when no engine answers: one line, a stable code. */
export function dockerUnavailable(probe: DockerProbe): MabeamError {
  return new MabeamError(
    'DOCKER_UNAVAILABLE',
    `No Docker engine answers (${probe.reason ?? probe.endpoint}); the containers stack needs one (DOCKER_HOST names another). Without Docker, \`mabeam dev up\` starts the embedded stack.`,
  );
}

/**
 * 'containers' when MABEAM_TESTCONTAINERS=1, 'embedded' when it is 0, else
 * whichever a quick probe allows.
 */
export async function chooseStackKind(env: Env = process.env, timeoutMs = 1_500): Promise<'containers' | 'embedded'> {
  const asked = env['MABEAM_TESTCONTAINERS'];
  if (asked !== undefined && asked !== '') return /^(1|true|yes|on)$/i.test(asked) ? 'containers' : 'embedded';
  return (await dockerAvailable(env, timeoutMs)) ? 'containers' : 'embedded';
}

async function loadTestcontainers(): Promise<[typeof import('testcontainers'), typeof import('@testcontainers/redis')]> {
  try {
    return await Promise.all([import('testcontainers'), import('@testcontainers/redis')]);
  } catch (error) {
    throw new MabeamError(
      'STACK_DEPENDENCY_MISSING',
      `The containers stack needs the packages testcontainers and @testcontainers/redis (development dependencies of mabeam): ${describeError(error)}`,
      { cause: error },
    );
  }
}

const starterScript = '/tmp/mabeam-kafka-start.sh';
const waitingLine = 'mabeam: waiting for the starter script';

/**
 * Starts Kafka, the registry and Redis as containers on a network of their
 * own and resolves once each answers a real client call. A start that fails
 * part-way removes what it had started.
 */
export async function startContainerStack(options: ContainerStackOptions, logger: Logger): Promise<ContainerStack> {
  const env = options.env ?? process.env;
  const probe = await probeDocker(env);
  if (!probe.available) throw dockerUnavailable(probe);
  const timeoutMs = options.startTimeoutMs ?? 180_000;
  const [{ GenericContainer, Network, Wait }, { RedisContainer }] = await loadTestcontainers();
  const started: Array<StartedTestContainer | StartedNetwork> = [];
  const stop = async (): Promise<void> => {
    const problems: string[] = [];
    for (const item of started.splice(0).reverse()) {
      await item.stop().catch((error: unknown) => problems.push(describeError(error)));
    }
    if (problems.length > 0) logger.warn({ problems }, 'removing the stack containers left something behind');
  };
  try {
    const network = await new Network().start();
    started.push(network);

    // Kafka: the container waits for a starter script, which is written once the mapped port is known.
    logger.info({ image: containerImages.kafka }, 'starting the Kafka container');
    const kafka = await new GenericContainer(containerImages.kafka)
      .withNetwork(network)
      .withNetworkAliases('kafka')
      .withHostname('kafka')
      .withEnvironment({ ...kafkaEnvironment })
      .withExposedPorts(9092)
      .withEntrypoint(['sh', '-c', `echo '${waitingLine}'; while [ ! -f ${starterScript} ]; do sleep 0.1; done; exec sh ${starterScript}`])
      .withWaitStrategy(Wait.forLogMessage(waitingLine))
      .start();
    started.push(kafka);
    const broker = `${kafka.getHost()}:${kafka.getMappedPort(9092)}`;
    await kafka.copyContentToContainer([
      {
        content: `export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://${broker},INTERNAL://kafka:29092\nexec /etc/kafka/docker/run\n`,
        target: starterScript,
        mode: 0o755,
      },
    ]);
    await waitForKafka([broker], timeoutMs);

    logger.info({ image: containerImages.registry }, 'starting the schema registry container');
    const registryStart = new GenericContainer(containerImages.registry)
      .withNetwork(network)
      .withNetworkAliases('schema-registry')
      .withHostname('schema-registry')
      .withEnvironment({ ...registryEnvironment })
      .withExposedPorts(8081)
      .withWaitStrategy(Wait.forHttp('/subjects', 8081).forStatusCode(200))
      .withStartupTimeout(timeoutMs)
      .start();
    logger.info({ image: containerImages.redis }, 'starting the Redis container');
    const redisStart = new RedisContainer(containerImages.redis).withCommand([...redisCommand]).withStartupTimeout(timeoutMs).start();
    const [registry, redis] = await Promise.allSettled([registryStart, redisStart]);
    for (const r of [registry, redis]) if (r.status === 'fulfilled') started.push(r.value);
    if (registry.status === 'rejected') throw registry.reason;
    if (redis.status === 'rejected') throw redis.reason;

    // Confluent's registry serves its API at the root (the embedded Apicurio one under /apis/ccompat/v7).
    const endpoints: StackEndpoints = {
      kafkaBrokers: [broker],
      schemaRegistryUrl: `http://${registry.value.getHost()}:${registry.value.getMappedPort(8081)}`,
      redisUrl: `redis://${redis.value.getHost()}:${redis.value.getMappedPort(6379)}`,
    };
    await Promise.all([waitForRegistry(endpoints.schemaRegistryUrl, timeoutMs), waitForRedis(endpoints.redisUrl, timeoutMs)]);
    return { endpoints, images: containerImages, stop };
  } catch (error) {
    await stop();
    if (error instanceof MabeamError) throw error;
    throw new MabeamError('STACK_START_FAILED', `The containers stack did not start: ${describeError(error)}`, { cause: error, retriable: false });
  }
}
