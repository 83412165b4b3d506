/**
 * The adaptation loop: a consumer group on the `metrics` topic that applies
 * adaptation functions to performance samples (see adaptation.ts for which
 * samples a variable gets and when a change is planned).
 *
 * Rules:
 * - A batch is what one fetch brings from one partition (samples are keyed
 *   by their source, so one source's samples stay in order). For each batch
 *   the adapter reads every variable's current record, plans the changes
 *   and applies them one by one through `VariableAccess.set` with cause
 *   `adaptation`, `expectedVersion` (the version the function saw) and the
 *   trigger — so an adaptive change goes through the owners' rules like any
 *   other. A change the owners refuse (they write VariableChangeRejected) is
 *   logged and skipped; any other failure (Kafka, a timeout) fails the
 *   batch, which Kafka delivers again. Because every change is a
 *   compare-and-set, a change that did land before the failure is not
 *   applied a second time from the same record, but a redelivered batch is
 *   shown to the functions again (at-least-once).
 * - A message that is not a MetricSample, cannot be decoded, or whose key is
 *   not its source goes to dead-letters and the adapter moves on.
 * - The group (`<prefix>.orchestrator.adaptation` by default) starts at the
 *   end of the topic the first time it runs; start() pins that end for every
 *   partition so later it always resumes from its committed positions, and
 *   resolves once the consumer has joined and fetched: samples produced
 *   after start() are seen.
 */
import type { Consumer, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { MabeamError, describeError, isMabeamError } from '../errors.ts';
import type { MetricSample } from '../events/types.ts';
import { joinedAndFetched } from '../kafka/client.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';
import type { VariableAccess, VariableRecord } from '../variables/types.ts';
import { StoppedLatch, type StopsForGood } from '../runtime/stopped.ts';
import { planAdaptations, type PlannedChange } from './adaptation.ts';
import { sharedFunctions, type FunctionRegistry } from './functions.ts';

export interface SystemAdapterOptions {
  kafka: Kafka;
  codec: EventCodec;
  /** For dead letters (the caller owns it). */
  producer: Pick<Producer, 'send'>;
  logger: Logger;
  prefix: string;
  definitions: TopicDefinition[];
  variables: Pick<VariableAccess, 'all' | 'set'>;
  /** Only these variables adapt (default: every variable with an adaptation function). */
  ids?: string[];
  functions?: FunctionRegistry;
  /** Consumer group; default `<prefix>.orchestrator.adaptation`. */
  groupId?: string;
  metrics?: Metrics;
}

/** What happened to one planned change. */
export interface AppliedAdaptation {
  change: PlannedChange;
  /** The new record, or the reason code the owners refused it with. */
  result: { applied: VariableRecord } | { rejected: string; reason: string };
}

export class SystemAdapter implements StopsForGood {
  readonly groupId: string;
  private readonly options: SystemAdapterOptions;
  private readonly log: Logger;
  private readonly topic: string;
  private readonly definition: TopicDefinition | undefined;
  private readonly deadLetters: DeadLetterWriter;
  private consumer: Consumer | undefined;
  private crashed: Error | undefined;
  private readonly latch = new StoppedLatch();
  private readonly listeners = new Set<(applied: AppliedAdaptation) => void>();

  constructor(options: SystemAdapterOptions) {
    this.options = options;
    this.groupId = options.groupId ?? `${options.prefix}.orchestrator.adaptation`;
    this.topic = topicName(options.prefix, 'metrics');
    this.definition = options.definitions.find((d) => d.name === 'metrics');
    this.log = options.logger.child({ ns: 'adaptation', group: this.groupId });
    this.deadLetters = new DeadLetterWriter({
      producer: options.producer,
      codec: options.codec,
      topic: topicName(options.prefix, 'dead-letters'),
      producerId: `orchestrator:${this.groupId}`,
      consumerGroup: this.groupId,
      logger: this.log,
      ...(options.metrics ? { metrics: options.metrics } : {}),
    });
  }

  /** Set when kafkajs reported a crash it will not restart from. */
  get crash(): Error | undefined {
    return this.crashed;
  }

  /** Resolves with the cause when the adaptation loop's consumer has stopped for good. */
  get stoppedForGood(): Promise<Error> {
    return this.latch.stoppedForGood;
  }

  /** Calls `listener` after each planned change was applied or refused; returns a function that removes it. */
  onAdaptation(listener: (applied: AppliedAdaptation) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    const consumer = this.options.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 200 });
    this.consumer = consumer;
    consumer.on(consumer.events.CRASH, ({ payload }) => {
      if (!payload.restart) {
        this.crashed = payload.error;
        this.latch.stop(payload.error);
      }
      this.log[payload.restart ? 'warn' : 'error']({ error: describeError(payload.error), restart: payload.restart }, 'consumer crashed');
    });
    const joined = joinedAndFetched(consumer);
    await consumer.connect();
    await consumer.subscribe({ topic: this.topic, fromBeginning: false });
    await consumer.run({
      eachBatch: async ({ batch, heartbeat }) => {
        const samples: MetricSample[] = [];
        for (const message of batch.messages) {
          const sample = await this.decode(batch.topic, batch.partition, message);
          if (sample) samples.push(sample);
        }
        if (samples.length > 0) await this.adapt(samples);
        await heartbeat();
      },
    });
    await this.pinUncommitted(await joined);
  }

  async stop(): Promise<void> {
    await this.consumer?.disconnect();
    this.consumer = undefined;
  }

  /** Plans and applies the changes one batch of samples calls for. Exposed for callers that feed samples themselves. */
  async adapt(samples: MetricSample[]): Promise<AppliedAdaptation[]> {
    const ids = this.options.ids;
    const variables = (await this.options.variables.all()).filter((v) => !ids || ids.includes(v.id));
    const { changes, problems } = planAdaptations(variables, samples, this.options.functions ?? sharedFunctions());
    for (const p of problems) this.log.error({ variable: p.variableId }, `adaptation skipped: ${p.reason}`);
    const results: AppliedAdaptation[] = [];
    for (const change of changes) {
      let result: AppliedAdaptation['result'];
      try {
        const applied = await this.options.variables.set(change.variableId, change.value, { cause: 'adaptation', expectedVersion: change.expectedVersion, trigger: change.trigger });
        this.log.info({ variable: change.variableId, version: applied.version, reason: change.trigger.reason }, 'variable adapted');
        result = { applied };
      } catch (error) {
        if (!isMabeamError(error, 'VARIABLE_REJECTED')) throw error;
        const code = typeof error.details['reasonCode'] === 'string' ? error.details['reasonCode'] : 'UNKNOWN';
        this.log.warn({ variable: change.variableId, reasonCode: code, reason: error.message }, 'adaptation refused by the variable owners');
        result = { rejected: code, reason: error.message };
      }
      const applied: AppliedAdaptation = { change, result };
      results.push(applied);
      for (const listener of this.listeners) listener(applied);
    }
    return results;
  }

  private async decode(topic: string, partition: number, message: KafkaMessage): Promise<MetricSample | undefined> {
    const key = message.key ? message.key.toString('utf8') : null;
    try {
      const decoded = await this.options.codec.decode(message.value, this.definition ? { allowedTypes: this.definition.eventTypes } : {});
      if (decoded.type !== 'MetricSample') throw new MabeamError('UNEXPECTED_EVENT_TYPE', `The metrics topic carries MetricSample events, not ${decoded.type}.`);
      const sample = decoded.event as unknown as MetricSample;
      if (key !== sample.source) {
        throw new MabeamError('VALIDATION_FAILED', `Invalid MetricSample: the message key ${key === null ? 'is missing' : `is "${key}"`} but metrics is keyed by source ("${sample.source}")`, {
          details: { schemaId: decoded.schemaId },
        });
      }
      return sample;
    } catch (error) {
      if (isMabeamError(error) && error.retriable) throw error;
      await this.deadLetters.write(
        { topic, partition, offset: message.offset, timestamp: message.timestamp, key: message.key, value: message.value, ...(message.headers ? { headers: message.headers } : {}) },
        error,
      );
      return undefined;
    }
  }

  /**
   * A partition the group never committed would be read from wherever
   * "latest" is when it is next assigned, skipping what arrived meanwhile.
   * So, once, each such partition gets its current end committed.
   */
  private async pinUncommitted(assignment: Record<string, number[]>): Promise<void> {
    const partitions = assignment[this.topic] ?? [];
    if (partitions.length === 0) return;
    const admin = this.options.kafka.admin();
    await admin.connect();
    try {
      const [committed] = await admin.fetchOffsets({ groupId: this.groupId, topics: [this.topic] });
      const open = (committed?.partitions ?? []).filter((p) => Number(p.offset) < 0 && partitions.includes(p.partition)).map((p) => p.partition);
      if (open.length === 0) return;
      const ends = new Map((await admin.fetchTopicOffsets(this.topic)).map((e) => [e.partition, e.high]));
      await this.consumer!.commitOffsets(open.map((partition) => ({ topic: this.topic, partition, offset: ends.get(partition) ?? '0' })));
    } finally {
      await admin.disconnect();
    }
  }
}
