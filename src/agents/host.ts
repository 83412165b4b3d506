import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { IHeaders, Kafka, Message, Producer } from 'kafkajs';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import { EventConsumer, type EventContext } from '../consumer/eventConsumer.ts';
import { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { MabeamError, describeError } from '../errors.ts';
import { deterministicEventId, newEnvelope } from '../events/envelope.ts';
import type {
  AgentRecord,
  AgentStateSnapshot,
  Bid,
  BidRequest,
  Directive,
  EventTypeName,
  EventTypes,
  HandlerFailed,
  Heartbeat,
  LifecycleChanged,
  LifecycleState,
  MetricSample,
  Proposal,
  Vote,
} from '../events/types.ts';
import { createProducer, joinedAndFetched } from '../kafka/client.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';
import { addressedTo, eligibleForBidRequest, eligibleForProposal } from './eligibility.ts';
import { transition } from './lifecycle.ts';
import { readSnapshots } from './snapshots.ts';
import type { AgentContext, AgentDefinition } from './types.ts';

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
  /** Session timeout of the pool's consumer group: how soon a dead replica's partitions move. */
  sessionTimeoutMs?: number;
  metrics?: Metrics;
  /**
   * Set to 'starting' when whoever started this instance already reported
   * the agents starting (a supervisor restarting them): the host then
   * reports only what follows.
   */
  startingReported?: boolean;
}

/** Header naming the host instance that produced an event. */
export const instanceHeader = 'mabeam-instance';

export const hostDefaults = Object.freeze({ heartbeatIntervalMs: 3_000, sessionTimeoutMs: 6_000 });

interface HostedAgent {
  definition: AgentDefinition<any>;
  context: AgentContext<unknown>;
  lifecycle: LifecycleState | null;
  snapshotSequence: number;
  heartbeatSequence: number;
}

/**
 * Whether an agent takes the messages it is given: whenever the consumer
 * hands any out. While starting (joined, state already restored), running,
 * stopping or handing over, every message delivered is committed once this
 * returns, so it must be handled; what the consumer never hands out stays
 * uncommitted for the next instance.
 */
function handling(agent: HostedAgent): boolean {
  return agent.lifecycle === 'starting' || agent.lifecycle === 'running' || agent.lifecycle === 'stopping' || agent.lifecycle === 'migrating';
}

type Outgoing = { topic: string; key: string; type: EventTypeName; event: EventTypes[EventTypeName] };

/**
 * Runs agents as members of one Kafka consumer group (the pool). It reads
 * bid requests, proposals and directives, hands each to every local agent
 * that is eligible, and writes their bids and votes keyed by round id. A
 * handler that throws or answers nonsense is reported as a HandlerFailed
 * event and the host goes on; an undecodable message goes to dead-letters.
 * It registers its agents, reports every lifecycle transition, sends
 * heartbeats, and keeps agent state across instances through snapshots on
 * the agent-state topic.
 *
 * Delivery is at least once: a crash redelivers what was not yet committed,
 * and the answers to it carry the same event ids as before.
 *
 * Emits 'stopped' (with the reason) once it has stopped, whether asked to or
 * through a migrate directive.
 */
export class AgentHost extends EventEmitter {
  readonly instanceId: string;
  readonly groupId: string;
  readonly pool: string;
  private readonly options: AgentHostOptions;
  private readonly agents = new Map<string, HostedAgent>();
  /** Measurements agents reported (AgentContext.report), produced with the next events. */
  private readonly reports: Outgoing[] = [];
  private readonly log: Logger;
  private producer: Producer | undefined;
  private consumer: EventConsumer | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private readonly lag = new Map<string, number>();
  private stopping: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private readonly topic: (name: string) => string;

  constructor(options: AgentHostOptions) {
    super();
    if (options.agents.length === 0) throw new MabeamError('INVALID_AGENT', 'An agent host needs at least one agent.');
    const ids = options.agents.map((a) => a.id);
    const twice = ids.filter((id, i) => ids.indexOf(id) !== i);
    if (twice.length > 0) throw new MabeamError('INVALID_AGENT', `Agent ids must be unique in a host; repeated: ${[...new Set(twice)].join(', ')}.`);
    if (options.agents.length > 1 && !options.pool) {
      throw new MabeamError('INVALID_AGENT', 'A host of several agents needs a pool name (the consumer group they share).');
    }
    this.options = options;
    this.pool = options.pool ?? options.agents[0]!.id;
    this.groupId = `${options.prefix}.agents.${this.pool}`;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = options.logger.child({ ns: 'agent-host', pool: this.pool, instance: this.instanceId });
    this.topic = (name) => topicName(options.prefix, name);
    for (const definition of options.agents) {
      this.agents.set(definition.id, {
        definition,
        context: {
          agentId: definition.id,
          instanceId: this.instanceId,
          logger: this.log.child({ agent: definition.id }),
          state: definition.initialState?.() ?? {},
          report: (name, value, labels = {}) => void this.reports.push(this.sample(definition.id, name, value, labels)),
        },
        lifecycle: null,
        snapshotSequence: 0,
        heartbeatSequence: 0,
      });
    }
  }

  /** The agents of this host and their lifecycle state in this instance. */
  get states(): ReadonlyMap<string, LifecycleState | null> {
    return new Map([...this.agents].map(([id, a]) => [id, a.lifecycle]));
  }

  /** The state object of a hosted agent (what its next snapshot will hold). */
  stateOf(agentId: string): unknown {
    return this.agents.get(agentId)?.context.state;
  }

  private definition(name: string): TopicDefinition {
    const d = this.options.definitions.find((t) => t.name === name);
    if (!d) throw new MabeamError('INVALID_TOPIC_DEFINITION', `No topic definition "${name}".`);
    return d;
  }

  /** Registers the agents, restores their state, joins the pool and reports them running. */
  start(): Promise<void> {
    this.starting ??= this.startUp();
    return this.starting;
  }

  private async startUp(): Promise<void> {
    const o = this.options;
    this.producer = createProducer(o.kafka);
    await this.producer.connect();

    this.log.debug('restoring agent state');
    const snapshots = await readSnapshots(o.kafka, o.codec, this.topic('agent-state'), [...this.agents.keys()], this.log);
    for (const [agentId, snapshot] of snapshots) {
      const agent = this.agents.get(agentId)!;
      agent.context.state = JSON.parse(snapshot.state.toString('utf8'));
      agent.snapshotSequence = snapshot.sequence;
      this.log.info({ agent: agentId, sequence: snapshot.sequence, from: snapshot.instanceId }, 'state restored from snapshot');
    }

    this.log.debug('registering agents');
    await this.produce(
      [...this.agents.values()].map(({ definition: d }) => ({
        topic: this.topic('agents'),
        key: d.id,
        type: 'AgentRecord' as const,
        event: {
          envelope: newEnvelope('AgentRecord', this.instanceId, { correlationId: d.id }),
          agentId: d.id,
          role: d.role,
          capabilities: [...d.capabilities],
          resources: { ...d.resources },
          consumerGroup: this.groupId,
          metadata: { ...d.metadata, pool: this.pool },
        } satisfies AgentRecord,
      })),
    );
    if (o.startingReported) for (const agent of this.agents.values()) agent.lifecycle = 'starting';
    else await this.moveAll('starting', `instance ${this.instanceId} starting on ${hostname()}`);

    const deadLetters = new DeadLetterWriter({
      producer: this.producer,
      codec: o.codec,
      topic: this.topic('dead-letters'),
      producerId: this.instanceId,
      consumerGroup: this.groupId,
      logger: this.log,
      ...(o.metrics ? { metrics: o.metrics } : {}),
    });
    this.consumer = new EventConsumer({
      kafka: o.kafka,
      groupId: this.groupId,
      topics: ['bid-requests', 'proposals', 'directives'].map((name) => ({ topic: this.topic(name), definition: this.definition(name) })),
      codec: o.codec,
      deadLetters,
      logger: this.log,
      // Handler errors are caught per agent below; anything escaping is a host fault: retry.
      onHandlerError: 'retry',
      consumerConfig: {
        sessionTimeout: o.sessionTimeoutMs ?? hostDefaults.sessionTimeoutMs,
        heartbeatInterval: Math.max(500, Math.floor((o.sessionTimeoutMs ?? hostDefaults.sessionTimeoutMs) / 3)),
        maxWaitTimeInMs: 200,
      },
      onEvent: (decoded, context) => this.dispatch(decoded, context),
    });
    const consumer = this.consumer.consumer;
    const joined = joinedAndFetched(consumer);
    consumer.on(consumer.events.END_BATCH_PROCESS, ({ payload }) => {
      this.lag.set(`${payload.topic}/${payload.partition}`, Number(payload.offsetLag));
      // The pool's lag per topic: what its members have yet to read.
      const topicLag = [...this.lag].filter(([key]) => key.startsWith(`${payload.topic}/`)).reduce((sum, [, l]) => sum + Math.max(0, l), 0);
      o.metrics?.consumerLag.set({ group: this.groupId, topic: payload.topic }, topicLag);
    });
    this.log.debug({ group: this.groupId }, 'joining the pool');
    await this.consumer.start();
    const assignment = await joined;
    this.log.debug({ assignment }, 'joined; pinning start positions');
    await this.pinUncommitted(assignment);
    await this.moveAll('running', `member of consumer group ${this.groupId}`);
    this.heartbeatTimer = setInterval(() => {
      this.sendHeartbeats().catch((error: unknown) => this.log.warn({ error: describeError(error) }, 'heartbeat failed'));
    }, o.heartbeatIntervalMs ?? hostDefaults.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    await this.sendHeartbeats();
  }

  /**
   * A partition the pool has never committed would be read from wherever
   * "latest" is when it is next fetched — after a rebalance or a restart that
   * can skip requests. So, once, every such partition gets its current end
   * committed (kafkajs commits a seek), and start() returns only when the
   * commits are visible: from then on the pool always resumes from its own
   * committed positions, and nothing produced after start() is missed.
   */
  private async pinUncommitted(assignment: Record<string, number[]>): Promise<void> {
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      const topics = Object.keys(assignment);
      const committed = await admin.fetchOffsets({ groupId: this.groupId, topics });
      const pinned: Array<{ topic: string; partition: number; offset: string }> = [];
      for (const { topic, partitions } of committed) {
        const open = partitions.filter((p) => Number(p.offset) < 0 && assignment[topic]?.includes(p.partition));
        if (open.length === 0) continue;
        const ends = new Map((await admin.fetchTopicOffsets(topic)).map((e) => [e.partition, e.high]));
        for (const { partition } of open) {
          const offset = ends.get(partition) ?? '0';
          this.consumer!.consumer.seek({ topic, partition, offset });
          pinned.push({ topic, partition, offset });
        }
      }
      if (pinned.length === 0) return;
      const deadline = Date.now() + 30_000;
      for (;;) {
        const now = await admin.fetchOffsets({ groupId: this.groupId, topics: [...new Set(pinned.map((p) => p.topic))] });
        const at = new Map(now.flatMap((t) => t.partitions.map((p) => [`${t.topic}/${p.partition}`, Number(p.offset)])));
        if (pinned.every((p) => (at.get(`${p.topic}/${p.partition}`) ?? -1) >= 0)) return;
        if (Date.now() > deadline) throw new MabeamError('HANDLER_FAILED', `Committing the start positions of ${this.groupId} did not complete within 30 s.`);
        await new Promise((r) => setTimeout(r, 20));
      }
    } finally {
      await admin.disconnect();
    }
  }

  /** Stops consuming (everything handled is committed), saves agent state, reports stopped. */
  stop(reason = 'stop requested'): Promise<void> {
    this.stopping ??= this.shutDown('stopping', reason);
    return this.stopping;
  }

  /**
   * Hands the agents over to another instance: stops consuming (everything
   * handled is committed), then writes the state snapshots the next instance
   * starts from. Nothing handled here is handled again, nothing is skipped.
   */
  migrate(reason = 'migration requested'): Promise<void> {
    this.stopping ??= this.shutDown('migrating', reason);
    return this.stopping;
  }

  private async shutDown(via: 'stopping' | 'migrating', reason: string): Promise<void> {
    // A stop that arrives while the host starts (a signal during start-up) lets the start finish
    // or fail first — each of its steps is bounded — and then stops whatever it got to.
    await this.starting?.catch(() => undefined);
    clearInterval(this.heartbeatTimer);
    // Only agents that were announced have a lifecycle to end and a restored state to save;
    // saving the state of one that never got that far would overwrite its real snapshot.
    const announced = [...this.agents.values()].filter((agent) => agent.lifecycle !== null);
    await this.moveAll(via, reason, announced);
    await this.consumer?.stop();
    await this.produce(
      announced.map((agent) => ({
        topic: this.topic('agent-state'),
        key: agent.definition.id,
        type: 'AgentStateSnapshot' as const,
        event: {
          envelope: newEnvelope('AgentStateSnapshot', this.instanceId, { correlationId: agent.definition.id }),
          agentId: agent.definition.id,
          instanceId: this.instanceId,
          sequence: ++agent.snapshotSequence,
          state: Buffer.from(JSON.stringify(agent.context.state ?? {})),
          contentType: 'application/json',
        } satisfies AgentStateSnapshot,
      })),
    );
    await this.moveAll('stopped', via === 'migrating' ? `handed over: ${reason}` : reason, announced);
    await this.producer?.disconnect();
    this.emit('stopped', reason);
  }

  private async moveAll(to: LifecycleState, reason: string, agents: Iterable<HostedAgent> = this.agents.values()): Promise<void> {
    const events: Outgoing[] = [];
    for (const agent of agents) {
      const from = agent.lifecycle;
      agent.lifecycle = transition(from, to);
      events.push({
        topic: this.topic('lifecycle'),
        key: agent.definition.id,
        type: 'LifecycleChanged',
        event: {
          envelope: newEnvelope('LifecycleChanged', this.instanceId, { correlationId: agent.definition.id }),
          agentId: agent.definition.id,
          instanceId: this.instanceId,
          from,
          to,
          reason,
          host: hostname(),
        } satisfies LifecycleChanged,
      });
    }
    await this.produce(events);
  }

  private async sendHeartbeats(): Promise<void> {
    const memory = process.memoryUsage();
    const lag = [...this.lag.values()].reduce((sum, l) => sum + Math.max(0, l), 0);
    const intervalMs = this.options.heartbeatIntervalMs ?? hostDefaults.heartbeatIntervalMs;
    await this.produce(
      [...this.agents.values()].map((agent) => ({
        topic: this.topic('heartbeats'),
        key: agent.definition.id,
        type: 'Heartbeat' as const,
        event: {
          envelope: newEnvelope('Heartbeat', this.instanceId, { correlationId: agent.definition.id }),
          agentId: agent.definition.id,
          instanceId: this.instanceId,
          host: hostname(),
          pid: process.pid,
          sequence: ++agent.heartbeatSequence,
          intervalMs,
          memoryRssBytes: memory.rss,
          heapUsedBytes: memory.heapUsed,
          consumerLag: lag,
        } satisfies Heartbeat,
      })),
    );
  }

  private async dispatch(decoded: DecodedEvent, context: EventContext): Promise<void> {
    const out: Outgoing[] = [];
    if (decoded.type === 'BidRequest') {
      const request = decoded.event as unknown as BidRequest;
      for (const agent of this.agents.values()) {
        if (!handling(agent) || !eligibleForBidRequest(agent.definition, request)) continue;
        await this.answer(agent, 'onBidRequest', request.roundId, request.envelope.eventId, out, async () => {
          const answer = await agent.definition.onBidRequest!(request, agent.context);
          if (!answer) return;
          const bid: Bid = {
            envelope: newEnvelope('Bid', agent.definition.id, {
              correlationId: request.roundId,
              causationId: request.envelope.eventId,
              eventId: deterministicEventId('bid', agent.definition.id, request.envelope.eventId),
            }),
            roundId: request.roundId,
            agentId: agent.definition.id,
            amount: answer.amount,
            bundle: answer.bundle ?? [],
            attributes: answer.attributes === undefined ? null : JSON.stringify(answer.attributes),
          };
          this.options.codec.check('Bid', bid); // a nonsense answer is the agent's failure
          out.push({ topic: this.topic('bids'), key: request.roundId, type: 'Bid', event: bid });
        });
      }
    } else if (decoded.type === 'Proposal') {
      const proposal = decoded.event as unknown as Proposal;
      for (const agent of this.agents.values()) {
        if (!handling(agent) || !eligibleForProposal(agent.definition, proposal)) continue;
        await this.answer(agent, 'onProposal', proposal.roundId, proposal.envelope.eventId, out, async () => {
          const answer = await agent.definition.onProposal!(proposal, agent.context);
          if (!answer) return;
          const vote: Vote = {
            envelope: newEnvelope('Vote', agent.definition.id, {
              correlationId: proposal.roundId,
              causationId: proposal.envelope.eventId,
              eventId: deterministicEventId('vote', agent.definition.id, proposal.envelope.eventId),
            }),
            roundId: proposal.roundId,
            agentId: agent.definition.id,
            choice: answer.choice,
            weight: answer.weight ?? null,
            reason: answer.reason ?? null,
          };
          this.options.codec.check('Vote', vote);
          out.push({ topic: this.topic('votes'), key: proposal.roundId, type: 'Vote', event: vote });
        });
      }
    } else if (decoded.type === 'Directive') {
      const directive = decoded.event as unknown as Directive;
      const agent = this.agents.get(directive.agentId);
      if (agent && handling(agent)) {
        if ((directive.action === 'migrate' || directive.action === 'stop') && agent.lifecycle === 'running') {
          // Built in: the host hands over or stops (all its agents). Not awaited: stopping the
          // consumer waits for this very message to finish.
          this.log.info({ agent: directive.agentId, action: directive.action, directive: directive.envelope.eventId }, 'host directive');
          const reason = `${directive.action} directive ${directive.envelope.eventId}`;
          setImmediate(() => void (directive.action === 'migrate' ? this.migrate(reason) : this.stop(reason)).catch((error: unknown) => this.emit('error', error)));
        } else if (addressedTo(agent.definition, directive)) {
          await this.answer(agent, 'onDirective', directive.envelope.eventId, directive.envelope.eventId, out, async () => {
            await agent.definition.onDirective!(directive, agent.context);
          });
        }
      }
    }
    await this.produce(out, { [instanceHeader]: this.instanceId });
    this.log.debug({ type: decoded.type, topic: context.topic, partition: context.partition, offset: context.offset, key: context.key, answers: out.length }, 'dispatched');
  }

  /** Runs one handler; a throw (or an invalid answer) becomes a HandlerFailed event. */
  private async answer(agent: HostedAgent, handler: HandlerFailed['handler'], subjectId: string, causeEventId: string, out: Outgoing[], run: () => Promise<void>): Promise<void> {
    try {
      await run();
    } catch (error) {
      agent.context.logger.warn({ handler, subjectId, error: describeError(error) }, 'handler failed');
      const failed: HandlerFailed = {
        envelope: newEnvelope('HandlerFailed', this.instanceId, {
          correlationId: agent.definition.id,
          causationId: causeEventId,
          eventId: deterministicEventId('handler-failed', agent.definition.id, causeEventId),
        }),
        agentId: agent.definition.id,
        instanceId: this.instanceId,
        handler,
        subjectId,
        causeEventId,
        error: describeError(error),
      };
      out.push({ topic: this.topic('lifecycle'), key: agent.definition.id, type: 'HandlerFailed', event: failed });
    }
  }

  /** A measurement an agent reports (see AgentContext.report). */
  private sample(agentId: string, name: string, value: number, labels: Record<string, string>): Outgoing {
    const sample: MetricSample = { envelope: newEnvelope('MetricSample', agentId, { correlationId: agentId }), name, value, labels, source: agentId };
    this.options.codec.check('MetricSample', sample); // a nonsense report is the agent's failure, said where it is made
    return { topic: this.topic('metrics'), key: agentId, type: 'MetricSample', event: sample };
  }

  private async produce(events: Outgoing[], headers: IHeaders = {}): Promise<void> {
    // What agents reported meanwhile goes out with these events.
    if (this.reports.length > 0) events = [...events, ...this.reports.splice(0)];
    if (events.length === 0) return;
    const byTopic = new Map<string, Message[]>();
    for (const e of events) {
      const value = await this.options.codec.encode(e.type, e.event);
      const messages = byTopic.get(e.topic) ?? [];
      messages.push({ key: e.key, value, headers: { ...headers, [eventHeaders.type]: e.type, [eventHeaders.id]: e.event.envelope.eventId } });
      byTopic.set(e.topic, messages);
    }
    await this.producer!.sendBatch({ topicMessages: [...byTopic].map(([topic, messages]) => ({ topic, messages })) });
  }
}
