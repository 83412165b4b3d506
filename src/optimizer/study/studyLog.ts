/**
 * Reading studies back from their log (the `studies` topic): the fold of
 * run.ts over every committed event, per partition — what a new optimizer
 * restores, and what `mabeam optimize status|best|trials|rerun` show.
 */
import type { Kafka } from 'kafkajs';
import { typedEvent, type EventCodec } from '../../codec/codec.ts';
import { MabeamError, describeError } from '../../errors.ts';
import type { StudyCreated } from '../../events/types.ts';
import { partitionOfKey } from '../../engine/routing.ts';
import { isRetriable, readToEnd } from '../../kafka/readToEnd.ts';
import type { Logger } from '../../log/logger.ts';
import { partitionCounts } from '../../topics/partitions.ts';
import { topicName } from '../../topics/names.ts';
import { evolve, isStudyEvent, startRun, type StudyEvent, type StudyRun } from './run.ts';

export interface ReadStudiesOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  /** The prefixed `studies` topic. */
  topic: string;
  partitions?: readonly number[];
  /** Only this study (others on its partition are skipped undecided). */
  studyId?: string;
  timeoutMs?: number;
  /** Check every logged proposal by asking the searcher again (default true; the optimizer's restore does). */
  verify?: boolean;
  /** End offsets (exclusive) per `${topic}/${partition}`: read only the log before them (default: to its end). */
  until?: ReadonlyMap<string, number>;
  /** Each study event read, once folded in. */
  onEvent?: (event: StudyEvent, partition: number) => void;
}

/**
 * Folds one event into the studies it belongs to. The log is written by
 * optimizers only, so an event that does not fit (a trial the study does
 * not have) is a fault of the log: it is said, and the study goes on.
 */
export function applyStudyEvent(runs: Map<string, StudyRun>, e: StudyEvent, logger?: Logger, verify = true): void {
  if (e.type === 'StudyCreated') {
    if (!runs.has(e.event.studyId)) runs.set(e.event.studyId, startRun(e.event as StudyCreated, verify));
    return;
  }
  const run = runs.get(e.event.studyId);
  if (!run) {
    logger?.warn({ studyId: e.event.studyId, type: e.type }, 'a study event before its StudyCreated; skipped');
    return;
  }
  try {
    evolve(run, e);
  } catch (error) {
    logger?.warn({ studyId: run.studyId, type: e.type, error: describeError(error) }, 'a study event that does not fit the study; skipped');
  }
}

/** Every study on the given partitions of `studies`, as of the end of the log. */
export async function readStudies(options: ReadStudiesOptions): Promise<Map<number, Map<string, StudyRun>>> {
  const out = new Map<number, Map<string, StudyRun>>();
  for (const p of options.partitions ?? []) out.set(p, new Map());
  await readToEnd(options.kafka, {
    topics: [options.topic],
    ...(options.partitions ? { partitions: options.partitions } : {}),
    groupPrefix: 'mabeam-study-reader',
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(options.until ? { until: options.until } : {}),
    onRecord: async ({ partition, offset, message }) => {
      if (options.studyId !== undefined && message.key?.toString() !== options.studyId) return;
      let decoded;
      try {
        decoded = await options.codec.decode(message.value);
      } catch (error) {
        if (isRetriable(error)) throw error;
        options.logger.warn({ topic: options.topic, partition, offset, error: describeError(error) }, 'an undecodable record on the studies topic; skipped');
        return;
      }
      if (!isStudyEvent(decoded)) return;
      let runs = out.get(partition);
      if (!runs) out.set(partition, (runs = new Map()));
      const event = typedEvent(decoded);
      applyStudyEvent(runs, event, options.logger, options.verify ?? true);
      options.onEvent?.(event, partition);
    },
  });
  return out;
}


/**
 * One study, read from its partition of `studies`; NOT_IN_LOG when it was
 * never started. `verify` asks the searcher again for every logged proposal
 * (slower: a TPE ask per trial) and lists those it would not make in `diverged`.
 */
export async function readStudy(
  kafka: Kafka, codec: EventCodec, logger: Logger, prefix: string, studyId: string,
  options: { verify?: boolean; timeoutMs?: number; onEvent?: (event: StudyEvent) => void } = {},
): Promise<StudyRun> {
  const topic = topicName(prefix, 'studies');
  const admin = kafka.admin();
  await admin.connect();
  let count: number;
  try {
    count = (await partitionCounts(admin, prefix, ['studies'])).get(topic)!;
  } finally {
    await admin.disconnect();
  }
  const partition = partitionOfKey(Buffer.from(studyId), count);
  const onEvent = options.onEvent;
  const runs = await readStudies({
    kafka, codec, logger, topic, partitions: [partition], studyId, verify: options.verify ?? false,
    ...(options.timeoutMs !== undefined ? { timeoutMs: options.timeoutMs } : {}),
    ...(onEvent ? { onEvent: (event: StudyEvent) => onEvent(event) } : {}),
  });
  const run = runs.get(partition)?.get(studyId);
  if (!run) throw new MabeamError('NOT_IN_LOG', `No study "${studyId}" on ${topic} (prefix "${prefix}"): it was never started, or it was rejected.`);
  return run;
}
