/**
 * The one consume → decide → produce component of every member that writes
 * decisions (coordinators, variable owners). Exactly once, by these rules:
 *
 * - **Lanes.** Inputs are co-partitioned and a member owns whole partition
 *   numbers (coPartitionedAssigner). Each owned partition number is a lane:
 *   its records are decided in log order, and what they decide is written
 *   with the lane's input offsets in one transaction of the lane's own
 *   producer.
 * - **Fencing.** A lane's transactional id is `<group>.p<partition>`, the
 *   same on every member. Taking a partition starts that producer
 *   (InitProducerId), which bumps its epoch: the previous owner — even one
 *   paused past its session timeout that wakes up mid-batch — can never
 *   commit on that partition again, and its open transaction is aborted.
 *   (Kafka Streams fenced this way before KIP-447; kafkajs has no KIP-447.)
 * - **Restore after fencing.** Only then does the lane read the committed
 *   offsets and let the decider restore its state (a changelog written in
 *   the same transactions): state and offsets match exactly. Records below
 *   the committed offsets (fetched by kafkajs before the fence) are skipped.
 * - **Routing.** A keyed record on a partition its key does not hash to
 *   (murmur2, as Java and kafkajs place it) is copied to the right partition
 *   in the same transaction as its offset — once — and decided only there.
 * - **Failure.** A failed transaction, or a rebalance, throws away every
 *   lane's uncommitted work and state; lanes restore again and read on from
 *   what was committed. A member that cannot rejoin stops for good.
 */
import type { Consumer, EachBatchPayload, Kafka, KafkaMessage, Producer } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { DeadLetterWriter } from '../deadletters/deadLetterWriter.ts';
import { MabeamError, describeError, isMabeamError } from '../errors.ts';
import { createPartitionOwnerConsumer, createTransactionalProducer, joinedAndFetched } from '../kafka/client.ts';
import { chooseSessionTimeout, heartbeatIntervalFor } from '../kafka/sessionTimeout.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { StoppedLatch, type StopsForGood } from '../runtime/stopped.ts';
import { topicName } from '../topics/names.ts';
import { Outputs } from './outputs.ts';
import { forwardedFromHeader, partitionOfKey } from './routing.ts';
import { contextOf, traced } from '../tracing/trace.ts';
import { isFenced, retryConcurrentTransactions } from './transactions.ts';
import type { Decider, InputRecord, Lane } from './types.ts';

export interface ProcessorOptions<D> {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  groupId: string;
  /** Who writes (envelope producerId of dead letters). */
  producerId: string;
  decider: Decider<D>;
  /** The topic prefix: dead letters go to `<prefix>.dead-letters`. */
  prefix: string;
  metrics?: Metrics;
  /** Default: 2 s within the broker's bounds (src/kafka/sessionTimeout.ts). */
  sessionTimeoutMs?: number;
  /** How long a transaction may stay open; a dead member's open one blocks read_committed readers that long. */
  transactionTimeoutMs?: number;
  /** How long a lane whose batch wrote nothing waits before committing its offsets, ms. Default 200. */
  idleFlushMs?: number;
  /** How long a lane whose batch wrote and changed nothing (Decider.changed) waits before committing its offsets, ms. Default 5 000. */
  quietFlushMs?: number;
  /**
   * Where a partition the group never committed starts: its beginning
   * (default), or its end when the member is first given it — then that end
   * is committed at once, so what arrives while no member runs is read later.
   */
  startAt?: 'beginning' | 'end';
  /** Tries at joining (the first, and after a failure) before the member stops for good. Default 15, about a minute. */
  joinAttempts?: number;
}


class LaneState<D> implements Lane<D> {
  readonly partition: number;
  out = new Outputs<D>();
  /** Writes into whatever the lane's next transaction is. */
  private readonly deadLetters: DeadLetterWriter;
  producer: Producer | undefined;
  ready = false;
  /** When this lane last had a batch (or became ready), wall clock ms. */
  lastBatchAt = Date.now();
  /** The restore of the generation that gave this member the partition. */
  restoring: Promise<void> = Promise.resolve();
  skipBelow = new Map<string, number>();
  flushTimer: NodeJS.Timeout | undefined;
  flushDelay = 0;
  private chain: Promise<unknown> = Promise.resolve();

  constructor(partition: number, deadLetters: (producer: Pick<Outputs<D>, 'send'>) => DeadLetterWriter) {
    this.partition = partition;
    this.deadLetters = deadLetters({ send: (record) => this.out.send(record) });
  }

  /** Replaces the buffer (after a flush took it, or a reset dropped it). */
  renew(): Outputs<D> {
    const taken = this.out;
    this.out = new Outputs<D>();
    return taken;
  }

  deadLetter(record: InputRecord, error: unknown): Promise<void> {
    const m = record.message;
    return this.deadLetters
      .write({ topic: record.topic, partition: record.partition, offset: record.offset, timestamp: m.timestamp, key: m.key, value: m.value, ...(m.headers ? { headers: m.headers } : {}) }, error)
      .then(() => undefined);
  }

  /** Work on a lane runs one piece at a time: batches, timers and flushes. */
  run<T>(work: () => Promise<T>): Promise<T> {
    const next = this.chain.then(work, work);
    this.chain = next.catch(() => undefined);
    return next;
  }
}

export class Processor<D> implements StopsForGood {
  private readonly o: ProcessorOptions<D>;
  private readonly log: Logger;
  private readonly lanes = new Map<number, LaneState<D>>();
  private readonly latch = new StoppedLatch();
  private partitionCounts = new Map<string, number>();
  /** Brokers of the cluster: on more than one, a transaction's records go one partition per produce request (see Outputs.partitionChunks). */
  private brokers = 1;
  private consumer: Consumer | undefined;
  private stopping = false;
  /** How often a lane waiting on its restore heartbeats (within the session timeout in use). */
  private beatEveryMs = 1_000;
  /** The partitions of the current assignment. */
  private owned = new Set<number>();
  /** Rebalances seen: a restore of an older generation marks nothing ready. */
  private generation = 0;
  /** Restores run one after another. */
  private restores: Promise<void> = Promise.resolve();
  /** Set from a failure until the member has started over. */
  private broken: Error | undefined;
  /** Set while a try at joining is under way: fails that try. */
  private opening: ((error: unknown) => void) | undefined;

  constructor(options: ProcessorOptions<D>) {
    this.o = options;
    this.log = options.logger.child({ ns: 'engine', group: options.groupId });
  }

  get stoppedForGood(): Promise<Error> {
    return this.latch.stoppedForGood;
  }

  /**
   * Joins the group and resolves once the member's partitions are restored.
   * A consumer that crashes, or a restore that fails, before then is closed
   * and the member tries again, for about a minute; then it stops for good
   * and this rejects.
   */
  async start(): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.open();
        if (attempt > 1) this.log.info({ attempt }, 'joined after a failure');
        return;
      } catch (error) {
        const consumer = this.consumer;
        this.consumer = undefined;
        await consumer?.disconnect().catch(() => undefined);
        await this.closeLanes();
        // About a minute of trying (a broker restarting takes 15–20 s here), then the process should be restarted.
        if (attempt >= (this.o.joinAttempts ?? 15) || this.stopping) {
          const stopped = new MabeamError('STOPPED', `The ${this.o.groupId} member could not join: ${describeError(error)}`, { cause: error });
          this.latch.stop(stopped);
          throw stopped;
        }
        this.log.warn({ attempt, error: describeError(error) }, 'could not join yet');
        await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 500 * attempt)));
      }
    }
  }

  /** One try at joining: rejects if the consumer crashes or a restore fails before the member is ready. */
  private async open(): Promise<void> {
    const o = this.o;
    let failed: (error: unknown) => void = () => undefined;
    const failure = new Promise<never>((_, reject) => (failed = reject));
    this.opening = failed;
    try {
      if (this.partitionCounts.size === 0) await Promise.race([this.readPartitionCounts(), failure]);
      const session = await Promise.race([chooseSessionTimeout(o.kafka, o.sessionTimeoutMs), failure]);
      if (session.source !== 'requested') this.log.info(session, 'session timeout');
      this.beatEveryMs = Math.min(1_000, heartbeatIntervalFor(session.sessionTimeoutMs));
      const consumer = createPartitionOwnerConsumer(o.kafka, o.groupId, session.sessionTimeoutMs);
      this.consumer = consumer;
      // Only the current consumer speaks for the member: one it replaced says nothing.
      consumer.on(consumer.events.CRASH, ({ payload }) => {
        if (consumer !== this.consumer) return;
        this.log.warn({ error: describeError(payload.error) }, 'consumer crashed; starting over from what was committed');
        if (!this.stopping) this.broke(payload.error);
      });
      consumer.on(consumer.events.GROUP_JOIN, ({ payload }) => {
        if (consumer === this.consumer) this.assigned(payload.memberAssignment);
      });
      const joined = joinedAndFetched(consumer);
      const ready = async () => {
        await consumer.connect();
        await consumer.subscribe({ topics: [...o.decider.inputs], fromBeginning: (o.startAt ?? 'beginning') === 'beginning' });
        await consumer.run({
          autoCommit: false,
          eachBatchAutoResolve: false,
          partitionsConsumedConcurrently: 4,
          eachBatch: (payload) => (consumer === this.consumer ? this.onBatch(payload) : Promise.resolve()),
        });
        await joined;
        // Ready means restored: the partitions are fenced, their state read and their positions known.
        await this.restores;
      };
      await Promise.race([ready(), failure]);
    } finally {
      this.opening = undefined;
    }
  }

  /** A failure of the consumer or of a restore: the try at joining fails, or a joined member starts over. */
  private broke(error: unknown): void {
    if (this.opening) this.opening(error);
    else void this.fail(error);
  }

  async stop(): Promise<void> {
    this.stopping = true;
    this.opening?.(new MabeamError('STOPPED', `The ${this.o.groupId} member was stopped while joining.`));
    await this.consumer?.disconnect().catch(() => undefined);
    // What was decided but not committed goes out now (or the next owner decides it again).
    await Promise.all([...this.lanes.values()].map((lane) => lane.run(() => this.flush(lane)).catch(() => undefined)));
    await this.closeLanes();
  }

  /**
   * Runs `work` on a lane (a timer's decision: a deadline), then writes what
   * it decided. Does nothing for a lane this member does not hold ready.
   */
  inject(partition: number, work: (lane: Lane<D>) => Promise<void> | void): Promise<void> {
    const lane = this.lanes.get(partition);
    if (!lane) return Promise.resolve();
    return lane.run(async () => {
      if (!lane.ready) await lane.restoring.catch(() => undefined);
      if (!lane.ready || this.broken) return;
      await work(lane);
      await this.flushNow(lane);
    });
  }

  /**
   * How long a ready lane has had no batch, in ms (undefined for a lane this
   * member does not hold ready). kafkajs fetches every assigned partition in
   * each fetch, so a lane with records still to read keeps getting batches:
   * a lane idle for a while has read what there is.
   */
  idleFor(partition: number): number | undefined {
    const lane = this.lanes.get(partition);
    return lane?.ready ? Date.now() - lane.lastBatchAt : undefined;
  }

  private async readPartitionCounts(): Promise<void> {
    const admin = this.o.kafka.admin();
    await admin.connect();
    try {
      const { topics } = await admin.fetchTopicMetadata({ topics: [...this.o.decider.inputs] });
      this.partitionCounts = new Map(topics.map((t) => [t.name, t.partitions.length]));
      this.brokers = (await admin.describeCluster()).brokers.length;
    } finally {
      await admin.disconnect();
    }
  }

  private lane(partition: number): LaneState<D> {
    let lane = this.lanes.get(partition);
    if (!lane) {
      const o = this.o;
      lane = new LaneState<D>(partition, (producer) =>
        new DeadLetterWriter({ producer, codec: o.codec, topic: topicName(o.prefix, 'dead-letters'), producerId: o.producerId, consumerGroup: o.groupId, logger: this.log, metrics: o.metrics }),
      );
      this.lanes.set(partition, lane);
    }
    return lane;
  }

  /**
   * A new assignment: every lane starts over from what was committed (kafkajs
   * re-reads from the committed offsets, so what a lane applied but had not
   * committed would otherwise be applied twice). Every lane closes its
   * producer too: a lane fences again whenever it restores, since another
   * member may have held the partition in a generation this one missed.
   */
  private assigned(assignment: Record<string, number[]>): void {
    const owned = [...new Set(Object.values(assignment).flat())].sort((a, b) => a - b);
    this.owned = new Set(owned);
    this.log.info({ partitions: owned }, 'partitions assigned');
    const generation = ++this.generation;
    const resets = [...this.lanes.values()].map((lane) =>
      lane.run(async () => {
        this.reset(lane);
        await this.closeProducer(lane);
      }),
    );
    const lanes = owned.map((p) => this.lane(p));
    // Every owned partition restores at once, not at its first record: a quiet partition's open rounds still meet their deadlines.
    const restoring = this.restores.then(async () => {
      await Promise.all(resets);
      if (generation === this.generation) await this.restoreLanes(lanes, generation);
    });
    this.restores = restoring.catch(() => undefined);
    for (const lane of lanes) lane.restoring = restoring;
    restoring.catch((error: unknown) => {
      if (generation === this.generation) this.broke(error);
    });
  }

  private reset(lane: LaneState<D>): void {
    clearTimeout(lane.flushTimer);
    lane.flushTimer = undefined;
    lane.renew();
    lane.ready = false;
    lane.skipBelow.clear();
    this.o.decider.release(lane.partition);
  }

  private async closeProducer(lane: LaneState<D>): Promise<void> {
    const producer = lane.producer;
    lane.producer = undefined;
    await producer?.disconnect().catch(() => undefined);
  }

  /**
   * Fences the partitions' previous owners (each lane's producer starts, which
   * bumps the epoch of its transactional id), then reads the committed
   * offsets and lets the decider restore its state.
   */
  private async restoreLanes(lanes: LaneState<D>[], generation: number): Promise<void> {
    if (lanes.length === 0) return;
    const o = this.o;
    await Promise.all(
      lanes.map(async (lane) => {
        await this.closeProducer(lane);
        const producer = createTransactionalProducer(o.kafka, `${o.groupId}.p${lane.partition}`, o.transactionTimeoutMs);
        lane.producer = producer;
        await producer.connect();
        // InitProducerId happens on the first transaction: start one and end it empty (no request is sent).
        await (await producer.transaction()).abort();
      }),
    );
    const partitions = lanes.map((l) => l.partition);
    const committed = await this.committedOffsets(partitions);
    if (generation !== this.generation) return;
    await o.decider.restore(partitions, committed);
    if (generation !== this.generation) return;
    const ends = o.startAt === 'end' ? await this.endOffsets(partitions, committed) : new Map<string, number>();
    for (const lane of lanes) {
      const at = committed.get(lane.partition) ?? new Map<string, number>();
      lane.skipBelow = new Map([...at].filter(([topic]) => o.decider.inputs.includes(topic)));
      for (const topic of o.decider.inputs) {
        const end = ends.get(`${topic}/${lane.partition}`);
        if (at.has(topic) || end === undefined) continue;
        // Never committed, starting at the end: pin that end now (what kafkajs fetched from its own view of the end is still read).
        lane.out.offsets.set(topic, end);
      }
      lane.ready = true;
      lane.lastBatchAt = Date.now();
      if (!lane.out.empty) this.scheduleFlush(lane, 0);
    }
    this.log.debug({ partitions }, 'lanes ready');
  }

  /**
   * Waits for the lane's restore; false when it is not ready after it: the
   * restore failed (the broker is away) or a newer assignment superseded it.
   * Either way the member starts over, so that is an answer, not an error.
   */
  private async ensureReady(lane: LaneState<D>, heartbeat: () => Promise<void>): Promise<boolean> {
    if (lane.ready) return true;
    // A restore can take longer than the session timeout: the member keeps saying it is alive meanwhile,
    // or the group would move its partitions and it would restore again, and again.
    const beat = setInterval(() => void heartbeat().catch(() => undefined), this.beatEveryMs);
    try {
      await lane.restoring;
    } catch {
      return false;
    } finally {
      clearInterval(beat);
    }
    return lane.ready;
  }

  /** Current end offsets of inputs the group never committed on these partitions. */
  private async endOffsets(partitions: number[], committed: Map<number, Map<string, number>>): Promise<Map<string, number>> {
    const ends = new Map<string, number>();
    const topics = this.o.decider.inputs.filter((topic) => partitions.some((p) => !committed.get(p)?.has(topic)));
    if (topics.length === 0) return ends;
    const admin = this.o.kafka.admin();
    await admin.connect();
    try {
      for (const topic of topics) for (const p of await admin.fetchTopicOffsets(topic)) ends.set(`${topic}/${p.partition}`, Number(p.high));
    } finally {
      await admin.disconnect();
    }
    return ends;
  }

  /** The group's committed offsets, per partition and topic (inputs and state topics). */
  private async committedOffsets(partitions: number[]): Promise<Map<number, Map<string, number>>> {
    const topics = [...this.o.decider.inputs, ...(this.o.decider.stateTopics ?? [])];
    const admin = this.o.kafka.admin();
    await admin.connect();
    try {
      const result = await admin.fetchOffsets({ groupId: this.o.groupId, topics });
      const committed = new Map(partitions.map((p) => [p, new Map<string, number>()]));
      for (const t of result) {
        for (const p of t.partitions) if (Number(p.offset) >= 0) committed.get(p.partition)?.set(t.topic, Number(p.offset));
      }
      return committed;
    } finally {
      await admin.disconnect();
    }
  }

  private async onBatch({ batch, resolveOffset, heartbeat }: EachBatchPayload): Promise<void> {
    if (batch.messages.length === 0) return;
    const lane = this.lane(batch.partition);
    lane.lastBatchAt = Date.now();
    const last = batch.messages[batch.messages.length - 1]!.offset;
    await lane.run(async () => {
      // A member starting over reads this again from what was committed.
      if (this.broken) return;
      // Fencing or restoring failed (the broker is away), or a rebalance superseded it: the member starts over.
      if (!(await this.ensureReady(lane, heartbeat))) return;
      const skip = lane.skipBelow.get(batch.topic) ?? 0;
      const partitions = this.partitionCounts.get(batch.topic) ?? 1;
      for (const message of batch.messages) {
        if (Number(message.offset) < skip) continue;
        if (message.key && partitions > 1) {
          const right = partitionOfKey(message.key, partitions);
          if (right !== batch.partition) {
            this.forward(lane, batch.topic, batch.partition, message, right);
            continue;
          }
        }
        await this.decide(lane, { topic: batch.topic, partition: batch.partition, offset: message.offset, message }, heartbeat);
      }
      lane.out.consumed(batch.topic, last);
      resolveOffset(last);
      this.scheduleFlush(lane, this.flushDelay(lane, batch.partition));
    });
    await heartbeat().catch(() => undefined);
  }

  /** A record on the wrong partition goes, bytes untouched, to the one its key hashes to, with its offset here. */
  private forward(lane: LaneState<D>, topic: string, from: number, message: KafkaMessage, to: number): void {
    lane.out.add(topic, {
      key: message.key,
      value: message.value,
      partition: to,
      timestamp: message.timestamp,
      headers: { ...(message.headers ?? {}), [forwardedFromHeader]: `${topic}/${from}/${message.offset}` },
    });
    this.o.metrics?.rerouted.inc({ topic });
    this.log.debug({ topic, from, to, offset: message.offset }, 'record moved to the partition of its key');
  }

  /**
   * One record, in a span of its trace (what it leads to carries the
   * trace on): retriable failures are retried in place (with backoff),
   * anything else is a dead letter.
   */
  private async decide(lane: LaneState<D>, record: InputRecord, heartbeat: () => Promise<void>): Promise<void> {
    // Nothing else runs on the lane meanwhile (lane.run): its buffer is this record's until it is decided.
    await traced('process', record.topic, contextOf(record.message.headers), { key: record.message.key?.toString() ?? null, group: this.o.groupId }, async (step) => {
      lane.out.trace = step.headers;
      try {
        await this.decideWithRetries(lane, record, heartbeat);
      } finally {
        lane.out.trace = undefined;
      }
    });
  }

  private async decideWithRetries(lane: LaneState<D>, record: InputRecord, heartbeat: () => Promise<void>): Promise<void> {
    for (let attempt = 1; ; attempt++) {
      try {
        await this.o.decider.decide(record, lane);
        return;
      } catch (error) {
        if (isMabeamError(error) && error.retriable && attempt < 30) {
          this.log.warn({ topic: record.topic, partition: record.partition, offset: record.offset, attempt, error: describeError(error) }, 'retrying a record');
          await new Promise((resolve) => setTimeout(resolve, Math.min(2_000, 50 * 2 ** attempt)));
          await heartbeat().catch(() => undefined);
          continue;
        }
        if (isMabeamError(error) && error.retriable) throw error;
        await lane.deadLetter(record, error);
        return;
      }
    }
  }

  /** When the lane's transaction is due: at once with something to write; soon with unsaved state; else with the next one, or after a while. */
  private flushDelay(lane: LaneState<D>, partition: number): number {
    if (lane.out.size > 0) return 0;
    if (this.o.decider.changed?.(partition) === false) return this.o.quietFlushMs ?? 5_000;
    return this.o.idleFlushMs ?? 200;
  }

  private scheduleFlush(lane: LaneState<D>, delayMs: number): void {
    if (lane.flushTimer && delayMs >= lane.flushDelay) return;
    clearTimeout(lane.flushTimer);
    lane.flushDelay = delayMs;
    // For 0: the lane's other batches of the same fetch (already in memory) join this transaction.
    lane.flushTimer = setTimeout(() => {
      lane.flushTimer = undefined;
      lane.run(() => this.flush(lane)).catch(() => undefined);
    }, delayMs);
  }

  private async flushNow(lane: LaneState<D>): Promise<void> {
    clearTimeout(lane.flushTimer);
    lane.flushTimer = undefined;
    await this.flush(lane);
  }

  /** Writes the lane's decisions, changelog and offsets in one transaction; a failure starts the member over. */
  private async flush(lane: LaneState<D>): Promise<void> {
    if (this.broken || !lane.ready || !lane.producer) return;
    const o = this.o;
    const p = lane.partition;
    const out = lane.renew();
    const started = Date.now();
    let txn: Awaited<ReturnType<Producer['transaction']>> | undefined;
    try {
      // The changelog may have something to write (a tombstone) even when no record was decided.
      await o.decider.beforeCommit?.(p, out);
      if (out.empty) return;
      const chunks = this.brokers > 1 ? await this.partitionChunks(out) : out.chunks();
      txn = await lane.producer.transaction();
      const opened = txn;
      for (const chunk of chunks) out.written(await opened.sendBatch({ topicMessages: chunk.topicMessages }), chunk.records);
      const offsets = [...out.offsets].map(([topic, offset]) => ({ topic, offset }));
      offsets.push(...(o.decider.stateOffsets?.(p) ?? []));
      if (offsets.length > 0) {
        await retryConcurrentTransactions(() =>
          opened.sendOffsets({ consumerGroupId: o.groupId, topics: offsets.map(({ topic, offset }) => ({ topic, partitions: [{ partition: p, offset: String(offset) }] })) }),
        );
      }
      await opened.commit();
    } catch (error) {
      await txn?.abort().catch(() => undefined);
      if (isFenced(error) && !this.owned.has(p)) {
        // The partition moved in a rebalance and its new owner fenced this transaction: nothing of it happened, and it is no longer ours to decide.
        this.log.info({ partition: p }, 'a transaction of a partition that moved was fenced by its new owner');
        return;
      }
      this.log[isFenced(error) ? 'warn' : 'error']({ partition: p, fenced: isFenced(error), error: describeError(error) }, 'transaction failed; starting over from what was committed');
      void this.fail(error);
      return;
    }
    o.metrics?.transactions.inc({ group: o.groupId });
    o.decider.committed?.(p, out.decisions);
    this.log.debug({ partition: p, records: out.size, ms: Date.now() - started }, 'committed');
  }

  /** The transaction's records, one produce request per partition (the partition counts of new output topics looked up once). */
  private async partitionChunks(out: Outputs<D>): Promise<ReturnType<Outputs<D>['partitionChunks']>> {
    const unknown = [...new Set(out.topics())].filter((t) => !this.partitionCounts.has(t));
    if (unknown.length > 0) {
      const admin = this.o.kafka.admin();
      await admin.connect();
      try {
        for (const t of (await admin.fetchTopicMetadata({ topics: unknown })).topics) this.partitionCounts.set(t.name, t.partitions.length);
      } finally {
        await admin.disconnect();
      }
    }
    // A record without a key goes to partition 0 (kafkajs would pick one at random).
    return out.partitionChunks((topic, key) => (key === null || key === undefined ? 0 : partitionOfKey(Buffer.isBuffer(key) ? key : Buffer.from(key), this.partitionCounts.get(topic) ?? 1)));
  }

  /**
   * Starts the member over: nothing uncommitted survives, every lane
   * restores again. A member that cannot rejoin stops for good.
   */
  private async fail(error: unknown): Promise<void> {
    if (this.broken || this.stopping) return;
    this.broken = error instanceof Error ? error : new Error(String(error));
    const consumer = this.consumer;
    this.consumer = undefined;
    await consumer?.disconnect().catch(() => undefined);
    await this.closeLanes();
    this.broken = undefined;
    if (this.stopping) return;
    // start() stops the member for good itself once it has tried long enough.
    await this.start().then(
      () => this.log.info('rejoined after a failure'),
      () => undefined,
    );
  }

  private async closeLanes(): Promise<void> {
    this.generation++;
    const lanes = [...this.lanes.values()];
    this.lanes.clear();
    await Promise.all(
      lanes.map((lane) =>
        lane.run(async () => {
          this.reset(lane);
          await this.closeProducer(lane);
        }),
      ),
    );
  }
}
