import { chmod, mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { MabeamError, describeError } from '../errors.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { credentialsFile, ensureStackCredentials, readStackCredentials, type StackCredentials } from './credentials.ts';
import { answers, processAlive, serviceHealth } from './health.ts';
import { kafkaFormatted } from './kafka.ts';
import { launchKafkaCluster, launchers, type Launched } from './launch.ts';
import { resolveStackOptions, type LocalStackOptions, type ResolvedStackOptions } from './options.ts';
import { stopProcess } from './processes.ts';
import { isRunningState, readStackState, stoppedState, writeStackState } from './state.ts';
import { redisUrlFor } from './redis.ts';
import { isKafkaService, kafkaServiceNames, type PortChange, type ServiceHealth, type ServiceName, type ServiceState, type StackEndpoints, type StackStartReport, type StackState } from './types.ts';

/**
 * The embedded local stack: Kafka (KRaft, one node or a replicated cluster of three), Apicurio Registry and
 * Redis as processes of this machine. Artifacts are fetched once into the
 * cache; a stack's data, logs and `stack.json` live in its state folder.
 * Starting is idempotent: each service of the record that still runs and
 * answers is reused, the others are started again on their recorded ports.
 *
 * A stack manages only its own processes. KAFKA_BROKERS, SCHEMA_REGISTRY_URL
 * and REDIS_URL tell clients where to go (see endpoints.ts); they neither
 * replace a service of the stack nor stop one, since a shell that ran
 * `eval $(mabeam dev env)` has them set to the stack's own addresses.
 */

/** The services of a stack of `brokers` Kafka nodes, in the order they are recorded. */
const serviceOrder = (brokers: number): ServiceName[] => [...kafkaServiceNames(brokers), 'registry', 'redis'];

/**
 * How many Kafka nodes: as asked, else as the stack's record has them (a
 * stack keeps its size: its nodes' data are replicas of each other).
 */
function brokerCount(o: ResolvedStackOptions, previous: StackState | undefined): number {
  const recorded = previous?.services.filter((s) => isKafkaService(s.name)).length || undefined;
  if (o.secure && (o.brokers ?? recorded ?? 1) > 1) throw new MabeamError('INVALID_OPTIONS', 'A secure local stack runs one Kafka node; a replicated secure stack is not supported yet.');
  if (o.brokers !== undefined && recorded !== undefined && o.brokers !== recorded) {
    const stackFlag = o.name === 'dev' ? '' : `--stack ${o.name} `;
    throw new MabeamError('INVALID_OPTIONS', `The local stack "${o.name}" has ${recorded} Kafka node${recorded === 1 ? '' : 's'}; it cannot be started with ${o.brokers}. Start it as it is (\`mabeam ${stackFlag}dev up\`), or a stack of ${o.brokers} under another name, e.g. \`mabeam --stack cluster dev up --brokers ${o.brokers}\`.`);
  }
  return o.brokers ?? recorded ?? 1;
}

export interface StartedStack {
  state: StackState;
  report: StackStartReport;
}

/**
 * The services of a running record that can be kept: their own process is
 * alive and answers. An address an older version took from the environment
 * is never kept: the stack starts its own service in its place. One that is alive but silent may still be starting (a
 * concurrent start) or be hung, so it gets a whole start timeout before it is
 * stopped and replaced.
 */
async function reusableServices(state: StackState, o: ResolvedStackOptions, log: Logger): Promise<Map<ServiceName, ServiceState>> {
  const kept = new Map<ServiceName, ServiceState>();
  await Promise.all(
    state.services
      .filter((s) => s.origin !== 'environment')
      .map(async (s) => {
        if (s.origin === 'default') {
          // The machine's own Redis: not ours to start or stop, only to find answering.
          if (await answers(s, 5_000, state.endpoints)) kept.set(s.name, s);
          return;
        }
        if (!(await processAlive(state, s))) {
          log.warn({ service: s.name, pid: s.pid }, 'a service of the stack is no longer running; starting it again');
          return;
        }
        if (await answers(s, o.startTimeoutMs, state.endpoints)) {
          kept.set(s.name, s);
          return;
        }
        log.warn({ service: s.name, pid: s.pid }, 'a service of the stack runs but does not answer; restarting it');
        await stopService(state, s, o.stopTimeoutMs);
      }),
  );
  return kept;
}

/**
 * Whether the stack in this folder was made secure or plain, from what its
 * first start left: its record, else its credentials, else formatted Kafka
 * data (a first start that failed before it wrote a record). Undefined for a
 * folder no start has used.
 */
async function existingKind(stateDir: string, previous: StackState | undefined): Promise<'secure' | 'plain' | undefined> {
  if (previous) return previous.secure ? 'secure' : 'plain';
  if (await readStackCredentials(stateDir)) return 'secure';
  if (await kafkaFormatted(join(stateDir, 'kafka', 'data'))) return 'plain';
  return undefined;
}

/**
 * A stack stays what its first start made it: its Kafka data was formatted
 * with (or without) the admin's SCRAM user and its topics carry no ACLs (or
 * do), so switching would mean reformatting, which is never done silently.
 */
function refuseSwitch(o: ResolvedStackOptions, kind: 'secure' | 'plain' | undefined): void {
  if (kind === undefined || (kind === 'secure') === o.secure) return;
  const stackFlag = o.name === 'dev' ? '' : `--stack ${o.name} `;
  const hint = o.secure
    ? 'Start a secure stack under another name, e.g. `mabeam --stack secure dev up --secure`.'
    : `Start it as it is (\`mabeam ${stackFlag}dev up --secure\`), or a plain stack under another name, e.g. \`mabeam --stack plain dev up\`.`;
  throw new MabeamError(
    'STACK_SECURITY_MISMATCH',
    `The local stack "${o.name}" (${o.stateDir}) is ${kind}; it cannot be started ${o.secure ? 'secure' : 'plain'}. ${hint}`,
    { details: { stack: o.name, kind } },
  );
}

/** What clients of the stack use: the addresses, and on a secure stack the admin's logins. */
function stackEndpoints(address: (name: ServiceName) => string, byName: Map<ServiceName, ServiceState>, credentials: StackCredentials | undefined): StackEndpoints {
  const kafka = [...byName.values()].filter((service) => isKafkaService(service.name)).flatMap((service) => service.address.split(','));
  const addresses = { kafkaBrokers: kafka, schemaRegistryUrl: address('registry'), redisUrl: address('redis') };
  if (!credentials) return addresses;
  const redisPort = byName.get('redis')?.ports?.client;
  return {
    ...addresses,
    kafkaSasl: { mechanism: 'scram-sha-512', username: 'admin', password: credentials.kafka.admin },
    registryAuth: { username: 'admin', password: credentials.registry.admin },
    redisUrl: redisPort === undefined ? addresses.redisUrl : redisUrlFor(redisPort, credentials.redis, new URL(addresses.redisUrl).hostname),
  };
}

/** Endpoints fit for a log line: logins named, passwords left out. */
export function withoutPasswords(endpoints: StackEndpoints): StackEndpoints {
  const redis = new URL(endpoints.redisUrl);
  if (redis.password) redis.password = '***';
  return {
    ...endpoints,
    redisUrl: redis.toString().replace(/\/$/, ''),
    ...(endpoints.kafkaSasl ? { kafkaSasl: { ...endpoints.kafkaSasl, password: '***' } } : {}),
    ...(endpoints.registryAuth ? { registryAuth: { ...endpoints.registryAuth, password: '***' } } : {}),
  };
}

export async function startStack(input: LocalStackOptions = {}, logger: Logger = silentLogger()): Promise<StartedStack> {
  const o = resolveStackOptions(input);
  const log = logger.child({ ns: 'stack', stack: o.name });
  const timings: Record<string, number> = {};
  const begun = performance.now();
  await mkdir(o.stateDir, { recursive: true, ...(o.secure ? { mode: 0o700 } : {}) });

  const previous = await readStackState(o.stateDir);
  refuseSwitch(o, await existingKind(o.stateDir, previous));
  // A secure stack's folder holds its passwords: only its user may enter it.
  if (o.secure) await chmod(o.stateDir, 0o700);
  const credentials = o.secure ? await ensureStackCredentials(o.stateDir) : undefined;
  const brokers = brokerCount(o, previous);
  const order = serviceOrder(brokers);
  const kept = isRunningState(previous) ? await reusableServices(previous, o, log) : new Map<ServiceName, ServiceState>();
  const missing = order.filter((name) => !kept.has(name));
  if (previous && missing.length === 0) {
    log.info({ dir: o.stateDir }, 'stack already running; reusing it');
    return {
      state: previous,
      report: { reused: true, started: [], portChanges: [], fetched: { kafka: false, registry: false }, timings: { total: Math.round(performance.now() - begun) } },
    };
  }

  const context = { o, log, timings, previous, ...(credentials ? { credentials } : {}) };
  // A replicated cluster's nodes start together (one launch); every other service on its own.
  const kafkaMissing = missing.filter(isKafkaService);
  const launches: Array<Promise<Launched[]>> = missing
    .filter((name) => brokers === 1 || !isKafkaService(name))
    .map((name) => launchers[name as keyof typeof launchers](context).then((l) => [l]));
  if (brokers > 1 && kafkaMissing.length > 0) launches.push(launchKafkaCluster(context, kafkaServiceNames(brokers), kafkaMissing));
  const results = await Promise.allSettled(launches);
  const launched = results.flatMap((r) => (r.status === 'fulfilled' ? r.value : []));
  const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
  if (failures.length > 0) {
    // Only what this start launched is stopped; services kept from the record run on, and their record stays.
    await Promise.all(launched.map((l) => stopService({ dir: o.stateDir }, l.service, o.stopTimeoutMs)));
    const first = failures[0]?.reason;
    if (first instanceof MabeamError) throw first;
    throw new MabeamError('STACK_START_FAILED', `The local stack did not start: ${failures.map((f) => describeError(f.reason)).join('; ')}`, { cause: first });
  }

  const byName = new Map<ServiceName, ServiceState>([...kept, ...launched.map((l): [ServiceName, ServiceState] => [l.service.name, l.service])]);
  const services = order.map((name) => byName.get(name)).filter((s): s is ServiceState => s !== undefined);
  const address = (name: ServiceName): string => byName.get(name)?.address ?? '';
  const state: StackState = {
    name: o.name,
    dir: o.stateDir,
    ephemeral: o.ephemeral,
    startedAt: new Date().toISOString(),
    endpoints: stackEndpoints(address, byName, credentials),
    services,
    ...(credentials ? { secure: { credentialsFile: credentialsFile(o.stateDir) } } : {}),
  };
  timings['total'] = Math.round(performance.now() - begun);
  await writeStackState(state);
  const portChanges: PortChange[] = launched.flatMap((l: Launched) => l.portChanges);
  const fetched = { kafka: launched.some((l) => isKafkaService(l.service.name) && l.fetched), registry: launched.some((l) => l.service.name === 'registry' && l.fetched) };
  log.info({ endpoints: withoutPasswords(state.endpoints), secure: o.secure, started: missing, portChanges, timings }, 'stack ready');
  return { state, report: { reused: false, started: missing, portChanges, fetched, timings } };
}

async function stopService(state: Pick<StackState, 'dir'>, s: ServiceState, timeoutMs: number): Promise<void> {
  if (s.origin !== 'started' || s.pid === undefined) return;
  if (await processAlive(state, s)) await stopProcess(s.pid, timeoutMs);
  if (s.watchdogPid !== undefined) await stopProcess(s.watchdogPid, 1_000);
}

/**
 * Stops every process the stack started. An ephemeral stack's folder is
 * removed; a lasting stack keeps its record, marked stopped, so the next
 * start binds the same ports.
 */
export async function stopStack(state: StackState, options: { timeoutMs?: number } = {}): Promise<void> {
  await Promise.all(state.services.map((s) => stopService(state, s, options.timeoutMs ?? 15_000)));
  if (state.ephemeral) await rm(state.dir, { recursive: true, force: true });
  else await writeStackState(stoppedState(state));
}

export interface StackStatus {
  options: ResolvedStackOptions;
  /** The stack's record, running or stopped (`stoppedAt` set); absent when it never started. */
  state?: StackState;
  services: Array<ServiceState & { health: ServiceHealth; running: boolean }>;
}

/** How long `status` gives a service to answer: a running one answers in milliseconds. */
const statusProbeMs = 3_000;

export async function stackStatus(input: LocalStackOptions = {}): Promise<StackStatus> {
  const options = resolveStackOptions(input);
  const state = await readStackState(options.stateDir);
  if (!state) return { options, services: [] };
  if (!isRunningState(state)) return { options, state, services: state.services.map((s) => ({ ...s, health: 'stopped', running: false })) };
  const services = await Promise.all(
    state.services.map(async (s) => {
      const health = await serviceHealth(state, s, statusProbeMs);
      return { ...s, health, running: health === 'running' };
    }),
  );
  return { options, state, services };
}

/** Stops the named stack if its record says it runs; returns false when nothing was running. */
export async function stopNamedStack(input: LocalStackOptions = {}): Promise<boolean> {
  const options = resolveStackOptions(input);
  const state = await readStackState(options.stateDir);
  if (!isRunningState(state)) return false;
  await stopStack(state, { timeoutMs: options.stopTimeoutMs });
  return true;
}
