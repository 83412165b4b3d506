/**
 * The studies the view has seen, each folded from its log (run.ts) as the
 * view reads the `studies` topic. The view starts reading near the end of
 * the log, so a study whose StudyCreated is older than that is folded from
 * the part of its partition before the first event the view read (one such
 * read at a time), then from what the view read meanwhile: the fold is the
 * same as one from the beginning. Until then (or when that read fails) it
 * shows what its events on hand say.
 */
import { describeError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';
import { bestTrials } from '../optimizer/study/best.ts';
import type { StudyEvent, StudyRun } from '../optimizer/study/run.ts';
import { applyStudyEvent } from '../optimizer/study/studyLog.ts';
import type { StudySummary } from './types.ts';

export interface StudyBoardOptions {
  logger: Logger;
  /** The study folded from its partition's log before `until` (exclusive); undefined when that part holds no StudyCreated of it. */
  readBefore: (studyId: string, partition: number, until: number) => Promise<StudyRun | undefined>;
  /** Told each time a study's log moved (its summary may have changed). */
  onChange: (studyId: string) => void;
  /** How many studies are kept (the latest seen). */
  maxStudies: number;
}

interface Study {
  studyId: string;
  run: StudyRun | undefined;
  /** Set while the older part of its log is read: the events read meanwhile, to fold after it. */
  pending: StudyEvent[] | undefined;
  /** What its events on hand say, for a study not (yet) folded. */
  searcher: string;
  trials: number;
  finished: number;
  completed: boolean;
  /** When it was created, else first seen (ms): the order of the list. */
  since: number;
}

const finishing = (e: StudyEvent): boolean => e.type === 'TrialCompleted' || e.type === 'TrialPruned' || (e.type === 'TrialFailed' && e.event.final);

export class StudyBoard {
  private readonly studies = new Map<string, Study>();
  private readonly o: StudyBoardOptions;
  private reads: Promise<void> = Promise.resolve();
  private stopped = false;

  constructor(options: StudyBoardOptions) {
    this.o = options;
  }

  get size(): number {
    return this.studies.size;
  }

  /** Folds one event of the log in, read at `offset` of `partition`. */
  apply(e: StudyEvent, partition: number, offset: number): void {
    const studyId = e.event.studyId;
    let study = this.studies.get(studyId);
    if (!study) {
      study = { studyId, run: undefined, pending: undefined, searcher: '', trials: 0, finished: 0, completed: false, since: e.event.envelope.eventTime };
      this.studies.set(studyId, study);
      this.trim();
      if (e.type === 'StudyCreated') study.run = this.fold(undefined, [e]);
      else {
        study.pending = [e];
        this.readOlder(study, partition, offset);
      }
    } else if (study.pending) study.pending.push(e);
    else if (study.run) study.run = this.fold(study.run, [e]);
    this.note(study, e);
    this.o.onChange(studyId);
  }

  /** Latest first. */
  list(): StudySummary[] {
    return [...this.studies.values()].sort((a, b) => b.since - a.since).map(summaryOf);
  }

  stop(): void {
    this.stopped = true;
  }

  private note(study: Study, e: StudyEvent): void {
    if (e.type === 'StudyCreated') study.since = e.event.envelope.eventTime;
    if (e.type === 'TrialProposed') {
      study.searcher = e.event.searcher;
      study.trials = Math.max(study.trials, e.event.number);
    }
    if (finishing(e)) study.finished += 1;
    if (e.type === 'StudyCompleted') study.completed = true;
  }

  private fold(run: StudyRun | undefined, events: readonly StudyEvent[]): StudyRun | undefined {
    const first = events[0];
    if (!first) return run;
    const runs = new Map<string, StudyRun>(run ? [[run.studyId, run]] : []);
    for (const e of events) {
      try {
        applyStudyEvent(runs, e, this.o.logger, false);
      } catch (error) {
        // A StudyCreated whose spec this version cannot read: the study is shown from its events.
        this.o.logger.warn({ studyId: e.event.studyId, type: e.type, error: describeError(error) }, 'a study event the view cannot fold; skipped');
      }
    }
    return runs.get(first.event.studyId);
  }

  private readOlder(study: Study, partition: number, until: number): void {
    this.reads = this.reads.then(async () => {
      if (this.stopped) return;
      try {
        const before = await this.o.readBefore(study.studyId, partition, until);
        if (this.stopped || this.studies.get(study.studyId) !== study) return;
        if (before) {
          study.run = this.fold(before, study.pending ?? []);
          study.since = study.run?.createdAt ?? study.since;
        }
      } catch (error) {
        this.o.logger.warn({ studyId: study.studyId, partition, until, error: describeError(error) }, 'could not read the older part of a study\'s log; it is shown from the events read since');
      }
      study.pending = undefined;
      this.o.onChange(study.studyId);
    });
  }

  private trim(): void {
    if (this.studies.size <= this.o.maxStudies) return;
    const oldest = [...this.studies.values()].sort((a, b) => a.since - b.since)[0];
    if (oldest) this.studies.delete(oldest.studyId);
  }
}

function summaryOf(s: Study): StudySummary {
  const run = s.run;
  if (!run) return { studyId: s.studyId, name: null, searcher: s.searcher, trials: s.trials, finished: s.finished, completed: s.completed, best: null };
  return {
    studyId: s.studyId,
    name: run.study.spec.name ?? null,
    searcher: run.study.spec.searcher.name,
    trials: run.trials.length,
    finished: run.finished,
    completed: run.completed !== null,
    best: bestTrials(run)[0]?.values ?? null,
  };
}
