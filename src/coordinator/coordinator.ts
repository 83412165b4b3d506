import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Consumer, EachBatchPayload, Kafka, Message, Producer, RecordMetadata, Transaction } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { MabeamError, describeError, isMabeamError } from '../errors.ts';
import { deterministicEventId, newEnvelope } from '../events/envelope.ts';
import type { RoundClosed as RoundClosedEvent, RoundState } from '../events/types.ts';
import { createPartitionOwnerConsumer, createTransactionalProducer, joinedAndFetched } from '../kafka/client.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import { sharedProtocols } from '../protocols/builtins.ts';
import type { ProtocolRegistry } from '../protocols/registry.ts';
import { applyRoundEvent, dropRound, emptyRounds, markClosed, restoreRound, snapshotRound, type Rounds } from '../protocols/roundsInternals.ts';
import type { RoundDecision } from '../protocols/types.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';
import { toOutputs, toRoundEvent } from './events.ts';

export interface CoordinatorOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  prefix: string;
  definitions: TopicDefinition[];
  protocols?: ProtocolRegistry;
  instanceId?: string;
  sessionTimeoutMs?: number;
  /**
   * How long a transaction may stay open. When a coordinator dies mid-batch
   * its open transaction blocks every read_committed reader of the partitions
   * it wrote until the broker aborts it after this long: keep it short.
   */
  transactionTimeoutMs?: number;
  metrics?: Metrics;
  /**
   * How long a batch that decides nothing (answers counted, a round opened)
   * may wait for the transaction that commits it, in ms. Batches that decide
   * something are written at once. Default 200.
   */
  idleFlushMs?: number;
}

/** The topics a coordinator joins, all keyed by round id and co-partitioned. */
const inputs = ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes', 'round-state'] as const;

/**
 * Runs coordination rounds over Kafka. Coordinators form one consumer group
 * (`<prefix>.coordinators`); the round topics are co-partitioned by round id,
 * so one instance owns a round. Each batch is applied to the rounds through
 * the protocols (`applyRoundEvent`), and everything it decides — rejections,
 * round closings, outcomes, the directives to winners, the next stage of an
 * iterative round — is written together with the consumed offsets in one
 * Kafka transaction: a crash never yields a second winner or a lost
 * directive. Transactions are grouped: the batches of one fetch share one,
 * and batches that decide nothing wait (up to idleFlushMs) for the next.
 * Applying an event twice changes nothing, so what is read again after a
 * rebalance or a failed transaction is harmless.
 *
 * Deadlines: a timer per open round. When it fires the coordinator writes
 * RoundClosed (cause "deadline", with the exact answers counted) and the
 * outcome in one transaction; replaying the log replays that decision.
 *
 * Failover: the state of every round a batch touched goes to the compacted
 * round-state changelog in the same transaction. The coordinator reads that
 * topic too and never commits its position there, so whoever owns a
 * partition next re-reads its rounds and goes on from exactly the state
 * that matches the committed offsets.
 */
export class Coordinator {
  readonly groupId: string;
  readonly instanceId: string;
  private readonly options: CoordinatorOptions;
  private readonly log: Logger;
  private rounds: Rounds = emptyRounds();
  private readonly timers = new Map<string, { timer: NodeJS.Timeout; stage: number }>();
  /** The partition each round is on (the same number on every round topic). */
  private readonly partitionOf = new Map<string, number>();
  private uncommitted = new Uncommitted();
  private flushTimer: NodeJS.Timeout | undefined;
  private flushDelay = 0;
  /** Set when a transaction failed: nothing more is applied until the coordinator has rejoined. */
  private broken: Error | undefined;
  private stopping = false;
  private producer: Producer | undefined;
  private consumer: Consumer | undefined;
  private deadLettersTopic: string;
  /** Transactions run one at a time: batches and deadline closings share the producer. */
  private exclusive: Promise<unknown> = Promise.resolve();
  private readonly definitions: Map<string, TopicDefinition>;

  constructor(options: CoordinatorOptions) {
    this.options = options;
    this.groupId = `${options.prefix}.coordinators`;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = options.logger.child({ ns: 'coordinator', instance: this.instanceId });
    this.deadLettersTopic = topicName(options.prefix, 'dead-letters');
    this.definitions = new Map(inputs.map((name) => [topicName(options.prefix, name), options.definitions.find((d) => d.name === name)!]));
  }

  private get protocols(): ProtocolRegistry {
    return this.options.protocols ?? sharedProtocols();
  }

  async start(): Promise<void> {
    const o = this.options;
    this.producer ??= createTransactionalProducer(o.kafka, `${this.groupId}.${this.instanceId}`, o.transactionTimeoutMs);
    await this.producer.connect();
    const consumer = createPartitionOwnerConsumer(o.kafka, this.groupId, o.sessionTimeoutMs);
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => this.assigned(payload.memberAssignment));
    const joined = joinedAndFetched(consumer);
    await consumer.connect();
    await consumer.subscribe({ topics: [...this.definitions.keys()], fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (payload) => this.onBatch(payload) });
    await joined;
  }

  async stop(): Promise<void> {
    this.stopping = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    clearTimeout(this.flushTimer);
    await this.consumer?.disconnect();
    // What was read but not yet committed goes out now (or is read again by the next owner).
    await this.runExclusive(() => this.flush()).catch(() => undefined);
    await this.exclusive.catch(() => undefined);
    await this.producer?.disconnect();
  }

  private runExclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.exclusive.then(work, work);
    this.exclusive = next.catch(() => undefined);
    return next;
  }

  /**
   * A new assignment: rounds of partitions this instance no longer owns are
   * forgotten (with their deadlines and anything not yet committed), so only
   * their new owner decides them. It re-reads them from the committed offsets
   * and the round-state changelog.
   */
  private assigned(assignment: Record<string, number[]>): void {
    const owned = new Set(Object.values(assignment).flat());
    for (const [roundId, partition] of this.partitionOf) {
      if (owned.has(partition)) continue;
      dropRound(this.rounds, roundId);
      this.clearDeadline(roundId);
      this.partitionOf.delete(roundId);
      this.uncommitted.dirty.delete(roundId);
    }
    for (const [key, position] of this.uncommitted.offsets) if (!owned.has(position.partition)) this.uncommitted.offsets.delete(key);
  }

  /**
   * Applies a batch to the rounds. What it decides is buffered and written
   * in one transaction together with the offsets read so far and the state
   * of every round changed since the last one — in a moment (every batch of
   * one fetch joins the same transaction), or, when a batch decides
   * nothing, within idleFlushMs. Until then nothing of it is committed: a
   * crash makes the next owner read it again, from offsets and round state
   * that match.
   */
  private async onBatch({ batch, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0) return;
    const definition = this.definitions.get(batch.topic)!;
    this.log.debug({ topic: batch.topic, partition: batch.partition, messages: batch.messages.length, first: batch.firstOffset() }, 'batch');
    const stateTopic = batch.topic === topicName(this.options.prefix, 'round-state');
    const last = batch.messages[batch.messages.length - 1]!.offset;
    await this.runExclusive(async () => {
      if (this.broken) throw this.broken;
      const u = this.uncommitted;
      const lookup = (name: string) => this.protocols.get(name);
      const deadLetters = new DeadLetterWriter({ producer: u, codec: this.options.codec, topic: this.deadLettersTopic, producerId: this.instanceId, consumerGroup: this.groupId, logger: this.log, ...(this.options.metrics ? { metrics: this.options.metrics } : {}) });
      for (const message of batch.messages) {
        let decisions: RoundDecision[] = [];
        let causation = '';
        try {
          if (stateTopic) {
            const state = (await this.options.codec.decode<RoundState>(message.value, { allowedTypes: definition.eventTypes })).event;
            this.partitionOf.set(state.roundId, batch.partition);
            decisions = this.restore(state);
            await this.stage(decisions, state.envelope.eventId);
            continue;
          }
          const decoded = await this.options.codec.decode(message.value, { allowedTypes: definition.eventTypes });
          const key = message.key?.toString() ?? null;
          const roundId = (decoded.event as { roundId?: unknown }).roundId;
          if (typeof roundId === 'string' && key !== roundId) {
            throw new MabeamError('VALIDATION_FAILED', `Invalid ${decoded.type}: the message key is ${key === null ? 'missing' : `"${key}"`} but ${definition.name} is keyed by roundId ("${roundId}")`);
          }
          if (decoded.type === 'RoundClosed') {
            // Decided already (this instance or the one before): stop taking answers, decide nothing.
            // A stage that closed with another following changes nothing here: the next stage's request does.
            const closing = decoded.event as unknown as RoundClosedEvent;
            if (closing.final !== false && !this.rounds.byId.get(closing.roundId)?.closed) {
              this.partitionOf.set(closing.roundId, batch.partition);
              this.uncommitted.dirty.add(closing.roundId);
              markClosed(this.rounds, closing.roundId);
              this.clearDeadline(closing.roundId);
            }
          } else {
            const event = toRoundEvent(decoded);
            if (event && event.type !== 'tick') {
              causation = event.eventId;
              this.partitionOf.set(event.roundId, batch.partition);
              this.uncommitted.dirty.add(event.roundId);
              decisions = applyRoundEvent(this.rounds, event, lookup);
              if (event.type === 'open') this.scheduleDeadline(event.roundId);
            }
          }
          // Log time moves on: answers that waited too long for their round are refused.
          const logTime = (decoded.event as { envelope?: { eventTime?: number } }).envelope?.eventTime;
          if (typeof logTime === 'number' && this.rounds.pending.size > 0) decisions.push(...applyRoundEvent(this.rounds, { type: 'tick', now: logTime }, lookup));
        } catch (error) {
          if (isMabeamError(error) && error.retriable) throw error;
          await deadLetters.write({ topic: batch.topic, partition: batch.partition, offset: message.offset, timestamp: message.timestamp, key: message.key, value: message.value, ...(message.headers ? { headers: message.headers } : {}) }, error);
        }
        await this.stage(decisions, causation);
      }
      // The changelog's position is never committed: every new owner re-reads it.
      if (!stateTopic) {
        u.offsets.set(`${batch.topic}:${batch.partition}`, { topic: batch.topic, partition: batch.partition, next: String(Number(last) + 1) });
      }
      resolveOffset(last);
      this.scheduleFlush(u.outputs.length > 0 ? 0 : (this.options.idleFlushMs ?? 200));
    });
    await heartbeat();
  }

  /** Buffers the events the decisions are written as, for the next transaction. */
  private async stage(decisions: RoundDecision[], causation: string): Promise<void> {
    for (const decision of decisions) {
      this.uncommitted.decisions.push(decision);
      this.uncommitted.dirty.add(decision.roundId);
      if (decision.type === 'closed') this.clearDeadline(decision.roundId);
      if (decision.type === 'stage') this.scheduleDeadline(decision.roundId);
      for (const output of toOutputs(decision, this.instanceId, causation)) {
        const value = await this.options.codec.encode(output.type, output.event);
        this.uncommitted.add(topicName(this.options.prefix, output.topic), { key: output.key, value, headers: { [eventHeaders.type]: output.type, [eventHeaders.id]: output.event.envelope.eventId } });
      }
    }
  }

  private scheduleFlush(delayMs: number): void {
    if (this.flushTimer && delayMs >= this.flushDelay) return;
    clearTimeout(this.flushTimer);
    this.flushDelay = delayMs;
    // setImmediate-like for 0: the other batches of the same fetch (already in memory) join this transaction.
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      this.runExclusive(() => this.flush()).catch((error: unknown) => this.log.error({ error: describeError(error) }, 'writing decisions failed; the coordinator restarts from what was committed'));
    }, delayMs);
  }

  /**
   * Writes everything not yet committed in one transaction: the decisions'
   * events, the state of every round they changed (the changelog), and the
   * offsets read. If the transaction fails, nothing of it happened: the
   * coordinator rejoins and reads on from what was committed.
   */
  private async flush(): Promise<void> {
    const u = this.uncommitted;
    if (this.broken || (u.outputs.length === 0 && u.dirty.size === 0 && u.offsets.size === 0)) return;
    this.uncommitted = new Uncommitted();
    const started = Date.now();
    let txn: Transaction | undefined;
    try {
      for (const roundId of u.dirty) await this.writeState(u, roundId);
      txn = await this.producer!.transaction();
      const opened = txn;
      await opened.sendBatch({ topicMessages: u.topicMessages() });
      if (u.offsets.size > 0) {
        const offsets = [...u.offsets.values()];
        const topics = [...new Set(offsets.map((o) => o.topic))].map((topic) => ({ topic, partitions: offsets.filter((o) => o.topic === topic).map((o) => ({ partition: o.partition, offset: o.next })) }));
        await retryConcurrentTransactions(() => opened.sendOffsets({ consumerGroupId: this.groupId, topics }));
      }
      await opened.commit();
      this.observe(u.decisions);
      this.log.debug({ messages: u.outputs.length, rounds: u.dirty.size, partitions: u.offsets.size, ms: Date.now() - started }, 'committed');
    } catch (error) {
      await txn?.abort().catch(() => undefined);
      // Later work was applied on top of this; none of it is committed. Start over from the log.
      this.broken = error instanceof Error ? error : new Error(String(error));
      void this.restart();
      throw error;
    }
  }

  /** After a failed transaction: forget everything uncommitted, rejoin, and read on from the committed offsets and the changelog. */
  private async restart(): Promise<void> {
    this.log.warn({ error: describeError(this.broken) }, 'transaction failed; rejoining from the committed offsets');
    await this.consumer?.disconnect().catch(() => undefined);
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    clearTimeout(this.flushTimer);
    this.flushTimer = undefined;
    this.rounds = emptyRounds();
    this.partitionOf.clear();
    this.uncommitted = new Uncommitted();
    this.broken = undefined;
    if (this.stopping) return;
    await this.start().catch((error: unknown) => this.log.error({ error: describeError(error) }, 'the coordinator could not rejoin'));
  }

  /** A round from the changelog (another instance's, or this one's own writes read back). */
  private restore(state: RoundState): RoundDecision[] {
    const decisions = restoreRound(
      this.rounds,
      {
        roundId: state.roundId,
        open: state.request ? JSON.parse(state.request) : null,
        protocol: state.protocol,
        counted: JSON.parse(state.counted),
        pending: JSON.parse(state.pending),
        closed: state.closed,
      },
      (name) => this.protocols.get(name),
    );
    const round = this.rounds.byId.get(state.roundId);
    if (round && !round.closed) this.scheduleDeadline(state.roundId);
    this.log.debug({ roundId: state.roundId, open: Boolean(round), counted: round?.counted.length, decisions: decisions.length }, 'round state read');
    return decisions;
  }

  private async writeState(into: Uncommitted, roundId: string): Promise<void> {
    const snapshot = snapshotRound(this.rounds, roundId);
    const event: RoundState = {
      envelope: newEnvelope('RoundState', this.instanceId, { correlationId: roundId }),
      roundId,
      request: snapshot.open ? JSON.stringify(snapshot.open) : null,
      protocol: snapshot.protocol,
      counted: JSON.stringify(snapshot.counted),
      pending: JSON.stringify(snapshot.pending),
      closed: snapshot.closed,
    };
    const value = await this.options.codec.encode('RoundState', event);
    into.add(topicName(this.options.prefix, 'round-state'), { key: roundId, value, headers: { [eventHeaders.type]: 'RoundState' } });
  }

  /** A timer for the deadline of the round's current stage (replacing one set for an earlier stage). */
  private scheduleDeadline(roundId: string, retryAt?: number): void {
    const round = this.rounds.byId.get(roundId);
    if (!round || round.closed) return;
    const { stage, deadline } = round.open;
    const current = this.timers.get(roundId);
    if (current && current.stage === stage && retryAt === undefined) return;
    if (current) clearTimeout(current.timer);
    const timer = setTimeout(() => {
      this.timers.delete(roundId);
      this.closeAtDeadline(roundId, stage).catch((error: unknown) => this.log.error({ roundId, error: describeError(error) }, 'closing a round at its deadline failed'));
    }, Math.max(0, (retryAt ?? deadline) - Date.now()));
    timer.unref();
    this.timers.set(roundId, { timer, stage });
  }

  private clearDeadline(roundId: string): void {
    clearTimeout(this.timers.get(roundId)?.timer);
    this.timers.delete(roundId);
  }

  /** The clock says the deadline passed: that decision is written (RoundClosed) with the outcome it leads to, before anything acts on it. */
  private closeAtDeadline(roundId: string, stage: number): Promise<void> {
    return this.runExclusive(async () => {
      if (this.broken) return;
      const eventId = stage === 0 ? deterministicEventId('deadline', roundId) : deterministicEventId('deadline', roundId, String(stage));
      const decisions = applyRoundEvent(this.rounds, { type: 'close', roundId, cause: 'deadline', eventId, stage }, (name) => this.protocols.get(name));
      if (decisions.length === 0) return;
      await this.stage(decisions, eventId);
      await this.flush();
    });
  }

  /** Counts what a committed transaction decided (never an aborted one's, which is decided again). */
  private observe(decisions: RoundDecision[]): void {
    const m = this.options.metrics;
    if (!m) return;
    for (const d of decisions) {
      switch (d.type) {
        case 'rejected':
          m.rejections.inc({ reason: d.reasonCode });
          break;
        case 'stage':
          m.roundStages.inc({ protocol: d.protocol });
          break;
        case 'closed': {
          const kind = this.rounds.byId.get(d.roundId)?.open.kind === 'consensus' ? 'vote' : 'bid';
          if (d.counted.length > 0) m.answers.inc({ protocol: d.protocol, kind }, d.counted.length);
          break;
        }
        case 'outcome': {
          const open = this.rounds.byId.get(d.roundId)?.open;
          m.rounds.inc({ protocol: d.protocol, status: d.status });
          if (open) m.coordinationLatency.observe({ protocol: d.protocol, status: d.status }, Math.max(0, Date.now() - (open.openedAt ?? open.eventTime)) / 1000);
          break;
        }
      }
    }
  }
}

/** What was applied since the last commit, and what the next transaction writes. */
class Uncommitted {
  /** Rounds whose state goes to the changelog. */
  readonly dirty = new Set<string>();
  /** Input positions: the next offset to read, per topic-partition read since the last commit. */
  readonly offsets = new Map<string, { topic: string; partition: number; next: string }>();
  readonly outputs: Array<{ topic: string; message: Message }> = [];
  /** What the transaction writes, for the metrics once it commits. */
  readonly decisions: RoundDecision[] = [];

  add(topic: string, message: Message): void {
    this.outputs.push({ topic, message });
  }

  /** The DeadLetterWriter writes through this too: a dead letter joins the transaction. */
  async send(record: { topic: string; messages: Message[] }): Promise<RecordMetadata[]> {
    for (const message of record.messages) this.add(record.topic, message);
    return [];
  }

  topicMessages(): Array<{ topic: string; messages: Message[] }> {
    const byTopic = new Map<string, Message[]>();
    for (const { topic, message } of this.outputs) byTopic.set(topic, [...(byTopic.get(topic) ?? []), message]);
    return [...byTopic].map(([topic, messages]) => ({ topic, messages }));
  }
}

/**
 * Kafka answers CONCURRENT_TRANSACTIONS while the previous transaction's
 * markers are still being written; it is retriable, but kafkajs gives up on
 * it when adding offsets to a transaction.
 */
async function retryConcurrentTransactions<T>(work: () => Promise<T>, attempts = 50): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await work();
    } catch (error) {
      if ((error as { type?: string }).type !== 'CONCURRENT_TRANSACTIONS' || i >= attempts) throw error;
      await new Promise((resolve) => setTimeout(resolve, Math.min(100, 5 * i)));
    }
  }
}
