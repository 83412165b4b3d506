/**
 * The live state of a deployment, for people watching it: the latest
 * rounds, the agents, the variables' current values, the studies and the
 * dead letters, kept current as the log moves, with every change told to
 * listeners.
 *
 * - Rounds, studies and dead letters: one throw-away consumer (committed data
 *   only, group `<prefix>.read.view.<random>`, nothing committed) of the round
 *   topics, `studies` and `dead-letters`, started at most
 *   `recordsPerPartition` records before each partition's end, so it starts
 *   fast on long logs.
 * - Variables: the compacted `variables` topic, read whole (VariableLog).
 * - Agents: the agent registry (its Redis views of agents, lifecycle and
 *   heartbeats), read again every `agentPollMs`; a row is told when its state
 *   or health changes.
 *
 * An undecodable record is skipped here (the topic's own consumers dead-letter
 * it); the view stops for good when its consumer crashes for good.
 */
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Consumer, EachBatchPayload, KafkaMessage } from 'kafkajs';
import type { Subscription } from 'rxjs';
import { AgentRegistry } from '../agents/registry.ts';
import { roundTopicNames } from '../audit/round.ts';
import { typedEvent } from '../codec/codec.ts';
import { MabeamError, describeError, isMabeamError } from '../errors.ts';
import { joinedAndFetched } from '../kafka/client.ts';
import { ReadPositions, fetchEnds, isRetriable, partitionKey, retryRetriable } from '../kafka/readToEnd.ts';
import { isStudyEvent } from '../optimizer/study/run.ts';
import { readStudies } from '../optimizer/study/studyLog.ts';
import { sharedProtocols } from '../protocols/builtins.ts';
import { StoppedLatch, type StopsForGood } from '../runtime/stopped.ts';
import { logicalTopicName, topicName, readerGroupId } from '../topics/names.ts';
import { VariableLog } from '../variables/variableLog.ts';
import type { VariableRecord } from '../variables/types.ts';
import { AgentBoard, type AgentFilter } from './agents.ts';
import { DeadLetterBoard } from './deadLetters.ts';
import { liveTuning, type LiveTuning, type LiveViewOptions } from './options.ts';
import { RoundBoard, isRoundInput } from './rounds.ts';
import { StudyBoard } from './studies.ts';
import type { AgentRow, DeadLetters, LiveEvent, LiveListener, Overview, RoundStatus, RoundSummary, StudySummary, VariableRow } from './types.ts';

/** How long study changes are gathered before they are told (a busy study writes many events a second). */
const studyCoalesceMs = 200;

const variableRow = (r: VariableRecord): VariableRow => ({ variableId: r.id, value: r.value, version: r.version, updatedAt: r.eventTime });

export class LiveView implements StopsForGood {
  readonly instanceId: string;
  readonly groupId: string;
  readonly prefix: string;
  readonly startedAt = Date.now();
  private readonly o: LiveViewOptions;
  private readonly tuning: LiveTuning;
  private readonly topics: string[];
  private readonly listeners = new Set<LiveListener>();
  private readonly latch = new StoppedLatch();
  private readonly positions = new ReadPositions();
  private readonly registry: AgentRegistry;
  private readonly variableLog: VariableLog;
  private readonly rounds: RoundBoard;
  private readonly studyBoard: StudyBoard;
  private readonly deadLetterBoard: DeadLetterBoard;
  private readonly agentBoard: AgentBoard;
  private consumer: Consumer | undefined;
  private variableChanges: Subscription | undefined;
  private pollTimer: NodeJS.Timeout | undefined;
  private polling = false;
  private pollFailing = false;
  private readonly studiesMoved = new Set<string>();
  private studyTimer: NodeJS.Timeout | undefined;
  private stopping = false;

  constructor(options: LiveViewOptions) {
    this.o = options;
    this.tuning = liveTuning(options);
    this.prefix = options.prefix;
    this.instanceId = options.instanceId ?? `view-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.groupId = readerGroupId(options.prefix, 'view');
    this.topics = [...roundTopicNames, 'studies', 'dead-letters'].map((n) => topicName(options.prefix, n));
    this.registry = new AgentRegistry({
      kafka: options.kafka, redis: options.redis, codec: options.codec, producer: options.producer, logger: options.logger, prefix: options.prefix, definitions: options.definitions,
      viewName: `view:${this.instanceId}`,
      disposable: true,
    });
    this.variableLog = new VariableLog({ kafka: options.kafka, codec: options.codec, logger: options.logger, prefix: options.prefix });
    this.rounds = new RoundBoard({ protocols: options.protocols ?? sharedProtocols(), maxRounds: this.tuning.maxRounds });
    this.deadLetterBoard = new DeadLetterBoard(this.tuning.latestDeadLetters);
    this.agentBoard = new AgentBoard(this.registry);
    const studies = topicName(options.prefix, 'studies');
    this.studyBoard = new StudyBoard({
      logger: options.logger,
      maxStudies: this.tuning.maxStudies,
      onChange: (studyId) => this.studyMoved(studyId),
      readBefore: async (studyId, partition, until) => {
        const runs = await readStudies({
          kafka: options.kafka, codec: options.codec, logger: options.logger, topic: studies, partitions: [partition], studyId, verify: false,
          until: new Map([[partitionKey(studies, partition), until]]),
        });
        return runs.get(partition)?.get(studyId);
      },
    });
  }

  get stoppedForGood(): Promise<Error> {
    return this.latch.stoppedForGood;
  }

  /** Resolves once every part reads: the consumer has joined and fetched, the variables and the agents are read. */
  async start(): Promise<void> {
    this.variableLog.stoppedForGood.then((error) => this.latch.stop(error), () => undefined);
    this.variableChanges = this.variableLog.changes.subscribe((r) => this.emit({ type: 'variable', data: variableRow(r) }));
    await Promise.all([this.startConsumer(), this.variableLog.start(), this.startAgents()]);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    clearInterval(this.pollTimer);
    clearTimeout(this.studyTimer);
    this.studyBoard.stop();
    this.variableChanges?.unsubscribe();
    this.listeners.clear();
    await Promise.allSettled([this.consumer?.disconnect(), this.variableLog.stop(), this.registry.stop()]);
  }

  /** Resolves once everything committed before the call has been read (the round topics, studies, dead letters and variables). */
  async caughtUp(timeoutMs = 30_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    const ends = await fetchEnds(this.o.kafka, this.topics, undefined, deadline);
    while (this.positions.behind(ends).length > 0) {
      if (this.latch.error) throw this.latch.error;
      if (Date.now() > deadline) throw new MabeamError('LOG_READ_TIMEOUT', `The view did not read ${this.topics.join(', ')} to their end within ${timeoutMs} ms (not yet read: ${this.positions.describe(ends)}).`);
      await sleep(20);
    }
    await this.variableLog.caughtUp(Math.max(1, deadline - Date.now()));
  }

  /** Tells `listener` every change from now on; returns the function that stops it. */
  subscribe(listener: LiveListener): () => void {
    this.listeners.add(listener);
    return () => void this.listeners.delete(listener);
  }

  get listenerCount(): number {
    return this.listeners.size;
  }

  overview(): Overview {
    return {
      prefix: this.prefix, agents: this.agentBoard.size, rounds: this.rounds.size, variables: this.variableLog.all().length, studies: this.studyBoard.size,
      deadLetters: this.deadLetterBoard.size, startedAt: this.startedAt,
    };
  }

  agents(filter: AgentFilter = {}): AgentRow[] {
    return this.agentBoard.list(filter);
  }

  roundList(filter: { protocol?: string; status?: RoundStatus; limit?: number } = {}): RoundSummary[] {
    return this.rounds.list(filter);
  }

  round(roundId: string): RoundSummary | undefined {
    return this.rounds.get(roundId);
  }

  variables(): VariableRow[] {
    return this.variableLog.all().map(variableRow);
  }

  studies(): StudySummary[] {
    return this.studyBoard.list();
  }

  deadLetters(): DeadLetters {
    return this.deadLetterBoard.list();
  }

  private emit(event: LiveEvent): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(event);
      } catch (error) {
        this.o.logger.warn({ ns: 'view', event: event.type, error: describeError(error) }, 'a listener of the live view failed');
      }
    }
  }

  private async startConsumer(): Promise<void> {
    const o = this.o;
    // Where each partition is read from: at most recordsPerPartition before its end.
    const ends = await fetchEnds(o.kafka, this.topics);
    for (const e of ends) this.positions.advance(e.topic, e.partition, Math.max(e.low, e.high - this.tuning.recordsPerPartition));
    const consumer = o.kafka.consumer({ groupId: this.groupId, maxWaitTimeInMs: 100, readUncommitted: false });
    this.consumer = consumer;
    this.latch.watch(consumer);
    this.positions.followFilteredBatches(consumer);
    this.positions.resumeOnJoin(consumer);
    const ready = joinedAndFetched(consumer);
    await consumer.connect();
    await consumer.subscribe({ topics: this.topics, fromBeginning: false });
    await consumer.run({ autoCommit: false, eachBatchAutoResolve: false, eachBatch: (payload) => this.batch(payload) });
    await ready;
  }

  private async batch({ batch, resolveOffset, heartbeat, isRunning }: EachBatchPayload): Promise<void> {
    const logical = logicalTopicName(this.prefix, batch.topic);
    for (const message of batch.messages) {
      if (!isRunning() || this.stopping || this.latch.error) return;
      const offset = Number(message.offset);
      if (offset >= (this.positions.get(batch.topic, batch.partition) ?? 0)) {
        try {
          await retryRetriable(() => this.take(logical, batch.topic, batch.partition, message), {
            stopped: () => this.stopping || !isRunning(),
            heartbeat,
            onRetry: (error, attempt) => this.o.logger.warn({ ns: 'view', topic: batch.topic, partition: batch.partition, offset: message.offset, attempt, error: describeError(error) }, 'reading a record again'),
          });
        } catch (error) {
          if (this.stopping || !isRunning()) return;
          this.fail(new MabeamError('HANDLER_FAILED', `The live view stopped at ${batch.topic}/${batch.partition}@${message.offset}: ${describeError(error)}`, { cause: error }));
          return;
        }
      }
      resolveOffset(message.offset);
      this.positions.advance(batch.topic, batch.partition, offset + 1);
    }
    this.positions.batchDone(batch);
  }

  /** One record: decoded and folded in. Only a retriable failure (the registry unreachable) is thrown, to read it again. */
  private async take(logical: string | undefined, topic: string, partition: number, message: KafkaMessage): Promise<void> {
    let decoded;
    try {
      decoded = await this.o.codec.decode(message.value);
    } catch (error) {
      if (isRetriable(error)) throw error;
      this.o.logger.debug({ ns: 'view', topic, partition, offset: message.offset, code: isMabeamError(error) ? error.code : undefined, error: describeError(error) }, 'an undecodable record; skipped');
      return;
    }
    const offset = Number(message.offset);
    try {
      if (logical === 'studies') {
        if (isStudyEvent(decoded)) this.studyBoard.apply(typedEvent(decoded), partition, offset);
      } else if (logical === 'dead-letters') {
        if (decoded.type === 'DeadLetter') this.emit({ type: 'dead-letter', data: this.deadLetterBoard.apply(decoded.event) });
      } else if (isRoundInput(decoded)) {
        const changed = this.rounds.apply(typedEvent(decoded));
        if (changed) this.emit({ type: 'round', data: changed });
      }
    } catch (error) {
      this.o.logger.warn({ ns: 'view', topic, partition, offset: message.offset, type: decoded.type, error: describeError(error) }, 'a record the view could not fold in; skipped');
    }
  }

  private fail(error: Error): void {
    if (this.latch.error) return;
    this.latch.stop(error);
    this.o.logger.error({ ns: 'view', error: describeError(error) }, 'the live view stopped for good');
    const consumer = this.consumer;
    // Stopping waits for the batch in hand, so not from inside it.
    setImmediate(() => void consumer?.stop().catch(() => undefined));
  }

  private async startAgents(): Promise<void> {
    await this.registry.start();
    await this.registry.caughtUp();
    await this.pollAgents();
    this.pollTimer = setInterval(() => void this.pollAgents(), this.tuning.agentPollMs);
  }

  private async pollAgents(): Promise<void> {
    if (this.polling || this.stopping) return;
    this.polling = true;
    try {
      for (const row of await this.agentBoard.refresh()) this.emit({ type: 'agent', data: row });
      if (this.pollFailing) this.o.logger.warn({ ns: 'view' }, 'reading the agent registry works again');
      this.pollFailing = false;
    } catch (error) {
      // Redis or the cluster away for a while: said once, tried again on the next tick.
      if (!this.pollFailing && !this.stopping) this.o.logger.warn({ ns: 'view', error: describeError(error) }, 'could not read the agent registry; trying again');
      this.pollFailing = true;
    } finally {
      this.polling = false;
    }
  }

  private studyMoved(studyId: string): void {
    this.studiesMoved.add(studyId);
    if (this.studyTimer || this.stopping) return;
    this.studyTimer = setTimeout(() => {
      this.studyTimer = undefined;
      const moved = [...this.studiesMoved];
      this.studiesMoved.clear();
      for (const id of moved) this.emit({ type: 'study', data: { studyId: id } });
    }, studyCoalesceMs);
  }
}
