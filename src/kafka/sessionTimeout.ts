import kafkajs, { type Kafka } from 'kafkajs';

/** Config resource type of a broker (kafkajs's ConfigResourceTypes is not a named ESM export). */
const brokerResourceType: 4 = kafkajs.ConfigResourceTypes.BROKER as 4;

/**
 * How long a group member may go unheard before its partitions move to the
 * others, when nobody says. A member killed with SIGKILL is noticed only
 * then, so this bounds failover: 2 s here answers a dead member's pending
 * work within about 3 s (docs/benchmarks.md, Failover).
 *
 * A broker refuses a session timeout outside its
 * `group.min.session.timeout.ms` / `group.max.session.timeout.ms` (6 s and
 * 30 min by default; the local stack allows 1 s). So the default is kept
 * within the bounds the broker states, and where it cannot be asked (the
 * principal may not describe broker configs) it is Kafka's default floor.
 */
export const defaultSessionTimeoutMs = 2_000;

/** Kafka's default `group.min.session.timeout.ms`: what any broker takes unless its operator raised it. */
export const kafkaDefaultMinSessionTimeoutMs = 6_000;

export interface SessionTimeoutChoice {
  sessionTimeoutMs: number;
  /** Why this one: asked for, the default within the broker's bounds, or the floor when they could not be read. */
  source: 'requested' | 'default' | 'broker-minimum' | 'broker-maximum' | 'bounds-unknown';
}

const bounds = new WeakMap<Kafka, Promise<{ min: number; max: number } | undefined>>();

/** The broker's bounds on session timeouts, asked once per client (undefined when it will not say). */
export function sessionTimeoutBounds(kafka: Kafka): Promise<{ min: number; max: number } | undefined> {
  let known = bounds.get(kafka);
  if (!known) {
    known = readBounds(kafka).catch(() => undefined);
    bounds.set(kafka, known);
  }
  return known;
}

/** The session timeout a group member uses: the one asked for, else the default within the broker's bounds. */
export async function chooseSessionTimeout(kafka: Kafka, requested?: number): Promise<SessionTimeoutChoice> {
  if (requested !== undefined) return { sessionTimeoutMs: requested, source: 'requested' };
  const known = await sessionTimeoutBounds(kafka);
  if (!known) return { sessionTimeoutMs: Math.max(defaultSessionTimeoutMs, kafkaDefaultMinSessionTimeoutMs), source: 'bounds-unknown' };
  if (defaultSessionTimeoutMs < known.min) return { sessionTimeoutMs: known.min, source: 'broker-minimum' };
  if (defaultSessionTimeoutMs > known.max) return { sessionTimeoutMs: known.max, source: 'broker-maximum' };
  return { sessionTimeoutMs: defaultSessionTimeoutMs, source: 'default' };
}

/**
 * How often a member with this session timeout heartbeats: four beats fit in
 * it, never more often than every 250 ms. The survivors of a dead member
 * learn of the rebalance at their next beat, so this adds to failover too.
 */
export function heartbeatIntervalFor(sessionTimeoutMs: number): number {
  return Math.max(250, Math.floor(sessionTimeoutMs / 4));
}

async function readBounds(kafka: Kafka): Promise<{ min: number; max: number } | undefined> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const { brokers } = await admin.describeCluster();
    const broker = brokers[0];
    if (!broker) return undefined;
    const described = await admin.describeConfigs({
      includeSynonyms: false,
      resources: [{ type: brokerResourceType, name: String(broker.nodeId), configNames: ['group.min.session.timeout.ms', 'group.max.session.timeout.ms'] }],
    });
    const entries = new Map(described.resources[0]?.configEntries.map((e) => [e.configName, Number(e.configValue)]) ?? []);
    const min = entries.get('group.min.session.timeout.ms');
    const max = entries.get('group.max.session.timeout.ms');
    return min !== undefined && max !== undefined && Number.isFinite(min) && Number.isFinite(max) ? { min, max } : undefined;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}
