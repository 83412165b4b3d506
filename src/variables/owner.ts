import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Consumer, EachBatchPayload, Kafka, Message, Producer } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { describeError, isMabeamError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import type { VariableChanged, VariableChangeRejected, VariableChangeRequested, VariableState } from '../events/types.ts';
import { createPartitionOwnerConsumer, createTransactionalProducer, joinedAndFetched } from '../kafka/client.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';
import { Approvals } from './approvals.ts';
import { decideChange, roundIdOf, type ChangeDecision } from './decide.ts';
import { VariableLog } from './variableLog.ts';
import type { VariableRecord } from './types.ts';

export interface VariableOwnerOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  prefix: string;
  definitions: TopicDefinition[];
  metrics?: Metrics;
  instanceId?: string;
  sessionTimeoutMs?: number;
}

/**
 * Decides variable changes. Owners form one consumer group
 * (`<prefix>.variable-owners`) on `variable-requests`, keyed by variable
 * id, so one owner decides each variable and its requests in log order:
 * versions go up by one per change, a compare-and-set against another
 * version is refused, a value that does not fit the variable's type is
 * refused, and without an expected version the last request read wins.
 *
 * Each batch is answered in one transaction with its offsets: for a change,
 * the new VariableState on the compacted `variables` topic and a
 * VariableChanged on `variable-changes` (previous value, cause, trigger);
 * for a refusal, a VariableChangeRejected with its reason code. The owner
 * knows the current state from the `variables` topic (read to its end
 * before it decides on a partition it has just been given) and from its own
 * commits; a change that claims consensus is checked against that round's
 * outcome on the `outcomes` topic (see decide.ts).
 */
export class VariableOwner {
  readonly groupId: string;
  readonly instanceId: string;
  private readonly options: VariableOwnerOptions;
  private readonly log: Logger;
  private readonly state: VariableLog;
  /** Outcomes of consensus rounds about variables: what a change by consensus is checked against. */
  private readonly approvals: Approvals;
  private producer: Producer | undefined;
  private consumer: Consumer | undefined;
  /** Set at each new assignment: the state topic is read to its end before the next decision. */
  private stale = true;

  constructor(options: VariableOwnerOptions) {
    this.options = options;
    this.groupId = `${options.prefix}.variable-owners`;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = options.logger.child({ ns: 'variable-owner', instance: this.instanceId });
    this.state = new VariableLog({ kafka: options.kafka, codec: options.codec, logger: this.log, prefix: options.prefix });
    this.approvals = new Approvals({ kafka: options.kafka, codec: options.codec, logger: this.log, prefix: options.prefix });
  }

  /** The variables as this owner knows them. */
  get variables(): VariableLog {
    return this.state;
  }

  async start(): Promise<void> {
    const o = this.options;
    await Promise.all([this.state.start(), this.approvals.start()]);
    this.producer = createTransactionalProducer(o.kafka, `${this.groupId}.${this.instanceId}`);
    await this.producer.connect();
    const consumer = createPartitionOwnerConsumer(o.kafka, this.groupId, o.sessionTimeoutMs);
    this.consumer = consumer;
    consumer.on(consumer.events.GROUP_JOIN, () => (this.stale = true));
    const joined = joinedAndFetched(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic: topicName(o.prefix, 'variable-requests'), fromBeginning: true });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (payload) => this.onBatch(payload) });
    await joined;
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    await this.producer?.disconnect();
    await Promise.all([this.state.stop(), this.approvals.stop()]);
  }

  private async onBatch({ batch, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0) return;
    const o = this.options;
    const definition = o.definitions.find((d) => d.name === 'variable-requests')!;
    if (this.stale) {
      // Another owner may have decided on this partition until a moment ago: read what it committed.
      await this.state.caughtUp();
      this.stale = false;
    }
    const txn = await this.producer!.transaction();
    const committed: VariableRecord[] = [];
    const decided: ChangeDecision[] = [];
    try {
      const outputs: Array<{ topic: string; messages: Message[] }> = [];
      const deadLetters = new DeadLetterWriter({ producer: txn, codec: o.codec, topic: topicName(o.prefix, 'dead-letters'), producerId: this.instanceId, consumerGroup: this.groupId, logger: this.log, ...(o.metrics ? { metrics: o.metrics } : {}) });
      // What this batch changed, seen by its later requests.
      const pending = new Map<string, VariableRecord>();
      for (const message of batch.messages) {
        let request: VariableChangeRequested;
        try {
          request = (await o.codec.decode<VariableChangeRequested>(message.value, { allowedTypes: definition.eventTypes })).event;
        } catch (error) {
          if (isMabeamError(error) && error.retriable) throw error;
          await deadLetters.write({ topic: batch.topic, partition: batch.partition, offset: message.offset, timestamp: message.timestamp, key: message.key, value: message.value, ...(message.headers ? { headers: message.headers } : {}) }, error);
          continue;
        }
        const current = pending.get(request.variableId) ?? this.state.get(request.variableId);
        const roundId = request.cause === 'consensus' ? roundIdOf(request.trigger) : undefined;
        const decision = decideChange(request, current, roundId ? await this.approvals.of(roundId) : undefined);
        decided.push(decision);
        if (decision.type === 'changed') {
          pending.set(decision.record.id, decision.record);
          committed.push(decision.record);
        }
        outputs.push(...(await this.encode(request, decision, current)));
      }
      if (outputs.length > 0) await txn.sendBatch({ topicMessages: outputs });
      await txn.sendOffsets({ consumerGroupId: this.groupId, topics: [{ topic: batch.topic, partitions: [{ partition: batch.partition, offset: String(Number(batch.messages[batch.messages.length - 1]!.offset) + 1) }] }] });
      await txn.commit();
    } catch (error) {
      await txn.abort().catch(() => undefined);
      this.log.warn({ partition: batch.partition, error: describeError(error) }, 'batch aborted; it will be delivered again');
      throw error;
    }
    for (const record of committed) this.state.apply(record);
    for (const d of decided) o.metrics?.variableChanges.inc({ variable: d.variableId, outcome: d.type === 'changed' ? 'applied' : 'rejected' });
    resolveOffset(batch.messages[batch.messages.length - 1]!.offset);
    await heartbeat();
  }

  /** The events a decision is written as, each caused by the request. */
  private async encode(request: VariableChangeRequested, decision: ChangeDecision, previous: VariableRecord | undefined): Promise<Array<{ topic: string; messages: Message[] }>> {
    const o = this.options;
    // A change is stamped with its request's event time (the last-write-wins tie-break), a refusal with now.
    const envelope = (type: 'VariableState' | 'VariableChanged' | 'VariableChangeRejected', eventTime?: number) => {
      const e = newEnvelope(type, this.instanceId, { correlationId: request.variableId, causationId: request.envelope.eventId });
      return eventTime === undefined ? e : { ...e, eventTime };
    };
    const message = async (type: 'VariableState' | 'VariableChanged' | 'VariableChangeRejected', event: VariableState | VariableChanged | VariableChangeRejected): Promise<Message> => ({
      key: request.variableId,
      value: await o.codec.encode(type, event),
      headers: { [eventHeaders.type]: type, [eventHeaders.id]: event.envelope.eventId },
    });
    if (decision.type === 'rejected') {
      const rejected: VariableChangeRejected = {
        envelope: envelope('VariableChangeRejected'), variableId: request.variableId, attemptedValue: request.value, requesterId: request.requesterId, reasonCode: decision.reasonCode, reason: decision.reason,
      };
      return [{ topic: topicName(o.prefix, 'variable-changes'), messages: [await message('VariableChangeRejected', rejected)] }];
    }
    const r = decision.record;
    const state: VariableState = {
      envelope: envelope('VariableState', r.eventTime), variableId: r.id, version: r.version, valueType: r.definition.valueType.kind, value: JSON.stringify(r.value), writerId: r.writerId, definition: JSON.stringify(r.definition),
    };
    const changed: VariableChanged = {
      envelope: envelope('VariableChanged', r.eventTime), variableId: r.id, version: r.version, previousValue: previous ? JSON.stringify(previous.value) : null, value: JSON.stringify(r.value), writerId: r.writerId, cause: request.cause, trigger: request.trigger,
    };
    return [
      { topic: topicName(o.prefix, 'variables'), messages: [await message('VariableState', state)] },
      { topic: topicName(o.prefix, 'variable-changes'), messages: [await message('VariableChanged', changed)] },
    ];
  }
}
