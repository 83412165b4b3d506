import type { Admin, Kafka, Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { EventCodec } from '../codec/codec.ts';
import { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import type { AgentRecord, Heartbeat, LifecycleState } from '../events/types.ts';
import { assessHealth, defaultHealthPolicy, type HealthAssessment, type HealthPolicy } from './health.ts';
import type { Logger } from '../log/logger.ts';
import { CompactedView } from '../readmodel/compactedView.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';

/** An agent's registration as the registry holds it: the record, and who wrote it when. */
export interface RegisteredAgent extends Omit<AgentRecord, 'envelope'> {
  registeredBy: string;
  registeredAt: number;
}

export interface AgentLifecycle {
  state: LifecycleState;
  instanceId: string | null;
  host: string | null;
  reason: string;
  at: number;
}

export interface AgentResources {
  instanceId: string;
  host: string;
  pid: number;
  memoryRssBytes: number;
  heapUsedBytes: number;
  consumerLag: number;
  eventTime: number;
  intervalMs: number;
}

export interface AgentHealth extends HealthAssessment {
  agentId: string;
  groupMembers: number;
  resources?: AgentResources;
}

export interface AgentRegistryOptions {
  kafka: Kafka;
  redis: Redis;
  codec: EventCodec;
  producer: Producer;
  logger: Logger;
  prefix: string;
  definitions: TopicDefinition[];
  /**
   * Names this process's view in Redis (`mabeam:<prefix>:<viewName>:…`).
   * One process maintains a view name; other processes use their own.
   */
  viewName?: string;
  /** The view is this process's alone (a view name with its instance in it): its Redis keys go when it stops, or expire if it dies (see CompactedView). */
  disposable?: boolean;
}

/**
 * Any process's window on the agents: the compacted agents topic (who they
 * are, what they can do) and the lifecycle topic (what state each is in),
 * materialised in Redis with indexes by capability, role and state. Redis
 * only holds a copy: when it is flushed or stale the views are rebuilt from
 * the topics.
 */
export class AgentRegistry {
  private readonly agents: CompactedView;
  private readonly lifecycle: CompactedView;
  private readonly heartbeats: CompactedView;
  private readonly admin: Admin;

  constructor(options: AgentRegistryOptions) {
    const namespace = `mabeam:${options.prefix}:${options.viewName ?? 'registry'}`;
    const definition = (name: string) => options.definitions.find((d) => d.name === name)!;
    const deadLetters = new DeadLetterWriter({
      producer: options.producer,
      codec: options.codec,
      topic: topicName(options.prefix, 'dead-letters'),
      producerId: `registry-view:${namespace}`,
      logger: options.logger,
    });
    const common = { kafka: options.kafka, redis: options.redis, codec: options.codec, deadLetters, logger: options.logger, ...(options.disposable ? { disposable: true } : {}) };
    this.agents = new CompactedView({
      ...common,
      topic: topicName(options.prefix, 'agents'),
      definition: definition('agents'),
      namespace: `${namespace}:agents`,
      project: (d): RegisteredAgent => {
        const r = d.event as AgentRecord;
        return {
          agentId: r.agentId,
          role: r.role,
          capabilities: r.capabilities,
          resources: r.resources,
          consumerGroup: r.consumerGroup,
          metadata: r.metadata,
          // As the latest record says; which key a decider trusts is its pinned directory's (src/security/directory.ts).
          publicKey: r.publicKey ?? null,
          keyId: r.keyId ?? null,
          keyNotAfter: r.keyNotAfter ?? null,
          registeredBy: r.envelope.producerId,
          registeredAt: r.envelope.eventTime,
        };
      },
      indexes: (value) => {
        const agent = value as RegisteredAgent;
        return [...agent.capabilities.map((c) => `capability:${c}`), `role:${agent.role}`];
      },
    });
    this.lifecycle = new CompactedView({
      ...common,
      topic: topicName(options.prefix, 'lifecycle'),
      definition: definition('lifecycle'),
      namespace: `${namespace}:lifecycle`,
      project: (d): AgentLifecycle | undefined => {
        if (d.type !== 'LifecycleChanged') return undefined;
        const e = d.event;
        return { state: e.to, instanceId: e.instanceId, host: e.host, reason: e.reason, at: e.envelope.eventTime };
      },
      indexes: (value) => [`state:${(value as AgentLifecycle).state}`],
    });
    this.heartbeats = new CompactedView({
      ...common,
      topic: topicName(options.prefix, 'heartbeats'),
      definition: definition('heartbeats'),
      namespace: `${namespace}:heartbeats`,
      project: (d): AgentResources => {
        const h = d.event as Heartbeat;
        return {
          instanceId: h.instanceId,
          host: h.host,
          pid: h.pid,
          memoryRssBytes: h.memoryRssBytes,
          heapUsedBytes: h.heapUsedBytes,
          consumerLag: h.consumerLag,
          eventTime: h.envelope.eventTime,
          intervalMs: h.intervalMs,
        };
      },
    });
    this.admin = options.kafka.admin();
  }

  async start(): Promise<void> {
    await Promise.all([this.agents.start(), this.lifecycle.start(), this.heartbeats.start(), this.admin.connect()]);
  }

  async stop(): Promise<void> {
    await Promise.all([this.agents.stop(), this.lifecycle.stop(), this.heartbeats.stop(), this.admin.disconnect()]);
  }

  /** Resolves once the views hold everything their topics held when called. */
  async caughtUp(timeoutMs?: number): Promise<void> {
    await Promise.all([this.agents.caughtUp(timeoutMs), this.lifecycle.caughtUp(timeoutMs), this.heartbeats.caughtUp(timeoutMs)]);
  }

  /**
   * Health of agents (all registered ones by default) from their last
   * heartbeat and their consumer group's members, with the resource usage
   * the heartbeat reported. An observation for people and supervisors; it is
   * not a coordination decision.
   */
  async health(agentIds?: string[], policy: HealthPolicy = defaultHealthPolicy, now = Date.now()): Promise<AgentHealth[]> {
    const agents = (await this.list()).filter((a) => !agentIds || agentIds.includes(a.agentId));
    const groups = [...new Set(agents.map((a) => a.consumerGroup))];
    const described = groups.length ? (await this.admin.describeGroups(groups)).groups : [];
    const members = new Map(described.map((g) => [g.groupId, g.members.length]));
    return Promise.all(
      agents.map(async (a) => {
        const resources = await this.heartbeats.get<AgentResources>(a.agentId);
        const groupMembers = members.get(a.consumerGroup) ?? 0;
        const assessment = assessHealth({ now, groupMembers, ...(resources ? { heartbeat: resources } : {}) }, policy);
        return { agentId: a.agentId, groupMembers, ...assessment, ...(resources ? { resources } : {}) };
      }),
    );
  }

  async get(agentId: string): Promise<(RegisteredAgent & { lifecycle?: AgentLifecycle }) | undefined> {
    const [agent, lifecycle] = await Promise.all([this.agents.get<RegisteredAgent>(agentId), this.lifecycle.get<AgentLifecycle>(agentId)]);
    if (!agent) return undefined;
    return lifecycle ? { ...agent, lifecycle } : agent;
  }

  /** Every agent's latest lifecycle transition, by agent id. */
  lifecycles(): Promise<Map<string, AgentLifecycle>> {
    return this.lifecycle.entries<AgentLifecycle>();
  }

  async list(): Promise<RegisteredAgent[]> {
    return [...(await this.agents.entries<RegisteredAgent>()).values()].sort((a, b) => a.agentId.localeCompare(b.agentId));
  }

  /** Agent ids offering a capability. */
  byCapability(capability: string): Promise<string[]> {
    return this.agents.lookup(`capability:${capability}`);
  }

  byRole(role: string): Promise<string[]> {
    return this.agents.lookup(`role:${role}`);
  }

  /** Agent ids whose latest lifecycle transition went to `state`. */
  byState(state: LifecycleState): Promise<string[]> {
    return this.lifecycle.lookup(`state:${state}`);
  }

  /** Agents with every capability asked for, optionally only those in a state. */
  async find(query: { capabilities?: string[]; state?: LifecycleState }): Promise<string[]> {
    const sets = await Promise.all([...(query.capabilities ?? []).map((c) => this.byCapability(c)), ...(query.state ? [this.byState(query.state)] : [])]);
    if (sets.length === 0) return (await this.list()).map((a) => a.agentId);
    return sets.reduce((acc, ids) => acc.filter((id) => ids.includes(id)));
  }
}
