import type { Kafka } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { MabeamError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import type { TopicDefinition } from '../topics/types.ts';
import type { AgentDefinition } from './types.ts';
import { defaultSessionTimeoutMs } from '../kafka/sessionTimeout.ts';

export interface AgentHostOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  /** Topic prefix of the deployment. */
  prefix: string;
  definitions: TopicDefinition[];
  // Each agent's state type is its own; the host keeps them side by side.
  agents: ReadonlyArray<AgentDefinition<any>>;
  /**
   * The consumer group the agents share, as `<prefix>.agents.<pool>`. Hosts
   * that run the same pool are replicas: they split its partitions. Defaults
   * to the agent's id when the host runs one agent.
   */
  pool?: string;
  instanceId?: string;
  heartbeatIntervalMs?: number;
  /** Session timeout of the pool's consumer group: how soon a dead replica's partitions move (default: 2 s within the broker's bounds, src/kafka/sessionTimeout.ts). */
  sessionTimeoutMs?: number;
  /**
   * How many of the pool's partitions this instance works on at once
   * (default 8): requests on different partitions are dispatched side by
   * side and their answers written in shared produce requests (outbox.ts);
   * one partition's messages are still handled in order, and each agent's
   * handlers still run one at a time. 1 handles one message at a time.
   */
  concurrentPartitions?: number;
  metrics?: Metrics;
  /**
   * Set to 'starting' when whoever started this instance already reported
   * the agents starting (a supervisor restarting them): the host then
   * reports only what follows.
   */
  startingReported?: boolean;
  /**
   * Whether the agents sign what the host writes (src/security/signing.ts).
   * Default on, unless MABEAM_SIGNING=off. Keys are read from (or made in)
   * `keysDir`, default $MABEAM_KEYS_DIR or ~/.config/mabeam/keys.
   */
  sign?: boolean;
  keysDir?: string;
}

/** sessionTimeoutMs is the default before the broker's bounds on session timeouts (see chooseSessionTimeout). */
export const hostDefaults = Object.freeze({ heartbeatIntervalMs: 3_000, sessionTimeoutMs: defaultSessionTimeoutMs, concurrentPartitions: 8 });

/** How many partitions a host works on at once: concurrentPartitions, checked, or the default. */
export function concurrencyOf(options: Pick<AgentHostOptions, 'concurrentPartitions'>): number {
  const n = options.concurrentPartitions ?? hostDefaults.concurrentPartitions;
  if (!Number.isInteger(n) || n < 1) throw new MabeamError('INVALID_AGENT', `concurrentPartitions must be a whole number of at least 1, not ${String(n)}.`);
  return n;
}

/** Checks the agents a host is given, once, and says which pool they join. */
export function hostPool(options: Pick<AgentHostOptions, 'agents' | 'pool'>): string {
  if (options.agents.length === 0) throw new MabeamError('INVALID_AGENT', 'An agent host needs at least one agent.');
  const ids = options.agents.map((a) => a.id);
  const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
  if (twice.length > 0) throw new MabeamError('INVALID_AGENT', `Agent ids must be unique in a host; repeated: ${[...new Set(twice)].join(', ')}.`);
  if (options.agents.length > 1 && !options.pool) {
    throw new MabeamError('INVALID_AGENT', 'A host of several agents needs a pool name (the consumer group they share).');
  }
  return options.pool ?? options.agents[0]!.id;
}
