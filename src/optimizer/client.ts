/**
 * What a program calls to run a study (what `mabeam optimize run` does):
 * `start` checks the declaration and produces its StudyCreated on
 * `study-inputs`; `run` also follows the study's log until it completes, is
 * rejected, or the time is up; `read` folds a study from its log.
 */
import { context } from '@opentelemetry/api';
import { randomBytes, randomUUID } from 'node:crypto';
import type { Kafka, Producer } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import { MabeamError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import type { Rejection, StudyCreated } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import { partitionCounts } from '../topics/partitions.ts';
import { topicName } from '../topics/names.ts';
import { traced } from '../tracing/trace.ts';
import { StudyFollower, type FollowedEvent } from './study/follow.ts';
import type { StudyRun } from './study/run.ts';
import { parseStudy } from './study/spec.ts';
import { readStudy } from './study/studyLog.ts';

export interface StudyClientOptions {
  kafka: Kafka;
  /** A connected producer. */
  producer: Producer;
  codec: EventCodec;
  logger: Logger;
  prefix: string;
  /** Who asks (StudyCreated.requesterId). */
  requesterId?: string;
}

export interface StartOptions {
  /** Default study-<uuid>. */
  studyId?: string;
  /** The seed of every draw of the study; default random. */
  seed?: number;
  /** The StudyCreated's event id (default a fresh one): what a rejection of it names. */
  eventId?: string;
}

export interface RunOptions extends StartOptions {
  /** How long to follow the study, ms (default 1 h). The study goes on after it. */
  timeoutMs?: number;
  /** Each event of the study's log as it is read, with the study as it stands after it. */
  onEvent?: (event: FollowedEvent, run: StudyRun | undefined) => void;
}

export type StudyResult =
  | { status: 'completed'; studyId: string; seed: number; run: StudyRun }
  | { status: 'rejected'; studyId: string; seed: number; rejection: Rejection }
  | { status: 'timeout'; studyId: string; seed: number; run: StudyRun | undefined };

export class StudyClient {
  private readonly o: StudyClientOptions;

  constructor(options: StudyClientOptions) {
    this.o = options;
  }

  /** Checks a declaration and starts the study; throws VALIDATION_FAILED (nothing produced) when it is not a valid study. */
  async start(spec: unknown, options: StartOptions = {}): Promise<{ studyId: string; seed: number; eventId: string }> {
    parseStudy(spec);
    const studyId = options.studyId ?? `study-${randomUUID()}`;
    const seed = options.seed ?? randomBytes(4).readUInt32BE(0);
    if (!Number.isSafeInteger(seed) || seed < 0) throw new MabeamError('INVALID_OPTIONS', `A seed must be a whole number >= 0, not ${seed}`);
    const requesterId = this.o.requesterId ?? `client-${process.pid}`;
    const created: StudyCreated = { envelope: newEnvelope('StudyCreated', requesterId, { correlationId: studyId, ...(options.eventId ? { eventId: options.eventId } : {}) }), studyId, requesterId, seed, spec: JSON.stringify(spec) };
    const topic = topicName(this.o.prefix, 'study-inputs');
    const value = await this.o.codec.encode('StudyCreated', created);
    // In a span of its own: the study's trace starts here (in the caller's, when it has one).
    await traced('send', topic, context.active(), { key: studyId, subject: { 'mabeam.study_id': studyId } }, (step) =>
      this.o.producer.send({ topic, messages: [{ key: studyId, value, headers: { ...step.headers, [eventHeaders.type]: 'StudyCreated', [eventHeaders.id]: created.envelope.eventId } }] }),
    );
    return { studyId, seed, eventId: created.envelope.eventId };
  }

  /** Starts a study and follows its log to its end (or `timeoutMs`). */
  async run(spec: unknown, options: RunOptions = {}): Promise<StudyResult> {
    parseStudy(spec);
    const o = this.o;
    const studyId = options.studyId ?? `study-${randomUUID()}`;
    const studies = topicName(o.prefix, 'studies');
    const admin = o.kafka.admin();
    await admin.connect();
    let partitions: number;
    try {
      partitions = (await partitionCounts(admin, o.prefix, ['studies', 'study-inputs'])).get(studies)!;
    } finally {
      await admin.disconnect();
    }
    const eventId = randomUUID();
    let seed = options.seed ?? -1;
    let settle: (r: StudyResult) => void = () => {};
    const settled = new Promise<StudyResult>((resolve) => (settle = resolve));
    const follower = new StudyFollower({
      kafka: o.kafka, codec: o.codec, logger: o.logger, topic: studies, partitions, studyId,
      onEvent: (e, run) => {
        options.onEvent?.(e, run);
        if (e.type === 'Rejection' && e.event.rejectedEventId === eventId) settle({ status: 'rejected', studyId, seed, rejection: e.event });
        else if (run?.completed) settle({ status: 'completed', studyId, seed, run });
      },
    });
    // Following first: nothing the optimizer writes is missed.
    await follower.start();
    try {
      const started = await this.start(spec, { studyId, eventId, ...(options.seed !== undefined ? { seed: options.seed } : {}) });
      seed = started.seed;
      const timer = setTimeout(() => settle({ status: 'timeout', studyId, seed, run: follower.run }), options.timeoutMs ?? 3_600_000);
      const result = await settled;
      clearTimeout(timer);
      return { ...result, seed };
    } finally {
      await follower.stop();
    }
  }

  /** A study as its log has it (see readStudy). */
  read(studyId: string, options: { verify?: boolean } = {}): Promise<StudyRun> {
    return readStudy(this.o.kafka, this.o.codec, this.o.logger, this.o.prefix, studyId, options);
  }
}
