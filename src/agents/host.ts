import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { hostname } from 'node:os';
import type { Producer } from 'kafkajs';
import type { DecodedEvent } from '../codec/codec.ts';
import type { EventContext } from '../consumer/eventConsumer.ts';
import { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { MabeamError, describeError } from '../errors.ts';
import type { LifecycleState } from '../events/types.ts';
import { createProducer } from '../kafka/client.ts';
import type { Logger } from '../log/logger.ts';
import { StoppedLatch, type StopsForGood } from '../runtime/stopped.ts';
import { signingKeys } from '../security/agentKeys.ts';
import { signingEnabled } from '../security/signing.ts';
import { contextOf, traced } from '../tracing/trace.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';
import { dispatch, type HostAction } from './dispatch.ts';
import { Evaluations } from './evaluations.ts';
import { transition } from './lifecycle.ts';
import { concurrencyOf, hostDefaults, hostPool, type AgentHostOptions } from './options.ts';
import { Outbox, type Outgoing } from './outbox.ts';
import { PoolMember } from './pool.ts';
import { restoreStates, snapshotOf } from './stateStore.ts';
import { Steps } from './steps.ts';
import type { HostedAgent } from './types.ts';
import { chooseSessionTimeout } from '../kafka/sessionTimeout.ts';

export { hostDefaults, type AgentHostOptions } from './options.ts';
export { instanceHeader } from './outbox.ts';

/**
 * Runs agents as members of one Kafka consumer group (the pool). It reads
 * bid requests, proposals and directives (and, for agents that evaluate
 * trials or run plans' steps, the studies' and plans' logs: evaluations.ts,
 * steps.ts), hands each to every local agent that is eligible, and writes
 * their bids and votes keyed by round id. A
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
 * through a stop or migrate directive. If its consumer stops for good (or a
 * stop it started itself fails), its agents are reported failed and
 * `stoppedForGood` resolves with the cause: the process should then exit
 * non-zero so that whatever runs it starts it again.
 *
 * This file only orchestrates; the parts are: options.ts (checks and
 * defaults), stateStore.ts (snapshots), pool.ts (group membership, start
 * positions, lag), dispatch.ts (event → handler calls → answers, sandboxed)
 * and outbox.ts (everything the host writes).
 */
export class AgentHost extends EventEmitter implements StopsForGood {
  readonly instanceId: string;
  readonly groupId: string;
  readonly pool: string;
  private readonly options: AgentHostOptions;
  private readonly concurrency: number;
  private readonly agents = new Map<string, HostedAgent>();
  private readonly log: Logger;
  private readonly topic: (name: string) => string;
  private readonly latch = new StoppedLatch();
  private readonly producer: Producer;
  private readonly outbox: Outbox;
  private readonly evaluations: Evaluations;
  private readonly steps: Steps;
  private member: PoolMember | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private stopping: Promise<void> | undefined;
  private starting: Promise<void> | undefined;
  private failing: Promise<void> | undefined;

  constructor(options: AgentHostOptions) {
    super();
    this.pool = hostPool(options);
    this.concurrency = concurrencyOf(options);
    this.options = options;
    this.groupId = `${options.prefix}.agents.${this.pool}`;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = options.logger.child({ ns: 'agent-host', pool: this.pool, instance: this.instanceId });
    this.topic = (name) => topicName(options.prefix, name);
    // Not connected until start(); what agents report before then waits in the outbox.
    this.producer = createProducer(options.kafka);
    this.outbox = new Outbox({ producer: this.producer, codec: options.codec, instanceId: this.instanceId, topic: this.topic, logger: this.log });
    this.evaluations = new Evaluations({ outbox: this.outbox, codec: options.codec, instanceId: this.instanceId, topic: this.topic, logger: this.log, group: this.groupId });
    this.steps = new Steps({ outbox: this.outbox, instanceId: this.instanceId, topic: this.topic, logger: this.log, group: this.groupId });
    for (const definition of options.agents) {
      this.agents.set(definition.id, {
        definition,
        context: {
          agentId: definition.id,
          instanceId: this.instanceId,
          logger: this.log.child({ agent: definition.id }),
          state: definition.initialState?.() ?? {},
          report: (name, value, labels = {}) => this.outbox.report(definition.id, name, value, labels),
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

  /** Resolves with the cause once the host has stopped for good (see the class doc). */
  get stoppedForGood(): Promise<Error> {
    return this.latch.stoppedForGood;
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
    const outbox = this.outbox;
    // An agent whose key expired does not start (KEY_EXPIRED): nothing is written for it.
    if (signingEnabled(o.sign)) outbox.useKeys(signingKeys(this.agents.keys(), o.keysDir));
    await this.producer.connect();

    this.log.debug('restoring agent state');
    await restoreStates(o.kafka, o.codec, this.topic('agent-state'), this.agents, this.log);

    this.log.debug('registering agents');
    await outbox.send([...this.agents.values()].flatMap(({ definition }) => outbox.registrations(definition, this.groupId, this.pool)));
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
    const session = await chooseSessionTimeout(o.kafka, o.sessionTimeoutMs);
    if (session.source !== 'requested') this.log.info(session, 'session timeout');
    const member = new PoolMember({
      kafka: o.kafka,
      codec: o.codec,
      logger: this.log,
      groupId: this.groupId,
      // Evaluators also read the studies' logs (their assignments, prunes and retries), agents that
      // run steps the plans' logs (their assignments, retries and the plans' ends).
      topics: [
        'bid-requests',
        'proposals',
        'directives',
        ...(Evaluations.wanted(this.agents.values()) ? ['studies'] : []),
        ...(Steps.wanted(this.agents.values()) ? ['plans'] : []),
      ].map((name) => ({ topic: this.topic(name), definition: this.definition(name) })),
      deadLetters,
      sessionTimeoutMs: session.sessionTimeoutMs,
      concurrentPartitions: this.concurrency,
      ...(o.metrics ? { metrics: o.metrics } : {}),
      onEvent: (decoded, context) => this.handle(decoded, context),
    });
    this.member = member;
    void member.stoppedForGood.then((cause) => this.fail(new MabeamError('HANDLER_FAILED', `the consumer of group ${this.groupId} crashed and kafkajs will not restart it: ${cause.message}`, { cause })));
    await member.join();
    await this.moveAll('running', `member of consumer group ${this.groupId}`);
    this.heartbeatTimer = setInterval(() => {
      this.sendHeartbeats().catch((error: unknown) => this.log.warn({ error: describeError(error) }, 'heartbeat failed'));
    }, o.heartbeatIntervalMs ?? hostDefaults.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
    await this.sendHeartbeats();
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
    // A host that stopped for good has reported its agents failed and let go of Kafka already.
    if (this.failing) return this.failing;
    clearInterval(this.heartbeatTimer);
    // Only agents that were announced have a lifecycle to end and a restored state to save;
    // saving the state of one that never got that far would overwrite its real snapshot.
    const announced = [...this.agents.values()].filter((agent) => agent.lifecycle !== null);
    await this.moveAll(via, reason, announced);
    await this.member?.stop();
    await this.evaluations.stop(reason);
    await this.steps.stop(reason);
    const saved: HostedAgent[] = [];
    const snapshots: Outgoing[] = [];
    const unsaved: Array<{ agent: HostedAgent; error: string }> = [];
    for (const agent of announced) {
      const snapshot = snapshotOf(agent, this.instanceId, this.topic('agent-state'));
      if ('error' in snapshot) unsaved.push({ agent, error: snapshot.error });
      else {
        saved.push(agent);
        snapshots.push(snapshot);
      }
    }
    await this.outbox.send(snapshots);
    await this.moveAll('stopped', via === 'migrating' ? `handed over: ${reason}` : reason, saved);
    // An agent whose state could not be saved did not stop cleanly: its last snapshot is older.
    for (const { agent, error } of unsaved) {
      this.log.error({ agent: agent.definition.id, error }, 'agent state not saved');
      await this.moveAll('failed', `${reason}; ${error}`, [agent]);
    }
    await this.producer.disconnect();
    this.emit('stopped', reason);
  }

  /**
   * The host cannot go on (its consumer stopped for good, or a stop it began
   * itself failed): heartbeats end, every agent still active is reported
   * failed with the cause, and stoppedForGood resolves. No snapshot is
   * written: what was handled but not committed is delivered again, to the
   * state of the last snapshot, as after a crash.
   */
  private fail(cause: Error): Promise<void> {
    this.failing ??= (async () => {
      this.log.error({ error: cause.message }, 'agent host stopped for good');
      clearInterval(this.heartbeatTimer);
      const active = [...this.agents.values()].filter((a) => a.lifecycle !== null && a.lifecycle !== 'stopped' && a.lifecycle !== 'failed');
      try {
        await this.moveAll('failed', cause.message, active);
      } catch (error) {
        this.log.error({ error: describeError(error) }, 'could not report the agents failed');
      }
      await this.member?.stop().catch(() => undefined);
      await this.producer.disconnect().catch(() => undefined);
      this.latch.stop(cause);
    })();
    return this.failing;
  }

  private async moveAll(to: LifecycleState, reason: string, agents: Iterable<HostedAgent> = this.agents.values()): Promise<void> {
    const events: Outgoing[] = [];
    for (const agent of agents) {
      const from = agent.lifecycle;
      agent.lifecycle = transition(from, to);
      events.push(this.outbox.lifecycle(agent.definition.id, from, to, reason));
    }
    await this.outbox.send(events);
  }

  private async sendHeartbeats(): Promise<void> {
    const intervalMs = this.options.heartbeatIntervalMs ?? hostDefaults.heartbeatIntervalMs;
    const lag = this.member?.lag ?? 0;
    await this.outbox.send([...this.agents.values()].map((agent) => this.outbox.heartbeat(agent.definition.id, ++agent.heartbeatSequence, intervalMs, lag)));
  }

  private async handle(decoded: DecodedEvent, context: EventContext): Promise<void> {
    // An assignment starts its evaluation or step in a span of the assignment's trace; what it reports carries it on.
    if (context.topic === this.topic('studies')) {
      this.evaluations.handle(decoded, this.agents, contextOf(context.headers));
      return;
    }
    if (context.topic === this.topic('plans')) {
      this.steps.handle(decoded, this.agents, contextOf(context.headers));
      return;
    }
    // The handlers run in a span of the record's trace, and what they answer carries it on.
    const out = await traced('process', context.topic, contextOf(context.headers), { roundId: (decoded.event as { roundId?: string }).roundId, key: context.key, group: this.groupId }, async (step) => {
      const { out, hostAction } = await dispatch(decoded, this.agents, { codec: this.options.codec, instanceId: this.instanceId, topic: this.topic, stepsRunning: (agentId) => this.steps.load(agentId), bidOnStep: (agentId, item, deadline) => this.steps.bidOn(agentId, item, deadline) });
      if (hostAction) this.carryOut(hostAction);
      await this.outbox.send(out, step.headers);
      return out;
    });
    this.log.debug({ type: decoded.type, topic: context.topic, partition: context.partition, offset: context.offset, key: context.key, answers: out.length }, 'dispatched');
  }

  /** A stop or migrate directive: the host stops or hands over all its agents. */
  private carryOut({ action, reason, directive }: HostAction): void {
    this.log.info({ agent: directive.agentId, action, directive: directive.envelope.eventId }, 'host directive');
    // Not awaited: stopping the consumer waits for this very message to finish.
    setImmediate(() => {
      (action === 'migrate' ? this.migrate(reason) : this.stop(reason)).catch((error: unknown) =>
        this.fail(new MabeamError('HANDLER_FAILED', `Carrying out the ${action} directive ${directive.envelope.eventId} failed: ${describeError(error)}`, { cause: error })),
      );
    });
  }
}
