import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kafka, Message } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { Processor } from '../engine/processor.ts';
import type { Decider, InputRecord, Lane } from '../engine/types.ts';
import { MabeamError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import type { VariableChanged, VariableChangeRejected, VariableChangeRequested, VariableState } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import type { StopsForGood } from '../runtime/stopped.ts';
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
 * It is a decider on the engine (src/engine/): each partition's requests
 * are answered in transactions of that partition's fenced producer, with
 * their offsets: for a change, the new VariableState on the compacted
 * `variables` topic and a VariableChanged on `variable-changes` (previous
 * value, cause, trigger); for a refusal, a VariableChangeRejected with its
 * reason code. A request a producer put on another partition is moved to its
 * own first. The owner knows the current state from the `variables` topic
 * (read to its end after fencing, before it decides on partitions it has
 * just been given) and from its own commits; a change that claims consensus
 * is checked against that round's outcome on the `outcomes` topic (see
 * decide.ts).
 */
export class VariableOwner implements StopsForGood {
  readonly groupId: string;
  readonly instanceId: string;
  private readonly options: VariableOwnerOptions;
  private readonly log: Logger;
  private readonly state: VariableLog;
  /** Outcomes of consensus rounds about variables: what a change by consensus is checked against. */
  private readonly approvals: Approvals;
  private readonly processor: Processor<ChangeDecision>;
  /** Per partition: what its uncommitted transaction changed, seen by its later requests. */
  private readonly pending = new Map<number, Map<string, VariableRecord>>();
  private readonly requestTopic: string;

  constructor(options: VariableOwnerOptions) {
    this.options = options;
    this.groupId = `${options.prefix}.variable-owners`;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = options.logger.child({ ns: 'variable-owner', instance: this.instanceId });
    this.state = new VariableLog({ kafka: options.kafka, codec: options.codec, logger: this.log, prefix: options.prefix });
    this.approvals = new Approvals({ kafka: options.kafka, codec: options.codec, logger: this.log, prefix: options.prefix });
    this.requestTopic = topicName(options.prefix, 'variable-requests');
    const definition = options.definitions.find((d) => d.name === 'variable-requests');
    if (!definition) throw new MabeamError('INVALID_OPTIONS', 'The variable owner needs the topic definition "variable-requests" (topics/variable-requests.json).');
    const decider: Decider<ChangeDecision> = {
      inputs: [this.requestTopic],
      // Another owner may have decided on these partitions until a moment ago (now fenced): read what it committed.
      restore: async (partitions) => {
        for (const p of partitions) this.pending.delete(p);
        await this.state.caughtUp();
      },
      decide: (record, lane) => this.decide(record, lane, definition.eventTypes),
      committed: (p, decisions) => {
        this.pending.delete(p);
        for (const d of decisions) {
          if (d.type === 'changed') this.state.apply(d.record);
          options.metrics?.variableChanges.inc({ variable: d.variableId, outcome: d.type === 'changed' ? 'applied' : 'rejected' });
        }
      },
      release: (p) => this.pending.delete(p),
    };
    this.processor = new Processor<ChangeDecision>({
      kafka: options.kafka,
      codec: options.codec,
      logger: this.log,
      groupId: this.groupId,
      producerId: this.instanceId,
      decider,
      prefix: options.prefix,
      metrics: options.metrics,
      sessionTimeoutMs: options.sessionTimeoutMs,
      // A change is answered at once; a batch of refusals too.
      idleFlushMs: 0,
    });
  }

  /** The variables as this owner knows them. */
  get variables(): VariableLog {
    return this.state;
  }

  get stoppedForGood(): Promise<Error> {
    return this.processor.stoppedForGood;
  }

  async start(): Promise<void> {
    await Promise.all([this.state.start(), this.approvals.start()]);
    await Promise.all((['VariableState', 'VariableChanged', 'VariableChangeRejected'] as const).map((t) => this.options.codec.schemaId(t)));
    await this.processor.start();
  }

  async stop(): Promise<void> {
    await this.processor.stop();
    await Promise.all([this.state.stop(), this.approvals.stop()]);
  }

  private async decide(record: InputRecord, lane: Lane<ChangeDecision>, allowedTypes: string[]): Promise<void> {
    const o = this.options;
    const request = (await o.codec.decode<VariableChangeRequested>(record.message.value, { allowedTypes })).event;
    const key = record.message.key?.toString() ?? null;
    if (key !== request.variableId) {
      throw new MabeamError('VALIDATION_FAILED', `Invalid VariableChangeRequested: the message key is ${key === null ? 'missing' : `"${key}"`} but variable-requests is keyed by variableId ("${request.variableId}")`);
    }
    let changes = this.pending.get(record.partition);
    if (!changes) this.pending.set(record.partition, (changes = new Map()));
    const current = changes.get(request.variableId) ?? this.state.get(request.variableId);
    const roundId = request.cause === 'consensus' ? roundIdOf(request.trigger) : undefined;
    const decision = decideChange(request, current, roundId ? await this.approvals.of(roundId) : undefined);
    const outputs = await this.encode(request, decision, current);
    // Nothing above changed state: a retriable failure (the registry) retries this request from here.
    lane.out.decisions.push(decision);
    if (decision.type === 'changed') changes.set(decision.record.id, decision.record);
    for (const { topic, messages } of outputs) for (const message of messages) lane.out.add(topic, message);
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
