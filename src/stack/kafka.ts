import { randomBytes } from 'node:crypto';
import { access, chmod, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { MabeamError, describeError } from '../errors.ts';
import { createKafka } from '../kafka/client.ts';
import { kafkaErrorType } from '../kafka/errors.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { spawnService, waitUntilReady, type SpawnedService } from './processes.ts';
import type { KafkaSasl } from './types.ts';

const run = promisify(execFile);

export interface KafkaNodeOptions {
  java: string;
  libsDir: string;
  dataDir: string;
  configDir: string;
  port: number;
  controllerPort: number;
  heap: string;
  ownerPid?: number;
  startTimeoutMs: number;
  log: Logger;
  /** A secure node: SASL/SCRAM-SHA-512 and ACLs, with this admin created at format time. */
  admin?: { username: string; password: string };
  /**
   * A node of a replicated cluster: its id, every node's controller port (by id, the KRaft quorum's
   * voters) and the id every node is formatted with. Absent: a single-node cluster.
   */
  cluster?: { nodeId: number; controllerPorts: readonly number[]; clusterId: string };
  /** The address clients reach the node at (its client listener's); default 127.0.0.1. */
  host?: string;
}

/** The SCRAM mechanism of a secure node, as Kafka names it and as kafkajs does. */
export const scramMechanism = 'SCRAM-SHA-512';

/** The JAAS login of a SCRAM user, as Kafka's properties files take it. */
export function scramJaas(username: string, password: string): string {
  return `org.apache.kafka.common.security.scram.ScramLoginModule required username="${username}" password="${password}";`;
}

/**
 * A secure node: clients and the broker itself (inter-broker) on one
 * SASL_PLAINTEXT listener with SCRAM-SHA-512, and every request checked by
 * the StandardAuthorizer with no ACL meaning no access. The controller
 * listener stays PLAINTEXT on loopback (SCRAM is not supported between
 * controllers), so its principal is ANONYMOUS, which must be a super user or
 * the broker cannot register with its own controller.
 */
function secureProperties(o: Pick<KafkaNodeOptions, 'port' | 'controllerPort'>, admin: { username: string; password: string }): Record<string, string | number> {
  return {
    listeners: `SASL_PLAINTEXT://127.0.0.1:${o.port},CONTROLLER://127.0.0.1:${o.controllerPort}`,
    'advertised.listeners': `SASL_PLAINTEXT://127.0.0.1:${o.port}`,
    'inter.broker.listener.name': 'SASL_PLAINTEXT',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,SASL_PLAINTEXT:SASL_PLAINTEXT',
    'sasl.enabled.mechanisms': scramMechanism,
    'sasl.mechanism.inter.broker.protocol': scramMechanism,
    'listener.name.sasl_plaintext.scram-sha-512.sasl.jaas.config': scramJaas(admin.username, admin.password),
    'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
    'allow.everyone.if.no.acl.found': 'false',
    'super.users': `User:${admin.username};User:ANONYMOUS`,
  };
}

/**
 * Broker settings of a KRaft node on loopback: a single-node cluster, or one
 * node of a replicated cluster (`cluster`: every node is broker and
 * controller, the quorum's voters are all of them). Internal topics get one
 * partition, and one replica on a single node or three (two in sync) in a
 * cluster; groups rebalance at once, and
 * short session timeouts are allowed so failover tests stay quick. Topics are
 * never created implicitly: every topic is declared in topics/.
 */
export function brokerProperties(o: Pick<KafkaNodeOptions, 'port' | 'controllerPort' | 'dataDir' | 'admin' | 'cluster' | 'host'>): string {
  const host = o.host ?? '127.0.0.1';
  // In a cluster the internal topics are replicated as the product's are: 3 copies, 2 in sync to write.
  const replicas = Math.min(3, o.cluster?.controllerPorts.length ?? 1);
  const inSync = replicas >= 3 ? 2 : 1;
  const props: Record<string, string | number> = {
    'process.roles': 'broker,controller',
    'node.id': o.cluster?.nodeId ?? 1,
    'controller.quorum.voters': o.cluster ? o.cluster.controllerPorts.map((p, i) => `${i + 1}@127.0.0.1:${p}`).join(',') : `1@127.0.0.1:${o.controllerPort}`,
    listeners: `PLAINTEXT://${host}:${o.port},CONTROLLER://127.0.0.1:${o.controllerPort}`,
    'advertised.listeners': `PLAINTEXT://${host}:${o.port}`,
    'inter.broker.listener.name': 'PLAINTEXT',
    'controller.listener.names': 'CONTROLLER',
    'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
    'log.dirs': o.dataDir,
    'num.partitions': 1,
    'auto.create.topics.enable': 'false',
    'offsets.topic.replication.factor': replicas,
    'offsets.topic.num.partitions': 1,
    'transaction.state.log.replication.factor': replicas,
    'transaction.state.log.min.isr': inSync,
    'transaction.state.log.num.partitions': 1,
    'default.replication.factor': replicas,
    'min.insync.replicas': inSync,
    'group.initial.rebalance.delay.ms': 0,
    'group.min.session.timeout.ms': 1000,
    'log.cleaner.backoff.ms': 1000,
    // A dead producer's open transaction blocks read_committed readers until it is aborted: look often.
    'transaction.abort.timed.out.transaction.cleanup.interval.ms': 1000,
    'delete.topic.enable': 'true',
    // A cluster's controller gives a silent broker's partitions new leaders after 3 s (9 s by default).
    ...(o.cluster ? { 'broker.session.timeout.ms': 3000, 'broker.heartbeat.interval.ms': 500 } : {}),
    ...(o.admin ? secureProperties(o, o.admin) : {}),
  };
  return Object.entries(props)
    .map(([k, v]) => `${k}=${v}`)
    .join('\n');
}

const log4jProperties = (logFile: string): string =>
  [
    'log4j.rootLogger=INFO, file',
    'log4j.logger.org.apache.kafka.clients=WARN',
    'log4j.logger.kafka.request.logger=WARN',
    'log4j.appender.file=org.apache.log4j.FileAppender',
    `log4j.appender.file.File=${logFile}`,
    'log4j.appender.file.layout=org.apache.log4j.PatternLayout',
    'log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n',
  ].join('\n');

/**
 * A KRaft cluster id: 16 random bytes, base64url. Like Kafka's own Uuid it
 * never starts with "-", which a command line would read as an option.
 */
export function newClusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

async function formatted(dataDir: string): Promise<boolean> {
  try {
    await access(join(dataDir, 'meta.properties'));
    return true;
  } catch {
    return false;
  }
}

/** JVM options for Kafka nodes from MABEAM_KAFKA_JVM_OPTS (space-separated), after the stack's own, so they win. */
export function kafkaJvmOptions(env: NodeJS.ProcessEnv = process.env): string[] {
  return (env['MABEAM_KAFKA_JVM_OPTS'] ?? '').split(/\s+/).filter((o) => o !== '');
}

export async function startKafkaNode(o: KafkaNodeOptions): Promise<SpawnedService & { logFile: string }> {
  await mkdir(o.dataDir, { recursive: true });
  await mkdir(o.configDir, { recursive: true });
  const serverProps = join(o.configDir, 'server.properties');
  const log4j = join(o.configDir, 'log4j.properties');
  const logFile = join(o.configDir, 'kafka.log');
  // A secure node's properties hold the admin's password.
  await writeFile(serverProps, brokerProperties(o), { mode: 0o600 });
  if (o.admin) await chmod(serverProps, 0o600);
  await writeFile(log4j, log4jProperties(logFile));
  const classpath = `${o.libsDir}/*`;
  const logArg = `-Dlog4j.configuration=file:${log4j}`;

  if (!(await formatted(o.dataDir))) {
    const clusterId = o.cluster?.clusterId ?? newClusterId();
    // KIP-900: the first SCRAM user is written into the metadata log at format time; there is no
    // broker yet to ask. StorageTool takes it only on its command line, for the second it runs.
    const scram = o.admin ? ['--add-scram', `${scramMechanism}=[name=${o.admin.username},password=${o.admin.password}]`] : [];
    try {
      await run(o.java, ['-Xmx256m', '-cp', classpath, logArg, 'kafka.tools.StorageTool', 'format', `--cluster-id=${clusterId}`, '-c', serverProps, '--ignore-formatted', ...scram], {
        timeout: 60_000,
      });
    } catch (error) {
      throw new MabeamError('STACK_START_FAILED', `Formatting Kafka storage in ${o.dataDir} failed: ${describeError(error)}`, { cause: error });
    }
  }

  const service = await spawnService({
    command: o.java,
    args: [`-Xmx${o.heap}`, `-Dmabeam.stack=${o.configDir}`, '-Xms128m', '-XX:+UseG1GC', '-Djava.awt.headless=true', ...kafkaJvmOptions(), logArg, '-cp', classpath, 'kafka.Kafka', serverProps],
    logFile: join(o.configDir, 'kafka.out'),
    ...(o.ownerPid === undefined ? {} : { ownerPid: o.ownerPid }),
  });
  const sasl: KafkaSasl | undefined = o.admin ? { mechanism: 'scram-sha-512', ...o.admin } : undefined;
  await waitForKafka([`${o.host ?? '127.0.0.1'}:${o.port}`], o.startTimeoutMs, service.pid, logFile, sasl);
  return { ...service, logFile };
}

/** Whether the Kafka data folder was formatted (it then keeps its cluster id and, when secure, its SCRAM users). */
export async function kafkaFormatted(dataDir: string): Promise<boolean> {
  return formatted(dataDir);
}

/** Whether a kafkajs error carries a broker's protocol error: the broker answered, with an error code. */
export function brokerAnswered(error: unknown): boolean {
  return kafkaErrorType(error) !== undefined;
}

/**
 * Ready means a real client call answers: the cluster describes itself with
 * a controller (as the admin, on a secure node). With `running`, a node
 * that answers with a protocol error counts too: a node of a cluster that
 * lost another node answers every metadata request with
 * LEADER_NOT_AVAILABLE while some partition has no leader, and it runs;
 * restarting it would take the cluster down.
 */
export async function waitForKafka(brokers: string[], timeoutMs: number, pid?: number, logFile?: string, sasl?: KafkaSasl, running = false): Promise<void> {
  await waitUntilReady({
    what: `Kafka at ${brokers.join(',')}`,
    timeoutMs,
    intervalMs: 250,
    ...(pid === undefined ? {} : { pid }),
    ...(logFile === undefined ? {} : { logFile }),
    probe: async () => {
      const admin = createKafka({ brokers, clientId: 'mabeam-stack-probe', logger: silentLogger(), ...(sasl ? { sasl } : {}), config: { retry: { retries: 0 } } }).admin();
      try {
        await admin.connect();
        const cluster = await admin.describeCluster();
        return cluster.brokers.length > 0 && cluster.controller !== null;
      } catch (error) {
        if (running && brokerAnswered(error)) return true;
        throw error;
      } finally {
        await admin.disconnect().catch(() => undefined);
      }
    },
  });
}
