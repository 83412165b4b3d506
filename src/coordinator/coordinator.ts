import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Consumer, EachBatchPayload, Kafka, Producer, Transaction } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { MabeamError, describeError, isMabeamError } from '../errors.ts';
import { deterministicEventId, newEnvelope } from '../events/envelope.ts';
import type { RoundState } from '../events/types.ts';
import { createProducer, joinedAndFetched } from '../kafka/client.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import { sharedProtocols } from '../protocols/builtins.ts';
import type { ProtocolRegistry } from '../protocols/registry.ts';
import { applyRoundEvent, copyRounds, emptyRounds, markClosed, restoreRound, snapshotRound, type Rounds } from '../protocols/roundsInternals.ts';
import type { RoundDecision } from '../protocols/types.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';
import { coPartitionedAssigner } from './assigner.ts';
import { toOutputs, toRoundEvent, type Output } from './events.ts';

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
}

/** The topics a coordinator joins, all keyed by round id and co-partitioned. */
const inputs = ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes', 'round-state'] as const;

/**
 * Runs coordination rounds over Kafka. Coordinators form one consumer group
 * (`<prefix>.coordinators`); the round topics are co-partitioned by round id,
 * so one instance owns a round. Each batch is applied to the rounds through
 * the protocols (`applyRoundEvent`), and everything it decides — rejections,
 * round closings, outcomes, the directives to winners — is written together
 * with the consumed offsets in one Kafka transaction: a crash never yields
 * a second winner or a lost directive.
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
  private readonly timers = new Map<string, NodeJS.Timeout>();
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
    this.producer = createProducer(o.kafka, {
      transactionalId: `${this.groupId}.${this.instanceId}`,
      idempotent: true,
      maxInFlightRequests: 1,
      transactionTimeout: o.transactionTimeoutMs ?? 5_000,
      // A new transaction's first send often meets CONCURRENT_TRANSACTIONS while the previous
      // one's markers are written; retry within milliseconds, not kafkajs's default 100 ms.
      retry: { initialRetryTime: 5, maxRetryTime: 200, retries: 40 },
    });
    await this.producer.connect();
    this.consumer = o.kafka.consumer({
      groupId: this.groupId,
      sessionTimeout: o.sessionTimeoutMs ?? 6_000,
      heartbeatInterval: Math.max(500, Math.floor((o.sessionTimeoutMs ?? 6_000) / 3)),
      maxWaitTimeInMs: 100,
      readUncommitted: false,
      partitionAssigners: [coPartitionedAssigner],
    });
    const joined = joinedAndFetched(this.consumer);
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [...this.definitions.keys()], fromBeginning: true });
    await this.consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (payload) => this.onBatch(payload) });
    await joined;
  }

  async stop(): Promise<void> {
    for (const timer of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    await this.consumer?.disconnect();
    await this.exclusive.catch(() => undefined);
    await this.producer?.disconnect();
  }

  private runExclusive<T>(work: () => Promise<T>): Promise<T> {
    const next = this.exclusive.then(work, work);
    this.exclusive = next.catch(() => undefined);
    return next;
  }

  private async onBatch({ batch, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0) return;
    const definition = this.definitions.get(batch.topic)!;
    this.log.debug({ topic: batch.topic, partition: batch.partition, messages: batch.messages.length, first: batch.firstOffset() }, 'batch');
    const stateTopic = batch.topic === topicName(this.options.prefix, 'round-state');
    const last = batch.messages[batch.messages.length - 1]!.offset;
    const offsets = { topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(Number(last) + 1) }] }] };
    await this.runExclusive(async () => {
      // Round state moves with the transaction: an aborted batch leaves it as it was.
      const before = copyRounds(this.rounds);
      // The transaction opens only when the batch has something to write (most read-backs of the
      // coordinator's own outcomes and changelog do not).
      const outgoing = new Writes(() => this.producer!.transaction());
      try {
        const deadLetters = new DeadLetterWriter({ producer: outgoing, codec: this.options.codec, topic: this.deadLettersTopic, producerId: this.instanceId, consumerGroup: this.groupId, logger: this.log, ...(this.options.metrics ? { metrics: this.options.metrics } : {}) });
        const touched = new Set<string>();
        for (const message of batch.messages) {
          let decisions: RoundDecision[] = [];
          let causation = '';
          try {
            if (stateTopic) {
              const state = (await this.options.codec.decode<RoundState>(message.value, { allowedTypes: definition.eventTypes })).event;
              decisions = this.restore(state);
              for (const d of decisions) touched.add(d.roundId);
              await this.send(outgoing, decisions, state.envelope.eventId);
              continue;
            }
            const decoded = await this.options.codec.decode(message.value, { allowedTypes: definition.eventTypes });
            const key = message.key?.toString() ?? null;
            const roundId = (decoded.event as { roundId?: unknown }).roundId;
            if (typeof roundId === 'string' && key !== roundId) {
              throw new MabeamError('VALIDATION_FAILED', `Invalid ${decoded.type}: the message key is ${key === null ? 'missing' : `"${key}"`} but ${definition.name} is keyed by roundId ("${roundId}")`);
            }
            const event = decoded.type === 'RoundClosed' ? undefined : toRoundEvent(decoded);
            if (decoded.type === 'RoundClosed') {
              // Decided already (this instance or the one before): stop taking answers, decide nothing.
              const closedId = (decoded.event as { roundId: string }).roundId;
              markClosed(this.rounds, closedId);
              this.clearDeadline(closedId);
            } else if (event) {
              causation = 'eventId' in event ? event.eventId : '';
              if (event.type !== 'tick') touched.add(event.roundId);
              decisions = applyRoundEvent(this.rounds, event, (name) => this.protocols.get(name));
              if (event.type === 'open') this.scheduleDeadline(event.roundId, event.deadline);
            }
            // Log time moves on: answers that waited too long for their round are refused.
            const logTime = (decoded.event as { envelope?: { eventTime?: number } }).envelope?.eventTime;
            if (typeof logTime === 'number') decisions.push(...applyRoundEvent(this.rounds, { type: 'tick', now: logTime }, (name) => this.protocols.get(name)));
          } catch (error) {
            if (isMabeamError(error) && error.retriable) throw error;
            await deadLetters.write({ topic: batch.topic, partition: batch.partition, offset: message.offset, timestamp: message.timestamp, key: message.key, value: message.value, ...(message.headers ? { headers: message.headers } : {}) }, error);
          }
          for (const d of decisions) touched.add(d.roundId);
          await this.send(outgoing, decisions, causation);
        }
        for (const roundId of touched) await this.writeState(outgoing, roundId);
        const txn = outgoing.opened;
        if (txn) {
          // The changelog's position is never committed: every new owner re-reads it.
          if (!stateTopic) await retryConcurrentTransactions(() => txn.sendOffsets({ consumerGroupId: this.groupId, ...offsets }));
          await txn.commit();
        } else if (!stateTopic) {
          await this.consumer!.commitOffsets(offsets.topics.map((t) => ({ topic: t.topic, partition: t.partitions[0]!.partition, offset: t.partitions[0]!.offset })));
        }
        resolveOffset(last);
      } catch (error) {
        this.rounds = before;
        await outgoing.opened?.abort().catch(() => undefined);
        this.log.warn({ topic: batch.topic, partition: batch.partition, error: describeError(error) }, 'batch aborted; it will be delivered again');
        throw error;
      }
    });
    await heartbeat();
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
    if (round && !round.closed) this.scheduleDeadline(state.roundId, round.open.deadline);
    this.log.debug({ roundId: state.roundId, open: Boolean(round), counted: round?.counted.length, decisions: decisions.length }, 'round state read');
    return decisions;
  }

  private async writeState(txn: Pick<Transaction, 'send'>, roundId: string): Promise<void> {
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
    await txn.send({ topic: topicName(this.options.prefix, 'round-state'), messages: [{ key: roundId, value, headers: { [eventHeaders.type]: 'RoundState' } }] });
  }

  private async send(txn: Pick<Transaction, 'send'>, decisions: RoundDecision[], causation: string): Promise<void> {
    for (const decision of decisions) {
      if (decision.type === 'closed') this.clearDeadline(decision.roundId);
      for (const output of toOutputs(decision, this.instanceId, causation)) await this.write(txn, output);
    }
  }

  private async write(txn: Pick<Transaction, 'send'>, output: Output): Promise<void> {
    const value = await this.options.codec.encode(output.type, output.event);
    await txn.send({
      topic: topicName(this.options.prefix, output.topic),
      messages: [{ key: output.key, value, headers: { [eventHeaders.type]: output.type, [eventHeaders.id]: output.event.envelope.eventId } }],
    });
  }

  private scheduleDeadline(roundId: string, deadline: number): void {
    const round = this.rounds.byId.get(roundId);
    if (!round || round.closed || this.timers.has(roundId)) return;
    const timer = setTimeout(() => {
      this.timers.delete(roundId);
      this.closeAtDeadline(roundId).catch((error: unknown) => this.log.error({ roundId, error: describeError(error) }, 'closing a round at its deadline failed'));
    }, Math.max(0, deadline - Date.now()));
    timer.unref();
    this.timers.set(roundId, timer);
  }

  private clearDeadline(roundId: string): void {
    clearTimeout(this.timers.get(roundId));
    this.timers.delete(roundId);
  }

  /** The clock says the deadline passed: that decision is written (RoundClosed) with the outcome it leads to. */
  private closeAtDeadline(roundId: string): Promise<void> {
    return this.runExclusive(async () => {
      const before = copyRounds(this.rounds);
      const eventId = deterministicEventId('deadline', roundId);
      const decisions = applyRoundEvent(this.rounds, { type: 'close', roundId, cause: 'deadline', eventId }, (name) => this.protocols.get(name));
      if (decisions.length === 0) return;
      const txn = await this.producer!.transaction();
      try {
        await this.send(txn, decisions, eventId);
        await this.writeState(txn, roundId);
        await txn.commit();
      } catch (error) {
        this.rounds = before;
        await txn.abort().catch(() => undefined);
        this.scheduleDeadline(roundId, Date.now() + 1_000);
        throw error;
      }
    });
  }
}

/** A transaction opened on the first send, so batches with nothing to write open none. */
class Writes {
  opened: Transaction | undefined;
  private readonly open: () => Promise<Transaction>;

  constructor(open: () => Promise<Transaction>) {
    this.open = open;
  }

  async send(record: Parameters<Transaction['send']>[0]): ReturnType<Transaction['send']> {
    this.opened ??= await this.open();
    return this.opened.send(record);
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
