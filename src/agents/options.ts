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
export const hostDefaults = Object.freeze({ heartbeatIntervalMs: 3_000, sessionTimeoutMs: defaultSessionTimeoutMs });

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
