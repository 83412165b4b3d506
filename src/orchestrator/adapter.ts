/**
 * The adaptation loop: a decider on the engine (src/engine/) over the
 * `metrics` topic that applies adaptation functions to performance samples
 * (see adaptation.ts for which samples a variable gets and when a change is
 * planned).
 *
 * Rules:
 * - Samples are keyed by their source, so one source's samples stay in
 *   order on one partition. Each partition's samples since its last commit
 *   are planned together: every variable's current record, the functions,
 *   and the changes they call for — each a VariableChangeRequested (cause
 *   `adaptation`, `expectedVersion` = the version the function saw, the
 *   trigger naming the samples) written in the same transaction as the
 *   samples' offsets. So a sample leads to its change request exactly once,
 *   whatever crashes; the request's event id derives from the variable and
 *   the samples. The owners then decide it like any other change, and
 *   `onAdaptation` listeners hear what they decided.
 * - A message that is not a MetricSample, cannot be decoded, or whose key is
 *   not its source goes to dead-letters and the adapter moves on.
 * - The group (`<prefix>.orchestrator.adaptation` by default) starts at the
 *   end of the topic the first time it runs and commits that end at once, so
 *   later it always resumes from its committed positions; start() resolves
 *   once the consumer has joined and fetched: samples produced after start()
 *   are seen.
 */
import type { Kafka, Producer } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { Processor } from '../engine/processor.ts';
import type { Outputs } from '../engine/outputs.ts';
import type { Decider, InputRecord } from '../engine/types.ts';
import { MabeamError, describeError, isMabeamError } from '../errors.ts';
import { deterministicEventId, newEnvelope } from '../events/envelope.ts';
import type { MetricSample, VariableChangeRequested } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import type { StopsForGood } from '../runtime/stopped.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';
import type { VariableAccess, VariableRecord } from '../variables/types.ts';
import { planAdaptations, type PlannedChange } from './adaptation.ts';
import { sharedFunctions, type FunctionRegistry } from './functions.ts';

export interface SystemAdapterOptions {
  kafka: Kafka;
  codec: EventCodec;
  /** Kept for callers that pass one; the adapter writes through its own transactional producers. */
  producer?: Pick<Producer, 'send'>;
  logger: Logger;
  prefix: string;
  definitions: TopicDefinition[];
  /**
   * The variables: `all` for the current records; `answerTo` (VariablesClient
   * has it) to hear how the owners answered a request; `set` for `adapt()`.
   */
  variables: Pick<VariableAccess, 'all' | 'set'> & { answerTo?(requestId: string, variableId: string, timeoutMs?: number): Promise<VariableRecord> };
  /** Only these variables adapt (default: every variable with an adaptation function). */
  ids?: string[];
  functions?: FunctionRegistry;
  /** Consumer group; default `<prefix>.orchestrator.adaptation`. */
  groupId?: string;
  metrics?: Metrics;
  sessionTimeoutMs?: number;
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
  private readonly requestTopic: string;
  private readonly processor: Processor<PlannedChange>;
  private readonly listeners = new Set<(applied: AppliedAdaptation) => void>();
  /** Per partition: the samples read since its last commit. */
  private readonly samples = new Map<number, MetricSample[]>();
  private stopped: Error | undefined;

  constructor(options: SystemAdapterOptions) {
    this.options = options;
    this.groupId = options.groupId ?? `${options.prefix}.orchestrator.adaptation`;
    this.topic = topicName(options.prefix, 'metrics');
    this.requestTopic = topicName(options.prefix, 'variable-requests');
    this.log = options.logger.child({ ns: 'adaptation', group: this.groupId });
    const allowedTypes = options.definitions.find((d) => d.name === 'metrics')?.eventTypes ?? ['io.mabeam.events.MetricSample'];
    const decider: Decider<PlannedChange> = {
      inputs: [this.topic],
      restore: async (partitions) => {
        for (const p of partitions) this.samples.delete(p);
      },
      decide: (record) => this.decide(record, allowedTypes),
      beforeCommit: (p, out) => this.plan(p, out),
      release: (p) => this.samples.delete(p),
    };
    this.processor = new Processor<PlannedChange>({
      kafka: options.kafka,
      codec: options.codec,
      logger: this.log,
      groupId: this.groupId,
      producerId: `orchestrator:${this.groupId}`,
      decider,
      prefix: options.prefix,
      metrics: options.metrics,
      sessionTimeoutMs: options.sessionTimeoutMs,
      startAt: 'end',
    });
    void this.processor.stoppedForGood.then((error) => (this.stopped = error));
  }

  /** Set once the adaptation loop has stopped for good. */
  get crash(): Error | undefined {
    return this.stopped;
  }

  /** Resolves with the cause when the adaptation loop has stopped for good. */
  get stoppedForGood(): Promise<Error> {
    return this.processor.stoppedForGood;
  }

  /** Calls `listener` after each planned change was applied or refused; returns a function that removes it. */
  onAdaptation(listener: (applied: AppliedAdaptation) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  async start(): Promise<void> {
    await this.options.codec.schemaId('VariableChangeRequested');
    await this.processor.start();
  }

  async stop(): Promise<void> {
    await this.processor.stop();
  }

  /**
   * Plans and applies the changes one batch of samples calls for, through
   * `variables.set` (at least once: for callers that feed samples themselves;
   * the loop over the topic writes its requests in its transactions).
   */
  async adapt(samples: MetricSample[]): Promise<AppliedAdaptation[]> {
    const results: AppliedAdaptation[] = [];
    for (const change of await this.planned(samples)) {
      let result: AppliedAdaptation['result'];
      try {
        const applied = await this.options.variables.set(change.variableId, change.value, { cause: 'adaptation', expectedVersion: change.expectedVersion, trigger: change.trigger });
        result = { applied };
      } catch (error) {
        if (!isMabeamError(error, 'VARIABLE_REJECTED')) throw error;
        result = { rejected: typeof error.details['reasonCode'] === 'string' ? error.details['reasonCode'] : 'UNKNOWN', reason: error.message };
      }
      results.push(this.tell(change, result));
    }
    return results;
  }

  private async planned(samples: MetricSample[]): Promise<PlannedChange[]> {
    const ids = this.options.ids;
    const variables = (await this.options.variables.all()).filter((v) => !ids || ids.includes(v.id));
    const { changes, problems } = planAdaptations(variables, samples, this.options.functions ?? sharedFunctions());
    for (const p of problems) this.log.error({ variable: p.variableId }, `adaptation skipped: ${p.reason}`);
    return changes;
  }

  private tell(change: PlannedChange, result: AppliedAdaptation['result']): AppliedAdaptation {
    if ('applied' in result) this.log.info({ variable: change.variableId, version: result.applied.version, reason: change.trigger.reason }, 'variable adapted');
    else this.log.warn({ variable: change.variableId, reasonCode: result.rejected, reason: result.reason }, 'adaptation refused by the variable owners');
    const applied: AppliedAdaptation = { change, result };
    for (const listener of this.listeners) listener(applied);
    return applied;
  }

  private async decide(record: InputRecord, allowedTypes: string[]): Promise<void> {
    const decoded = await this.options.codec.decode(record.message.value, { allowedTypes });
    if (decoded.type !== 'MetricSample') throw new MabeamError('UNEXPECTED_EVENT_TYPE', `The metrics topic carries MetricSample events, not ${decoded.type}.`);
    const sample = decoded.event;
    const key = record.message.key?.toString('utf8') ?? null;
    if (key !== sample.source) {
      throw new MabeamError('VALIDATION_FAILED', `Invalid MetricSample: the message key ${key === null ? 'is missing' : `is "${key}"`} but metrics is keyed by source ("${sample.source}")`, {
        details: { schemaId: decoded.schemaId },
      });
    }
    let list = this.samples.get(record.partition);
    if (!list) this.samples.set(record.partition, (list = []));
    list.push(sample);
  }

  /** The partition's samples since its last commit become change requests in its transaction. */
  private async plan(partition: number, out: Outputs<PlannedChange>): Promise<void> {
    const samples = this.samples.get(partition) ?? [];
    if (samples.length === 0) return;
    this.samples.delete(partition);
    const producerId = `orchestrator:${this.groupId}`;
    for (const change of await this.planned(samples)) {
      const eventId = deterministicEventId('adaptation', change.variableId, String(change.expectedVersion), ...change.trigger.metrics.map((m) => m.eventId));
      const request: VariableChangeRequested = {
        envelope: newEnvelope('VariableChangeRequested', producerId, { correlationId: change.variableId, eventId }),
        requesterId: producerId, variableId: change.variableId, value: JSON.stringify(change.value), expectedVersion: change.expectedVersion,
        cause: 'adaptation', trigger: JSON.stringify(change.trigger), definition: null,
      };
      out.add(this.requestTopic, { key: change.variableId, value: await this.options.codec.encode('VariableChangeRequested', request), headers: { [eventHeaders.type]: 'VariableChangeRequested', [eventHeaders.id]: eventId } });
      out.decisions.push(change);
      // Listen before the request can be answered (its transaction has not committed yet).
      this.options.variables
        .answerTo?.(eventId, change.variableId)
        .then(
          (applied) => this.tell(change, { applied }),
          (error: unknown) => {
            if (isMabeamError(error, 'VARIABLE_REJECTED') && error.details['reasonCode'] !== 'NO_ANSWER') {
              this.tell(change, { rejected: String(error.details['reasonCode']), reason: error.message });
            } else this.log.warn({ variable: change.variableId, error: describeError(error) }, 'no answer heard about an adaptation');
          },
        );
    }
  }
}
