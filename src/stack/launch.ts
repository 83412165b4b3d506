import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MabeamError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { StackCredentials } from './credentials.ts';
import { ensureKafka, ensureRegistry } from './artifacts.ts';
import { findJava } from './java.ts';
import { newClusterId, startKafkaNode } from './kafka.ts';
import { stackDefaults, type ResolvedStackOptions } from './options.ts';
import { freePort, onFreshPorts } from './ports.ts';
import { defaultRedisUrl, findRedisServer, startRedisNode } from './redis.ts';
import { startRegistryNode } from './registry.ts';
import { recordedPort } from './state.ts';
import type { PortChange, ServiceName, ServicePorts, ServiceState, StackState } from './types.ts';

/**
 * Starting one service of a stack. Each comes back on the ports its record
 * names when they are free: agents, coordinators and shells keep the old
 * addresses, so a restart that moved a port would strand them. Only a port
 * something else holds is replaced, and the change is reported.
 */

export interface LaunchContext {
  o: ResolvedStackOptions;
  log: Logger;
  timings: Record<string, number>;
  /** The stack's last record (running or stopped): where its ports come from. */
  previous: StackState | undefined;
  /** A secure stack's passwords; absent for a plain stack. */
  credentials?: StackCredentials;
}

export interface Launched {
  service: ServiceState;
  portChanges: PortChange[];
  fetched?: boolean;
}

async function timed<T>(timings: Record<string, number>, phase: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    timings[phase] = Math.round(performance.now() - started);
  }
}

/** A port for `role`: the user's, else the recorded one when free (not on a retry after a lost bind race), else a fresh one. */
async function choosePort(
  c: LaunchContext,
  name: ServiceName,
  role: keyof ServicePorts,
  fixed: number | undefined,
  retry: boolean,
  avoid: readonly number[] = [],
): Promise<number> {
  if (fixed !== undefined) return fixed;
  return freePort(retry ? undefined : recordedPort(c.previous, name, role), avoid);
}

/** A service's other recorded port, kept clear of a freshly chosen one so both can come back. */
function recordedPorts(c: LaunchContext, name: ServiceName, role: keyof ServicePorts): number[] {
  const port = recordedPort(c.previous, name, role);
  return port === undefined ? [] : [port];
}

/** The recorded ports this start did not get back, the user's own choices aside. */
function changes(c: LaunchContext, name: ServiceName, ports: ServicePorts, fixed: ServicePorts): PortChange[] {
  const list: PortChange[] = [];
  for (const [role, to] of Object.entries(ports) as Array<[keyof ServicePorts, number]>) {
    const from = recordedPort(c.previous, name, role);
    if (from !== undefined && from !== to && fixed[role] === undefined) list.push({ service: name, role, from, to });
  }
  for (const change of list) c.log.warn(change, 'a port of the stack was taken by another process; the service moved to a new port');
  return list;
}

function ownerOpt(o: ResolvedStackOptions): { ownerPid?: number } {
  return o.ephemeral ? { ownerPid: process.pid } : {};
}

function watchdog(pid: number | undefined): { watchdogPid?: number } {
  return pid === undefined ? {} : { watchdogPid: pid };
}

export async function launchKafka(c: LaunchContext): Promise<Launched> {
  const { o, log } = c;
  const [artifact, java] = await timed(c.timings, 'kafka.fetch', () =>
    Promise.all([
      ensureKafka(o.cacheDir, o.kafkaVersion, log, o.mavenRepository),
      findJava({ minMajor: 17, explicitHome: o.javaHome, env: o.env, purpose: `Apache Kafka ${o.kafkaVersion}` }),
    ]),
  );
  const fixed: ServicePorts = { client: o.kafkaPort, controller: o.kafkaControllerPort };
  const ports: Required<Pick<ServicePorts, 'client' | 'controller'>> = { client: 0, controller: 0 };
  const node = await timed(c.timings, 'kafka.start', () =>
    onFreshPorts('kafka', o.kafkaPort !== undefined && o.kafkaControllerPort !== undefined, log, async (retry) => {
      ports.client = await choosePort(c, 'kafka', 'client', o.kafkaPort, retry, recordedPorts(c, 'kafka', 'controller'));
      ports.controller = await choosePort(c, 'kafka', 'controller', o.kafkaControllerPort, retry, [ports.client]);
      return startKafkaNode({
        java: java.executable,
        libsDir: join(artifact.dir, 'libs'),
        dataDir: join(o.stateDir, 'kafka', 'data'),
        configDir: join(o.stateDir, 'kafka'),
        port: ports.client,
        controllerPort: ports.controller,
        heap: o.kafkaHeap,
        startTimeoutMs: o.startTimeoutMs,
        log,
        host: o.host,
        ...ownerOpt(o),
        ...(c.credentials ? { admin: { username: 'admin', password: c.credentials.kafka.admin } } : {}),
      });
    }),
  );
  return {
    service: { name: 'kafka', origin: 'started', address: `${o.host}:${ports.client}`, ports, pid: node.pid, logFile: node.logFile, ...watchdog(node.watchdogPid) },
    portChanges: changes(c, 'kafka', ports, fixed),
    fetched: artifact.fetched,
  };
}

/**
 * The missing nodes of a replicated Kafka cluster (all of them on a first
 * start). A KRaft quorum needs every voter's controller port in each node's
 * settings before any node starts, so all the ports are chosen first — the
 * recorded ones where they are free — and the nodes start together; each
 * is formatted with the cluster's id (kept in the stack's folder). A node
 * that starts again alone joins the quorum the others still hold.
 */
export async function launchKafkaCluster(c: LaunchContext, names: readonly ServiceName[], missing: readonly ServiceName[]): Promise<Launched[]> {
  const { o, log } = c;
  const [artifact, java] = await timed(c.timings, 'kafka.fetch', () =>
    Promise.all([
      ensureKafka(o.cacheDir, o.kafkaVersion, log, o.mavenRepository),
      findJava({ minMajor: 17, explicitHome: o.javaHome, env: o.env, purpose: `Apache Kafka ${o.kafkaVersion}` }),
    ]),
  );
  const roles = ['client', 'controller'] as const;
  const recorded = names.flatMap((name) => roles.map((role) => ({ name, role, port: recordedPort(c.previous, name, role) })));
  const chosen: number[] = [];
  const ports = new Map<ServiceName, { client: number; controller: number }>();
  for (const name of names) {
    const kept = !missing.includes(name);
    const pick = async (role: 'client' | 'controller'): Promise<number> => {
      const own = recordedPort(c.previous, name, role);
      // Every other recorded port stays clear, so each node can have its own back.
      const others = recorded.filter((r) => r.port !== undefined && !(r.name === name && r.role === role)).map((r) => r.port!);
      const port = kept && own !== undefined ? own : await freePort(own, [...others, ...chosen]);
      chosen.push(port);
      return port;
    };
    const client = await pick('client');
    ports.set(name, { client, controller: await pick('controller') });
  }
  const clusterId = await clusterIdOf(o.stateDir);
  const controllerPorts = names.map((name) => ports.get(name)!.controller);
  const nodes = await timed(c.timings, 'kafka.start', () =>
    Promise.all(
      missing.map(async (name) => {
        const nodeId = names.indexOf(name) + 1;
        const dir = join(o.stateDir, name);
        const p = ports.get(name)!;
        const node = await startKafkaNode({
          java: java.executable,
          libsDir: join(artifact.dir, 'libs'),
          dataDir: join(dir, 'data'),
          configDir: dir,
          port: p.client,
          controllerPort: p.controller,
          // Each node of a cluster holds a replica of every partition: it gets more heap than a single node's default.
          heap: o.kafkaHeap === stackDefaults.kafkaHeap ? clusterNodeHeap : o.kafkaHeap,
          startTimeoutMs: o.startTimeoutMs,
          log,
          cluster: { nodeId, controllerPorts, clusterId },
          host: o.host,
          ...ownerOpt(o),
        });
        return { name, node, p };
      }),
    ),
  );
  return nodes.map(({ name, node, p }) => ({
    service: { name, origin: 'started', address: `${o.host}:${p.client}`, ports: p, pid: node.pid, logFile: node.logFile, ...watchdog(node.watchdogPid) },
    portChanges: changes(c, name, p, {}),
    fetched: artifact.fetched,
  }));
}

/** A cluster node's heap unless --kafka-heap says otherwise. */
const clusterNodeHeap = '1g';

/** The id a replicated cluster's nodes are formatted with: made once, kept in the stack's folder. */
async function clusterIdOf(stateDir: string): Promise<string> {
  const file = join(stateDir, 'kafka-cluster-id');
  try {
    return (await readFile(file, 'utf8')).trim();
  } catch {
    const id = newClusterId();
    await writeFile(file, `${id}\n`);
    return id;
  }
}

export async function launchRegistry(c: LaunchContext): Promise<Launched> {
  const { o, log } = c;
  const [artifact, java] = await timed(c.timings, 'registry.fetch', () =>
    Promise.all([
      ensureRegistry(o.cacheDir, o.registryVersion, log, o.mavenRepository),
      findJava({
        minMajor: 21,
        explicitHome: o.registryJavaHome ?? o.env['MABEAM_REGISTRY_JAVA_HOME'],
        env: o.env,
        purpose: `Apicurio Registry ${o.registryVersion}`,
      }),
    ]),
  );
  const fixed: ServicePorts = { client: o.registryPort };
  const ports: Required<Pick<ServicePorts, 'client' | 'management'>> = { client: 0, management: 0 };
  const node = await timed(c.timings, 'registry.start', () =>
    onFreshPorts('registry', false, log, async (retry) => {
      ports.client = await choosePort(c, 'registry', 'client', o.registryPort, retry, recordedPorts(c, 'registry', 'management'));
      ports.management = await choosePort(c, 'registry', 'management', undefined, retry, [ports.client]);
      return startRegistryNode({
        host: o.host,
        java: java.executable,
        appDir: artifact.dir,
        dataDir: join(o.stateDir, 'registry'),
        port: ports.client,
        managementPort: ports.management,
        heap: o.registryHeap,
        inMemory: o.ephemeral,
        startTimeoutMs: o.startTimeoutMs,
        marker: o.stateDir,
        ...ownerOpt(o),
        ...(c.credentials ? { users: c.credentials.registry } : {}),
      });
    }),
  );
  return {
    service: { name: 'registry', origin: 'started', address: node.url, ports, pid: node.pid, logFile: node.logFile, ...watchdog(node.watchdogPid) },
    portChanges: changes(c, 'registry', ports, fixed),
    fetched: artifact.fetched,
  };
}

export async function launchRedis(c: LaunchContext): Promise<Launched> {
  const { o, log } = c;
  const binary = await findRedisServer();
  if (!binary && c.credentials) {
    // The machine's own Redis has no password we could set or know: a secure stack needs its own.
    throw new MabeamError(
      'STACK_DEPENDENCY_MISSING',
      'A secure local stack runs its own Redis with a password, but no redis-server binary was found on PATH. Install Redis (for example `apt-get install redis-server`) and start the stack again.',
    );
  }
  if (!binary) {
    log.warn('redis-server not found; using the Redis at 127.0.0.1:6379');
    return { service: { name: 'redis', origin: 'default', address: defaultRedisUrl }, portChanges: [] };
  }
  const ports: Required<Pick<ServicePorts, 'client'>> = { client: 0 };
  const node = await timed(c.timings, 'redis.start', () =>
    onFreshPorts('redis', o.redisPort !== undefined, log, async (retry) => {
      ports.client = await choosePort(c, 'redis', 'client', o.redisPort, retry);
      return startRedisNode({
        host: o.host,
        binary,
        dataDir: join(o.stateDir, 'redis'),
        port: ports.client,
        startTimeoutMs: o.startTimeoutMs,
        ...ownerOpt(o),
        ...(c.credentials ? { password: c.credentials.redis } : {}),
      });
    }),
  );
  return {
    service: {
      name: 'redis',
      origin: 'started',
      address: node.url,
      ports,
      pid: node.pid,
      marker: `redis-server ${o.host}:${ports.client}`,
      logFile: node.logFile,
      ...watchdog(node.watchdogPid),
    },
    portChanges: changes(c, 'redis', ports, { client: o.redisPort }),
  };
}

export const launchers: Record<'kafka' | 'registry' | 'redis', (c: LaunchContext) => Promise<Launched>> = {
  kafka: launchKafka,
  registry: launchRegistry,
  redis: launchRedis,
};
