/**
 * Runs coordination rounds over Kafka: the round decider on the engine
 * (src/engine/). Coordinators form one consumer group
 * (`<prefix>.coordinators`) on the co-partitioned round topics
 * (bid-requests, bids, proposals, votes, outcomes), keyed by round id, so
 * one instance owns each round; a record a producer put on another partition
 * is moved to its own first (engine routing).
 *
 * Per partition the records go, in log order, into the `coordinate()`
 * operator (RoundLane); what it decides — rejections, round closings,
 * outcomes, award directives, the next stage of an iterative round — is
 * written with the consumed offsets and the round-state changelog in one
 * transaction of that partition's fenced producer. A deadline is a timer
 * whose decision (RoundClosed, cause "deadline") is written before it is
 * acted on. A closed round leaves memory after a grace period of log time,
 * with a tombstone in round-state; a new owner restores only from the
 * oldest live round's changelog record on.
 */
import type { Context } from '@opentelemetry/api';
import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kafka } from 'kafkajs';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import { describeError, MabeamError } from '../errors.ts';
import { deterministicEventId } from '../events/envelope.ts';
import { Processor } from '../engine/processor.ts';
import type { Outputs } from '../engine/outputs.ts';
import type { Decider, InputRecord, Lane } from '../engine/types.ts';
import { readToEnd } from '../kafka/readToEnd.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import { sharedProtocols } from '../protocols/builtins.ts';
import { waitedTooLong } from '../protocols/roundsInternals.ts';
import type { ProtocolRegistry } from '../protocols/registry.ts';
import type { ProtocolKind, Rejected, RoundDecision, RoundEvent } from '../protocols/types.ts';
import { KeyDirectoryFollower } from '../security/directoryFollower.ts';
import { signaturesRequired } from '../security/signing.ts';
import { isSignatureRefusalCode } from '../security/verify.ts';
import type { StopsForGood } from '../runtime/stopped.ts';
import { contextOf, messagingSpan } from '../tracing/trace.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';
import { fromRoundState, install, snapshotOf, toRoundState, type RoundSnapshot } from './changelog.ts';
import { Deadlines } from './deadlines.ts';
import { toOutputs, toRoundEvent, type Output } from './events.ts';
import { RoundLane } from './roundLane.ts';

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
   * it wrote until the broker aborts it (or the partition's next owner fences
   * it): keep it short. Default 5 000.
   */
  transactionTimeoutMs?: number;
  metrics?: Metrics;
  /**
   * How long a batch that decides nothing (answers counted, a round opened)
   * may wait for the transaction that commits it, in ms. Batches that decide
   * something are written at once. Default 200.
   */
  idleFlushMs?: number;
  /** How long (log time) a closed round stays, answering late answers with ROUND_CLOSED. Default 60 000. */
  closedRoundGraceMs?: number;
  /**
   * Refuse bids and votes that are not signed by their agent's registered
   * key (Rejection FORGED, UNKNOWN_KEY or KEY_EXPIRED; src/security/).
   * Default off, unless MABEAM_REQUIRE_SIGNATURES=1.
   */
  requireSignatures?: boolean;
}

/** How far ahead of this machine's clock a partition's log time may run (producers' clocks are not trusted further). */
const maxClockAheadMs = 60_000;

/** How long a partition must have had no records before the clock moves it on. */
const quietLaneMs = 5_000;

/** The topics a coordinator decides from, all keyed by round id and co-partitioned. */
const inputNames = ['bid-requests', 'bids', 'proposals', 'votes', 'outcomes'] as const;

/** What a transaction decided, with what the metrics need once it commits. */
interface Decided {
  decision: RoundDecision;
  kind: ProtocolKind | undefined;
  openedAt: number | undefined;
  /** The topic of the record that led to it. */
  topic?: string;
}

const outputTypes = ['Rejection', 'RoundClosed', 'RoundOutcome', 'Directive', 'BidRequest', 'Proposal', 'RoundState'] as const;

export class Coordinator implements StopsForGood {
  readonly groupId: string;
  readonly instanceId: string;
  private readonly options: CoordinatorOptions;
  private readonly log: Logger;
  private readonly processor: Processor<Decided>;
  private readonly lanes = new Map<number, RoundLane>();
  private readonly deadlines = new Deadlines();
  private readonly allowed: Map<string, string[]>;
  private readonly stateTopic: string;
  private readonly graceMs: number;
  /** The trace context of each open round's request (until its outcome). */
  private readonly traces = new Map<string, Context>();
  /** The agents' keys, when signatures are required. */
  private readonly keys: KeyDirectoryFollower | undefined;

  constructor(options: CoordinatorOptions) {
    this.options = options;
    this.groupId = `${options.prefix}.coordinators`;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = options.logger.child({ ns: 'coordinator', instance: this.instanceId });
    this.stateTopic = topicName(options.prefix, 'round-state');
    this.graceMs = options.closedRoundGraceMs ?? 60_000;
    if (signaturesRequired(options.requireSignatures)) {
      this.keys = new KeyDirectoryFollower({ kafka: options.kafka, codec: options.codec, prefix: options.prefix, groupPrefix: 'coordinator-keys', logger: this.log });
    }
    this.allowed = new Map(
      inputNames.map((name) => {
        const definition = options.definitions.find((d) => d.name === name);
        if (!definition) throw new MabeamError('INVALID_OPTIONS', `The coordinator needs the topic definition "${name}" (topics/${name}.json).`);
        return [topicName(options.prefix, name), definition.eventTypes];
      }),
    );
    const decider: Decider<Decided> = {
      inputs: [...this.allowed.keys()],
      stateTopics: [this.stateTopic],
      restore: (p, committed) => this.restore(p, committed),
      decide: (record, lane) => this.decide(record, lane),
      // Reading back its own outcomes changes no round: those offsets wait for the next transaction.
      changed: (p) => {
        const rounds = this.lanes.get(p);
        return rounds === undefined || rounds.dirty.size > 0 || rounds.gone.size > 0;
      },
      beforeCommit: (p, out) => this.writeChangelog(p, out),
      stateOffsets: (p) => {
        const start = this.lanes.get(p)?.liveStart();
        return start === undefined ? [] : [{ topic: this.stateTopic, offset: start }];
      },
      committed: (_p, decisions) => this.observe(decisions),
      release: (p) => this.release(p),
    };
    this.processor = new Processor<Decided>({
      kafka: options.kafka,
      codec: options.codec,
      logger: this.log,
      groupId: this.groupId,
      producerId: this.instanceId,
      decider,
      prefix: options.prefix,
      metrics: options.metrics,
      sessionTimeoutMs: options.sessionTimeoutMs,
      transactionTimeoutMs: options.transactionTimeoutMs ?? 5_000,
      idleFlushMs: options.idleFlushMs ?? 200,
    });
  }

  get stoppedForGood(): Promise<Error> {
    return this.keys ? Promise.race([this.processor.stoppedForGood, this.keys.stoppedForGood]) : this.processor.stoppedForGood;
  }

  /** Whether this coordinator refuses answers that are not signed by their agent's key. */
  get verifiesSignatures(): boolean {
    return this.keys !== undefined;
  }

  /** Rounds held in memory, open or closed within the grace period, and answers waiting for their round. */
  get held(): { rounds: number; pending: number; timers: number } {
    let rounds = 0;
    let pending = 0;
    for (const lane of this.lanes.values()) {
      rounds += lane.rounds.byId.size;
      pending += lane.rounds.pending.size;
    }
    return { rounds, pending, timers: this.deadlines.size };
  }

  private get protocols(): ProtocolRegistry {
    return this.options.protocols ?? sharedProtocols();
  }

  private readonly lookup = (name: string) => this.protocols.get(name);

  async start(): Promise<void> {
    // Every output's schema id is known before the first decision, so encoding a decision never waits on the registry.
    await Promise.all(outputTypes.map((t) => this.options.codec.schemaId(t)));
    // The keys known when it starts are read before the first answer is judged.
    await this.keys?.start();
    await this.processor.start();
    this.sweeper ??= setInterval(() => this.sweep(), 1_000);
    this.sweeper.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.sweeper);
    this.sweeper = undefined;
    this.deadlines.clearAll();
    await this.processor.stop();
    await this.keys?.stop();
  }

  private sweeper: NodeJS.Timeout | undefined;

  /**
   * A partition without traffic has a log time that stands still: answers
   * waiting there for a round that never opens, and closed rounds, would
   * stay. Once a second the clock moves such a lane on; what that refuses is
   * written (the Rejection) before it counts, and a round's outcome never
   * depends on it (RoundClosed names the answers counted).
   */
  private sweep(): void {
    const now = Date.now();
    for (const [partition, rounds] of this.lanes) {
      // Only a lane that has read what there is: one still behind (a request not yet read) moves on by its own records.
      if ((this.processor.idleFor(partition) ?? 0) < quietLaneMs) continue;
      const clock = { now: Math.max(rounds.logTime, now) };
      const expiredAnswer = [...rounds.rounds.pending.values()].some((answers) => answers.some((a) => waitedTooLong(a, clock)));
      const oldest = rounds.closedAt.values().next();
      const expiredRound = !oldest.done && oldest.value + this.graceMs < now;
      if (!expiredAnswer && !expiredRound) continue;
      this.processor
        .inject(partition, async (lane) => {
          if (this.lanes.get(partition) !== rounds) return;
          rounds.logTime = Math.max(rounds.logTime, now);
          const decisions = rounds.rounds.pending.size > 0 ? rounds.apply({ type: 'tick', now: rounds.logTime }) : [];
          rounds.expire(this.graceMs);
          await this.stage(partition, rounds, decisions, '', lane);
        })
        .catch((error: unknown) => this.log.error({ partition, error: describeError(error) }, 'moving a quiet partition on failed'));
    }
  }

  private release(partition: number): void {
    this.deadlines.clearPartition(partition);
    const lane = this.lanes.get(partition);
    for (const roundId of lane?.rounds.byId.keys() ?? []) this.traces.delete(roundId);
    lane?.complete();
    this.lanes.delete(partition);
  }

  /** After fencing: each partition's live rounds from the changelog, from the oldest live round's latest record on. */
  private async restore(partitions: readonly number[], committed: ReadonlyMap<number, ReadonlyMap<string, number>>): Promise<void> {
    for (const p of partitions) this.release(p);
    const latest = new Map(partitions.map((p) => [p, new Map<string, { snapshot: RoundSnapshot; offset: number }>()]));
    const from = new Map<string, number>();
    for (const p of partitions) {
      const offset = committed.get(p)?.get(this.stateTopic);
      if (offset !== undefined) from.set(`${this.stateTopic}/${p}`, offset);
    }
    let read = 0;
    const { ends } = await readToEnd(this.options.kafka, {
      topics: [this.stateTopic],
      partitions,
      from,
      groupPrefix: `${this.groupId}.restore`,
      onRecord: async ({ message, offset, partition }) => {
        read++;
        const key = message.key?.toString();
        const states = latest.get(partition);
        if (!key || !states) return;
        if (message.value === null) {
          states.delete(key);
          return;
        }
        try {
          const state = (await this.options.codec.decode(message.value, { allowedTypes: ['io.mabeam.events.RoundState'] })).event;
          states.set(state.roundId, { snapshot: fromRoundState(state), offset: Number(offset) });
        } catch (error) {
          if (error instanceof MabeamError && error.retriable) throw error;
          // Only coordinators write this topic; a record that does not decode is damage, said loudly.
          this.log.error({ partition, offset, error: describeError(error) }, 'a round-state record does not decode; that round is not restored');
        }
      },
    });
    for (const partition of partitions) {
      const lane = new RoundLane(this.lookup);
      lane.changelogEnd = ends.get(`${this.stateTopic}/${partition}`);
      // Closed rounds in the order they closed, so the oldest leaves first.
      const restored = [...(latest.get(partition) ?? [])].sort(([, a], [, b]) => (a.snapshot.closedAt ?? 0) - (b.snapshot.closedAt ?? 0));
      for (const [roundId, { snapshot, offset }] of restored) {
        const how = install(lane.rounds, snapshot, this.lookup);
        if (how === 'unknown-protocol') {
          this.log.error({ roundId, protocol: snapshot.protocol }, 'a restored round names a protocol this coordinator does not have; it is not restored');
          continue;
        }
        lane.stateOffsets.set(roundId, offset);
        // The lane's clock starts where its restored rounds were.
        const times = [snapshot.open?.eventTime ?? 0, snapshot.closedAt ?? 0, ...snapshot.counted.map((a) => a.eventTime), ...snapshot.pending.map((a) => a.eventTime)];
        lane.advance(Math.max(...times), maxClockAheadMs);
        if (snapshot.closed) lane.closedAt.set(roundId, Math.max(snapshot.closedAt ?? 0, snapshot.open?.eventTime ?? 0));
      }
      this.lanes.set(partition, lane);
      for (const [roundId, round] of lane.rounds.byId) if (!round.closed) this.scheduleDeadline(partition, roundId);
    }
    this.log.info({ partitions, read, rounds: this.held.rounds, pending: this.held.pending }, 'partitions restored');
  }

  private async decide(record: InputRecord, lane: Lane<Decided>): Promise<void> {
    const rounds = this.lanes.get(record.partition);
    if (!rounds) throw new MabeamError('HANDLER_FAILED', `partition ${record.partition} is not restored`, { retriable: true });
    const decoded = await this.options.codec.decode(record.message.value, { allowedTypes: this.allowed.get(record.topic) ?? [] });
    const key = record.message.key?.toString() ?? null;
    const roundId = roundIdOf(decoded);
    if (roundId !== undefined && key !== roundId) {
      const field = decoded.type === 'Rejection' ? 'subjectId' : 'roundId';
      throw new MabeamError('VALIDATION_FAILED', `Invalid ${decoded.type}: the message key is ${key === null ? 'missing' : `"${key}"`} but ${record.topic} is keyed by ${field} ("${roundId}")`, {
        details: { schemaId: decoded.schemaId },
      });
    }
    // Before anything else: a refused answer changes nothing, not even the lane's clock.
    const refused = await this.refusedSignature(record, decoded);
    if (refused) {
      await this.stage(record.partition, rounds, [refused], refused.eventId, lane, record);
      return;
    }
    const event = toRoundEvent(decoded);
    // A round's trace is its request's: what the coordinator writes for the round carries it on.
    if (roundId !== undefined && (decoded.type === 'BidRequest' || decoded.type === 'Proposal') && !this.traces.has(roundId)) this.traces.set(roundId, contextOf(record.message.headers));
    const eventTime = (decoded.event as { envelope?: { eventTime?: unknown } }).envelope?.eventTime;
    const request = decoded.type === 'BidRequest' ? 'auction' : decoded.type === 'Proposal' ? 'consensus' : undefined;
    if (typeof eventTime === 'number') rounds.advance(eventTime, maxClockAheadMs, request);
    const decisions: RoundDecision[] = [];
    let causation = '';
    if (event && event.type !== 'tick') {
      causation = event.eventId;
      decisions.push(...rounds.apply(event));
      if (event.type === 'open') this.scheduleDeadline(record.partition, event.roundId);
    }
    // Log time moves on: answers that waited too long for their round are refused, closed rounds leave.
    if (rounds.tickDue()) decisions.push(...rounds.apply({ type: 'tick', now: rounds.logTime, requestsAt: { ...rounds.requestsAt } }));
    rounds.expire(this.graceMs);
    await this.stage(record.partition, rounds, decisions, causation, lane, record);
  }

  /**
   * With signatures required, a bid or vote not signed by the key its agent
   * registered is refused. The check is the pure one replay makes too
   * (checkSignature: the record's bytes, headers and log timestamp against
   * the key directory); only the directory's lookup reads the agents topic.
   */
  private async refusedSignature(record: InputRecord, decoded: DecodedEvent): Promise<Rejected | undefined> {
    if (!this.keys || (decoded.type !== 'Bid' && decoded.type !== 'Vote')) return undefined;
    const answer = decoded.event;
    const m = record.message;
    const refusal = await this.keys.verify({ key: m.key, value: m.value, headers: m.headers, timestamp: Number(m.timestamp) }, answer.agentId);
    if (!refusal) return undefined;
    this.log.warn({ topic: record.topic, partition: record.partition, offset: record.offset, roundId: answer.roundId, agentId: answer.agentId, reasonCode: refusal.reasonCode }, refusal.reason);
    return { type: 'rejected', roundId: answer.roundId, eventId: answer.envelope.eventId, agentId: answer.agentId, reasonCode: refusal.reasonCode, reason: refusal.reason };
  }

  /** Buffers the events the decisions are written as, each checked against its schema first. */
  private async stage(partition: number, rounds: RoundLane, decisions: RoundDecision[], causation: string, lane: Lane<Decided>, record?: InputRecord): Promise<void> {
    const o = this.options;
    for (let decision of decisions) {
      if (decision.type === 'closed' && decision.final) this.deadlines.clear(decision.roundId);
      if (decision.type === 'stage') this.scheduleDeadline(partition, decision.roundId);
      // A refusal is caused by what it refuses; everything else by the event that led to it.
      const cause = decision.type === 'rejected' ? decision.eventId : causation || decision.roundId;
      let outputs = toOutputs(decision, this.instanceId, cause);
      const invalid = firstInvalid(o.codec, outputs);
      if (invalid && decision.type === 'outcome') {
        // A protocol's verdict that is not a valid event (NaN price, …) ends the round as failed, said why.
        decision = { ...decision, status: 'failed', winners: [], price: null, value: null, details: {}, reason: `The protocol's verdict is not a valid outcome: ${invalid}` };
        outputs = toOutputs(decision, this.instanceId, cause);
      } else if (invalid) {
        this.log.error({ roundId: decision.roundId, decision: decision.type, error: invalid }, 'a decision is not a valid event; its cause goes to dead letters');
        if (record) await lane.deadLetter(record, new MabeamError('VALIDATION_FAILED', `a ${decision.type} decision it led to is not a valid event: ${invalid}`));
        continue;
      }
      const round = rounds.rounds.byId.get(decision.roundId);
      lane.out.decisions.push({ decision, kind: round?.open.kind, openedAt: round ? (round.open.openedAt ?? round.open.eventTime) : undefined, ...(record ? { topic: record.topic } : {}) });
      // In the round's trace (its request's; after a failover, that of the record that led here).
      const parent = this.traces.get(decision.roundId) ?? contextOf(record?.message.headers);
      for (const output of outputs) {
        const topic = topicName(o.prefix, output.topic);
        const step = messagingSpan('send', topic, parent, { roundId: decision.roundId, key: output.key, subject: { 'mabeam.event_type': output.type } });
        lane.out.add(topic, { key: output.key, value: await o.codec.encode(output.type, output.event), headers: { ...step.headers, [eventHeaders.type]: output.type, [eventHeaders.id]: output.event.envelope.eventId } });
        step.end();
      }
      // A round that ended, or was never opened (its request refused), needs its trace no more.
      if (decision.type === 'outcome' || !rounds.rounds.byId.has(decision.roundId)) this.traces.delete(decision.roundId);
    }
  }

  /**
   * One changelog record per round the transaction touched, decided from
   * what the round is now: its state when it is open, closed within its
   * grace period or has answers waiting — else (it left, or nothing is
   * known of it) a tombstone if the changelog holds it. A round that left
   * and came back in the same transaction (an answer to it arrived since)
   * gets its new state, not a tombstone.
   */
  private async writeChangelog(partition: number, out: Outputs<Decided>): Promise<void> {
    const rounds = this.lanes.get(partition);
    if (!rounds) return;
    const touched = new Set([...rounds.gone, ...rounds.dirty]);
    rounds.dirty.clear();
    rounds.gone.clear();
    const moved = (offset: number) => {
      rounds.changelogEnd = Math.max(rounds.changelogEnd ?? 0, offset + 1);
    };
    for (const roundId of touched) {
      const snapshot = snapshotOf(rounds.rounds, roundId, rounds.closedAt.get(roundId));
      if (!snapshot.open && snapshot.pending.length === 0) {
        if (!rounds.stateOffsets.delete(roundId)) continue;
        out.add(this.stateTopic, { key: roundId, value: null, partition }, moved);
        continue;
      }
      const value = await this.options.codec.encode('RoundState', toRoundState(snapshot, this.instanceId));
      out.add(this.stateTopic, { key: roundId, value, partition, headers: { [eventHeaders.type]: 'RoundState' } }, (offset) => {
        rounds.stateOffsets.set(roundId, offset);
        moved(offset);
      });
    }
  }

  private scheduleDeadline(partition: number, roundId: string): void {
    const round = this.lanes.get(partition)?.rounds.byId.get(roundId);
    if (!round || round.closed) return;
    this.deadlines.schedule(partition, roundId, round.open.stage, round.open.deadline, (p, id, stage) => {
      this.processor.inject(p, (lane) => this.closeAtDeadline(p, id, stage, lane)).catch((error: unknown) => this.log.error({ roundId: id, error: describeError(error) }, 'closing a round at its deadline failed'));
    });
  }

  /** The clock says the deadline passed: that decision is written (RoundClosed) with the outcome it leads to, before anything acts on it. */
  private async closeAtDeadline(partition: number, roundId: string, stage: number, lane: Lane<Decided>): Promise<void> {
    const rounds = this.lanes.get(partition);
    if (!rounds) return;
    const eventId = stage === 0 ? deterministicEventId('deadline', roundId) : deterministicEventId('deadline', roundId, String(stage));
    const close: RoundEvent = { type: 'close', roundId, cause: 'deadline', eventId, stage };
    // The deadline passed: the lane's clock is at least there (the round's closing time counts from it).
    const round = rounds.rounds.byId.get(roundId);
    if (round) rounds.advance(round.open.deadline, maxClockAheadMs);
    await this.stage(partition, rounds, rounds.apply(close), eventId, lane);
  }

  /** Counts what a committed transaction decided (never an aborted one's, which is decided again). */
  private observe(decided: readonly Decided[]): void {
    const m = this.options.metrics;
    if (!m) return;
    for (const { decision: d, kind, openedAt, topic } of decided) {
      switch (d.type) {
        case 'rejected':
          m.rejections.inc({ reason: d.reasonCode });
          if (isSignatureRefusalCode(d.reasonCode)) m.forgedEvents.inc({ topic: topic ?? '', reason: d.reasonCode });
          break;
        case 'stage':
          m.roundStages.inc({ protocol: d.protocol });
          break;
        case 'closed':
          if (d.counted.length > 0) m.answers.inc({ protocol: d.protocol, kind: kind === 'consensus' ? 'vote' : 'bid' }, d.counted.length);
          break;
        case 'outcome':
          m.rounds.inc({ protocol: d.protocol, status: d.status });
          if (openedAt !== undefined) m.coordinationLatency.observe({ protocol: d.protocol, status: d.status }, Math.max(0, Date.now() - openedAt) / 1000);
          break;
      }
    }
  }
}

/** The round id a round-topic event is keyed by (a Rejection's subject). */
function roundIdOf(decoded: DecodedEvent): string | undefined {
  const e = decoded.event as { roundId?: unknown; subjectId?: unknown };
  const id = decoded.type === 'Rejection' ? e.subjectId : e.roundId;
  return typeof id === 'string' ? id : undefined;
}

function firstInvalid(codec: EventCodec, outputs: Output[]): string | undefined {
  for (const output of outputs) {
    try {
      codec.check(output.type, output.event);
    } catch (error) {
      return describeError(error);
    }
  }
  return undefined;
}
