import { context } from '@opentelemetry/api';
import { randomBytes } from 'node:crypto';
import type { Consumer, Kafka, Producer } from 'kafkajs';
import type { Redis } from 'ioredis';
import type { Observable } from 'rxjs';
import { typedEvent, type EventCodec } from '../codec/codec.ts';
import { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { MabeamError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import type { VariableChanged, VariableChangeRejected, VariableChangeRequested } from '../events/types.ts';
import { joinedAndFetched } from '../kafka/client.ts';
import type { Logger } from '../log/logger.ts';
import { EventProducer } from '../producer/eventProducer.ts';
import { CompactedView } from '../readmodel/compactedView.ts';
import { topicName, readerGroupId } from '../topics/names.ts';
import { traced } from '../tracing/trace.ts';
import type { TopicDefinition } from '../topics/types.ts';
import type { Value, VariableDefinition } from './model.ts';
import { toRecord } from './records.ts';
import type { ChangeOptions, VariableAccess, VariableRecord } from './types.ts';
import { VariableLog } from './variableLog.ts';

export interface VariablesClientOptions {
  kafka: Kafka;
  codec: EventCodec;
  producer: Producer;
  logger: Logger;
  prefix: string;
  clientId?: string;
  /**
   * With Redis (and the topic definitions), get() and all() answer from a
   * Redis read model of the variables topic, rebuilt from the topic when
   * Redis loses it; without, from this process's own copy.
   */
  redis?: Redis;
  definitions?: TopicDefinition[];
}

interface Waiter {
  resolve: (answer: { type: 'VariableChanged'; event: VariableChanged } | { type: 'VariableChangeRejected'; event: VariableChangeRejected }) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
}

/**
 * Reads, changes and watches variables from any process. A change is a
 * VariableChangeRequested event; the owners answer it on variable-changes,
 * and `set` resolves once this process sees the new value (so a `get`
 * after it reads it) — or rejects with VARIABLE_REJECTED and the owners'
 * reason code (details.reasonCode).
 */
export class VariablesClient implements VariableAccess {
  readonly clientId: string;
  private readonly options: VariablesClientOptions;
  private readonly events: EventProducer;
  private readonly log: VariableLog;
  private readonly waiting = new Map<string, Waiter>();
  private answers: Consumer | undefined;
  private view: CompactedView | undefined;

  constructor(options: VariablesClientOptions) {
    this.options = options;
    this.clientId = options.clientId ?? `client-${randomBytes(3).toString('hex')}`;
    this.events = new EventProducer(options.producer, options.codec);
    this.log = new VariableLog({ kafka: options.kafka, codec: options.codec, logger: options.logger, prefix: options.prefix });
  }

  async start(): Promise<void> {
    const o = this.options;
    const consumer = o.kafka.consumer({ groupId: readerGroupId(o.prefix, `variable-clients.${this.clientId}`), maxWaitTimeInMs: 100 });
    this.answers = consumer;
    const ready = joinedAndFetched(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic: topicName(o.prefix, 'variable-changes'), fromBeginning: false });
    await consumer.run({
      eachMessage: async ({ message }) => {
        if (this.waiting.size === 0) return;
        const decoded = await o.codec.decode(message.value);
        const causationId = decoded.event.envelope.causationId;
        const waiter = causationId ? this.waiting.get(causationId) : undefined;
        if (!waiter || (decoded.type !== 'VariableChanged' && decoded.type !== 'VariableChangeRejected')) return;
        this.waiting.delete(causationId!);
        clearTimeout(waiter.timer);
        waiter.resolve(typedEvent(decoded));
      },
    });
    await Promise.all([ready, this.log.start()]);
    if (o.redis) {
      const definition = (o.definitions ?? []).find((d) => d.name === 'variables');
      if (!definition) throw new MabeamError('INVALID_OPTIONS', 'A Redis view of the variables needs the topic definitions (options.definitions).');
      const deadLetters = new DeadLetterWriter({ producer: o.producer, codec: o.codec, topic: topicName(o.prefix, 'dead-letters'), producerId: this.clientId, consumerGroup: `${o.prefix}.variable-views`, logger: o.logger });
      this.view = new CompactedView({
        kafka: o.kafka, redis: o.redis, codec: o.codec, deadLetters, logger: o.logger, topic: topicName(o.prefix, 'variables'), definition,
        namespace: `mabeam:${o.prefix}:variables:${this.clientId}`, project: (decoded) => toRecord(decoded), transactional: true,
      });
      await this.view.start();
      await this.view.caughtUp();
    }
  }

  /** Resolves with the cause when this client's copy of the variables can no longer be kept (its reader stopped for good). */
  get stoppedForGood(): Promise<Error> {
    return this.log.stoppedForGood;
  }

  async stop(): Promise<void> {
    for (const w of this.waiting.values()) {
      clearTimeout(w.timer);
      w.reject(new MabeamError('STOPPED', 'The variables client stopped before the answer.'));
    }
    this.waiting.clear();
    await this.answers?.disconnect();
    await this.view?.stop();
    await this.log.stop();
  }

  async define(definition: VariableDefinition, options: Pick<ChangeOptions, 'timeoutMs'> = {}): Promise<VariableRecord> {
    const known = this.log.get(definition.id);
    if (known && JSON.stringify(known.definition) === JSON.stringify(definition)) return known;
    const answer = await this.request({ variableId: definition.id, value: null, expectedVersion: null, cause: 'define', trigger: null, definition: JSON.stringify(definition) }, options.timeoutMs);
    if (answer.type === 'VariableChangeRejected' && answer.event.reasonCode === 'ALREADY_DEFINED') return this.log.atVersion(definition.id, 1);
    return this.settle(answer);
  }

  async set(id: string, value: Value, options: ChangeOptions = {}): Promise<VariableRecord> {
    if (value === undefined) throw new MabeamError('INVALID_OPTIONS', `A value for ${id} is required.`);
    const answer = await this.request(
      { variableId: id, value: JSON.stringify(value), expectedVersion: options.expectedVersion ?? null, cause: options.cause ?? 'set', trigger: options.trigger === undefined ? null : JSON.stringify(options.trigger), definition: null },
      options.timeoutMs,
    );
    return this.settle(answer);
  }

  async get(id: string): Promise<VariableRecord | undefined> {
    return this.view ? this.view.get<VariableRecord>(id) : this.log.get(id);
  }

  async all(): Promise<VariableRecord[]> {
    if (!this.view) return this.log.all();
    return [...(await this.view.entries<VariableRecord>()).values()].sort((a, b) => a.id.localeCompare(b.id));
  }

  watch(id: string): Observable<VariableRecord> {
    return this.log.watch(id);
  }

  private async settle(answer: Awaited<ReturnType<VariablesClient['request']>>): Promise<VariableRecord> {
    if (answer.type === 'VariableChangeRejected') {
      const r = answer.event;
      throw new MabeamError('VARIABLE_REJECTED', `The change of ${r.variableId} was refused: ${r.reason} [${r.reasonCode}]`, { details: { reasonCode: r.reasonCode, variableId: r.variableId } });
    }
    // Read-your-writes: resolve once this process's copy has the new version (or a later one).
    const c = answer.event;
    const latest = await this.log.atVersion(c.variableId, c.version);
    if (this.view) await this.view.caughtUp();
    return { id: c.variableId, definition: latest.definition, value: JSON.parse(c.value) as Value, version: c.version, eventTime: c.envelope.eventTime, writerId: c.writerId };
  }

  /**
   * The answer to a change request someone else wrote (the adaptation loop
   * writes its requests in its own transactions): resolves with the new
   * record, or rejects with VARIABLE_REJECTED. Call before the request can
   * be answered (before its transaction commits).
   */
  answerTo(requestId: string, variableId: string, timeoutMs = 10_000): Promise<VariableRecord> {
    if (!this.answers) throw new MabeamError('INVALID_OPTIONS', 'Start the variables client (await client.start()) before using it.');
    return this.awaitAnswer(requestId, variableId, timeoutMs).then((answer) => this.settle(answer));
  }

  private awaitAnswer(requestId: string, variableId: string, timeoutMs: number): Promise<Parameters<Waiter['resolve']>[0]> {
    return new Promise((resolve, reject) => {
      const waiter: Waiter = {
        resolve,
        reject,
        timer: setTimeout(() => {
          // The same request may be awaited again (a transaction written anew): only this wait ends.
          if (this.waiting.get(requestId) === waiter) this.waiting.delete(requestId);
          reject(new MabeamError('VARIABLE_REJECTED', `No answer about ${variableId} within ${timeoutMs} ms: is a variable owner running (mabeam orchestrator run)?`, { details: { reasonCode: 'NO_ANSWER' } }));
        }, timeoutMs),
      };
      this.waiting.set(requestId, waiter);
    });
  }

  private request(fields: Omit<VariableChangeRequested, 'envelope' | 'requesterId'>, timeoutMs = 10_000) {
    if (!this.answers) throw new MabeamError('INVALID_OPTIONS', 'Start the variables client (await client.start()) before using it.');
    const event: VariableChangeRequested = { envelope: newEnvelope('VariableChangeRequested', this.clientId, { correlationId: fields.variableId }), requesterId: this.clientId, ...fields };
    const requestId = event.envelope.eventId;
    return new Promise<Parameters<Waiter['resolve']>[0]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(requestId);
        reject(new MabeamError('VARIABLE_REJECTED', `No answer about ${fields.variableId} within ${timeoutMs} ms: is a variable owner running (mabeam orchestrator run)?`, { details: { reasonCode: 'NO_ANSWER' } }));
      }, timeoutMs);
      this.waiting.set(requestId, { resolve, reject, timer });
      // The change's trace starts here (in the caller's, when it has one).
      const topic = topicName(this.options.prefix, 'variable-requests');
      traced('send', topic, context.active(), { key: fields.variableId, subject: { 'mabeam.variable_id': fields.variableId } }, (step) =>
        this.events.send(topic, fields.variableId, 'VariableChangeRequested', event, { headers: step.headers }),
      ).catch((error: unknown) => {
        clearTimeout(timer);
        this.waiting.delete(requestId);
        reject(error as Error);
      });
    });
  }
}
