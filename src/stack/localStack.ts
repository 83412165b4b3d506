import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MabeamError, describeError } from '../errors.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { ensureKafka, ensureRegistry } from './artifacts.ts';
import { findJava } from './java.ts';
import { startKafkaNode, waitForKafka } from './kafka.ts';
import { resolveStackOptions, type LocalStackOptions, type ResolvedStackOptions } from './options.ts';
import { freePort, onFreshPorts } from './ports.ts';
import { isOurProcess, stopProcess } from './processes.ts';
import { defaultRedisUrl, findRedisServer, startRedisNode, waitForRedis } from './redis.ts';
import { startRegistryNode, waitForRegistry } from './registry.ts';
import type { ServiceState, StackStartReport, StackState } from './types.ts';

/**
 * The embedded local stack: Kafka (KRaft, one node), Apicurio Registry and
 * Redis as processes of this machine. Artifacts are fetched once into the
 * cache; a stack's data, logs and `stack.json` live in its state folder.
 * Starting is idempotent: a running stack is found by its state file and
 * reused. KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL, when set, replace
 * the matching service.
 */

const stateFileName = 'stack.json';

export async function readStackState(stateDir: string): Promise<StackState | undefined> {
  try {
    return JSON.parse(await readFile(join(stateDir, stateFileName), 'utf8')) as StackState;
  } catch {
    return undefined;
  }
}

async function writeStackState(state: StackState): Promise<void> {
  await writeFile(join(state.dir, stateFileName), `${JSON.stringify(state, null, 2)}\n`);
}

async function startedServicesAlive(state: StackState): Promise<boolean> {
  for (const service of state.services) {
    if (service.origin === 'started' && (service.pid === undefined || !(await isOurProcess(service.pid, service.marker ?? state.dir)))) return false;
  }
  return true;
}

async function servicesReady(state: StackState, timeoutMs: number): Promise<boolean> {
  try {
    await Promise.all([
      waitForKafka(state.endpoints.kafkaBrokers, timeoutMs),
      waitForRegistry(state.endpoints.schemaRegistryUrl, timeoutMs),
      waitForRedis(state.endpoints.redisUrl, timeoutMs),
    ]);
    return true;
  } catch {
    return false;
  }
}

function previousPort(state: StackState | undefined, name: ServiceState['name']): number | undefined {
  const address = state?.services.find((s) => s.name === name && s.origin === 'started')?.address;
  const port = address ? Number(/:(\d+)(?:\/|$)/.exec(address)?.[1]) : NaN;
  return Number.isFinite(port) ? port : undefined;
}

async function timed<T>(timings: Record<string, number>, phase: string, work: () => Promise<T>): Promise<T> {
  const started = performance.now();
  try {
    return await work();
  } finally {
    timings[phase] = Math.round(performance.now() - started);
  }
}

export interface StartedStack {
  state: StackState;
  report: StackStartReport;
}

export async function startStack(input: LocalStackOptions = {}, logger: Logger = silentLogger()): Promise<StartedStack> {
  const o = resolveStackOptions(input);
  const log = logger.child({ ns: 'stack', stack: o.name });
  const timings: Record<string, number> = {};
  const begun = performance.now();
  await mkdir(o.stateDir, { recursive: true });

  const previous = await readStackState(o.stateDir);
  if (previous && (await startedServicesAlive(previous)) && (await servicesReady(previous, 5_000))) {
    log.info({ dir: o.stateDir }, 'stack already running; reusing it');
    return { state: previous, report: { reused: true, fetched: { kafka: false, registry: false }, timings: { total: Math.round(performance.now() - begun) } } };
  }
  if (previous) await stopServices(previous, o.stopTimeoutMs);

  const services: ServiceState[] = [];
  const fetched = { kafka: false, registry: false };
  const owner = o.ephemeral ? process.pid : undefined;
  const ownerOpt = owner === undefined ? {} : { ownerPid: owner };
  const state: StackState = {
    name: o.name,
    dir: o.stateDir,
    ephemeral: o.ephemeral,
    startedAt: new Date().toISOString(),
    endpoints: { kafkaBrokers: [], schemaRegistryUrl: '', redisUrl: '' },
    services,
  };

  const kafka = async (): Promise<void> => {
    const fromEnv = o.env['KAFKA_BROKERS'];
    if (fromEnv) {
      state.endpoints.kafkaBrokers = fromEnv.split(',').map((b) => b.trim()).filter(Boolean);
      services.push({ name: 'kafka', origin: 'environment', address: state.endpoints.kafkaBrokers.join(',') });
      return;
    }
    const [artifact, java] = await timed(timings, 'kafka.fetch', () =>
      Promise.all([
        ensureKafka(o.cacheDir, o.kafkaVersion, log, o.mavenRepository),
        findJava({ minMajor: 17, explicitHome: o.javaHome, env: o.env, purpose: `Apache Kafka ${o.kafkaVersion}` }),
      ]),
    );
    fetched.kafka = artifact.fetched;
    let port = 0;
    const node = await timed(timings, 'kafka.start', () =>
      onFreshPorts('kafka', o.kafkaPort !== undefined && o.kafkaControllerPort !== undefined, log, async (retry) => {
        port = o.kafkaPort ?? (await freePort(retry ? undefined : previousPort(previous, 'kafka')));
        const controllerPort = o.kafkaControllerPort ?? (await freePort());
        return startKafkaNode({
        java: java.executable,
        libsDir: join(artifact.dir, 'libs'),
        dataDir: join(o.stateDir, 'kafka', 'data'),
        configDir: join(o.stateDir, 'kafka'),
        port,
        controllerPort,
        heap: o.kafkaHeap,
        startTimeoutMs: o.startTimeoutMs,
        log,
        ...ownerOpt,
        });
      }),
    );
    state.endpoints.kafkaBrokers = [`127.0.0.1:${port}`];
    services.push({ name: 'kafka', origin: 'started', address: `127.0.0.1:${port}`, pid: node.pid, logFile: node.logFile, ...watchdog(node.watchdogPid) });
  };

  const registry = async (): Promise<void> => {
    const fromEnv = o.env['SCHEMA_REGISTRY_URL'];
    if (fromEnv) {
      state.endpoints.schemaRegistryUrl = fromEnv.replace(/\/+$/, '');
      services.push({ name: 'registry', origin: 'environment', address: state.endpoints.schemaRegistryUrl });
      return;
    }
    const [artifact, java] = await timed(timings, 'registry.fetch', () =>
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
    fetched.registry = artifact.fetched;
    const node = await timed(timings, 'registry.start', () =>
      onFreshPorts('registry', false, log, async (retry) => {
        const port = o.registryPort ?? (await freePort(retry ? undefined : previousPort(previous, 'registry')));
        const managementPort = await freePort();
        return startRegistryNode({
        java: `${java.executable}`,
        appDir: artifact.dir,
        dataDir: join(o.stateDir, 'registry'),
        port,
        managementPort,
        heap: o.registryHeap,
        inMemory: o.ephemeral,
        startTimeoutMs: o.startTimeoutMs,
        marker: o.stateDir,
        ...ownerOpt,
        });
      }),
    );
    state.endpoints.schemaRegistryUrl = node.url;
    services.push({ name: 'registry', origin: 'started', address: node.url, pid: node.pid, logFile: node.logFile, ...watchdog(node.watchdogPid) });
  };

  const redis = async (): Promise<void> => {
    const fromEnv = o.env['REDIS_URL'];
    if (fromEnv) {
      state.endpoints.redisUrl = fromEnv;
      services.push({ name: 'redis', origin: 'environment', address: fromEnv });
      return;
    }
    const binary = await findRedisServer();
    if (!binary) {
      log.warn('redis-server not found; using the Redis at 127.0.0.1:6379');
      state.endpoints.redisUrl = defaultRedisUrl;
      services.push({ name: 'redis', origin: 'default', address: defaultRedisUrl });
      return;
    }
    let port = 0;
    const node = await timed(timings, 'redis.start', () =>
      onFreshPorts('redis', o.redisPort !== undefined, log, async (retry) => {
        port = o.redisPort ?? (await freePort(retry ? undefined : previousPort(previous, 'redis')));
        return startRedisNode({ binary, dataDir: join(o.stateDir, 'redis'), port, startTimeoutMs: o.startTimeoutMs, ...ownerOpt });
      }),
    );
    state.endpoints.redisUrl = node.url;
    services.push({ name: 'redis', origin: 'started', address: node.url, pid: node.pid, marker: `redis-server 127.0.0.1:${port}`, logFile: node.logFile, ...watchdog(node.watchdogPid) });
  };

  const results = await Promise.allSettled([kafka(), registry(), redis()]);
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0) {
    await stopServices(state, o.stopTimeoutMs);
    const first = failures[0]?.reason;
    if (first instanceof MabeamError) throw first;
    throw new MabeamError('STACK_START_FAILED', `The local stack did not start: ${failures.map((f) => describeError(f.reason)).join('; ')}`, { cause: first });
  }
  timings['total'] = Math.round(performance.now() - begun);
  await writeStackState(state);
  log.info({ endpoints: state.endpoints, timings }, 'stack ready');
  return { state, report: { reused: false, fetched, timings } };
}

function watchdog(pid: number | undefined): { watchdogPid?: number } {
  return pid === undefined ? {} : { watchdogPid: pid };
}

async function stopServices(state: StackState, timeoutMs: number): Promise<void> {
  await Promise.all(
    state.services
      .filter((s) => s.origin === 'started' && s.pid !== undefined)
      .map(async (s) => {
        if (await isOurProcess(s.pid as number, s.marker ?? state.dir)) await stopProcess(s.pid as number, timeoutMs);
        if (s.watchdogPid !== undefined) await stopProcess(s.watchdogPid, 1_000);
      }),
  );
}

/** Stops every process the stack started; an ephemeral stack's folder is removed. */
export async function stopStack(state: StackState, options: { timeoutMs?: number } = {}): Promise<void> {
  await stopServices(state, options.timeoutMs ?? 15_000);
  if (state.ephemeral) await rm(state.dir, { recursive: true, force: true });
  else await rm(join(state.dir, stateFileName), { force: true });
}

export interface StackStatus {
  options: ResolvedStackOptions;
  state?: StackState;
  services: Array<ServiceState & { running: boolean }>;
}

export async function stackStatus(input: LocalStackOptions = {}): Promise<StackStatus> {
  const options = resolveStackOptions(input);
  const state = await readStackState(options.stateDir);
  if (!state) return { options, services: [] };
  const services = await Promise.all(
    state.services.map(async (s) => ({
      ...s,
      running: s.origin !== 'started' || (s.pid !== undefined && (await isOurProcess(s.pid, s.marker ?? state.dir))),
    })),
  );
  return { options, state, services };
}

/** Stops the named stack if its state file says it runs; returns false when nothing was running. */
export async function stopNamedStack(input: LocalStackOptions = {}): Promise<boolean> {
  const options = resolveStackOptions(input);
  const state = await readStackState(options.stateDir);
  if (!state) return false;
  await stopStack(state, { timeoutMs: options.stopTimeoutMs });
  return true;
}
