/**
 * A study as the fold over its log (the `studies` topic, one study id):
 * `evolve(run, event)` for every event in log order gives the optimizer's
 * whole state — searcher state, pruner state, every trial's attempt,
 * evaluator and values. The optimizer decides by emitting events and
 * evolving them at once (decide.ts), and a restarted optimizer rebuilds the
 * same state by evolving what its predecessor committed, so it goes on with
 * the same next proposals.
 *
 * A TrialProposed is evolved by asking the searcher again: the state after
 * it is the searcher's own, and a logged proposal this searcher would not
 * have made (another version of it, or a log written by someone else) is
 * kept — the log is the truth — and listed in `diverged`.
 */
import type { DecodedEvent } from '../../codec/codec.ts';
import { MabeamError } from '../../errors.ts';
import type { Envelope, StudyCompleted, StudyCreated, TrialAssigned, TrialCompleted, TrialFailed, TrialProposed, TrialPruned, TrialReported, TrialRetried, TrialStarted } from '../../events/types.ts';
import { canonicalJson, type Params } from '../space.ts';
import type { Proposal } from '../searchers/types.ts';
import { parseStudy, type Study } from './spec.ts';

export type TrialState = 'waiting' | 'assigned' | 'running' | 'complete' | 'pruned' | 'failed';

export interface TrialRun {
  trialId: string;
  number: number;
  params: Params;
  seed: number;
  digest: string;
  miniBatch: number | null;
  state: TrialState;
  /** The current attempt (0 until first assigned). */
  attempt: number;
  agentId: string | null;
  /** Every evaluator an attempt of this trial was given to, in order. */
  triedBy: string[];
  values: number[] | null;
  constraints: number[];
  /** The last intermediate report of the current attempt. */
  lastStep: number | null;
  lastValues: number[] | null;
  /** Errors of failed attempts, in order. */
  errors: string[];
  proposedAt: number;
  finishedAt: number | null;
  /** Where in the study's log it was proposed and finished (the count of events before): the rhythm a re-run follows. */
  proposedSeq: number;
  finishedSeq: number | null;
  /** When the current attempt's evaluator last gave a sign of life (or was given it), ms; not part of the log's meaning. */
  aliveAt: number;
}

export interface StudyRun {
  studyId: string;
  requesterId: string;
  seed: number;
  createdAt: number;
  study: Study;
  searcherState: unknown;
  prunerState: unknown;
  /** Trial n is trials[n - 1]. */
  trials: TrialRun[];
  /** Trials complete, pruned or failed for good. */
  finished: number;
  /** Events evolved so far (StudyCreated is 0). */
  seq: number;
  /** Finished trials of the current batch the searcher has not been told yet (batch schedule). */
  untold: number[];
  completed: Omit<StudyCompleted, 'envelope'> | null;
  /** Logged proposals this searcher, asked again, would not have made. */
  diverged: Array<{ number: number; logged: Params; asked: Params }>;
  /** Whether each logged proposal is checked by asking the searcher again (the optimizer does; a reader need not). */
  verify: boolean;
}

/** An event of a study's log, as evolve reads it. */
export type StudyEvent =
  | { type: 'StudyCreated'; event: StudyCreated }
  | { type: 'TrialProposed'; event: TrialProposed }
  | { type: 'TrialAssigned'; event: TrialAssigned }
  | { type: 'TrialStarted'; event: TrialStarted }
  | { type: 'TrialReported'; event: TrialReported }
  | { type: 'TrialPruned'; event: TrialPruned }
  | { type: 'TrialCompleted'; event: TrialCompleted }
  | { type: 'TrialFailed'; event: TrialFailed }
  | { type: 'TrialRetried'; event: TrialRetried }
  | { type: 'StudyCompleted'; event: StudyCompleted };

export const studyEventTypes: ReadonlySet<string> = new Set(['StudyCreated', 'TrialProposed', 'TrialAssigned', 'TrialStarted', 'TrialReported', 'TrialPruned', 'TrialCompleted', 'TrialFailed', 'TrialRetried', 'StudyCompleted']);

/** Whether a decoded event is one of a study's log that evolve reads (narrows it to those types). */
export function isStudyEvent(decoded: DecodedEvent): decoded is DecodedEvent<StudyEvent['type']> {
  return studyEventTypes.has(decoded.type);
}

/** The trial id of trial `number` of a study. */
export function trialIdOf(studyId: string, number: number): string {
  return `${studyId}#${number}`;
}

/** The number in a trial id, or undefined when it is not one of this study's. */
export function trialNumberOf(studyId: string, trialId: string): number | undefined {
  if (!trialId.startsWith(`${studyId}#`)) return undefined;
  const n = Number(trialId.slice(studyId.length + 1));
  return Number.isSafeInteger(n) && n >= 1 ? n : undefined;
}

export function isActive(t: TrialRun): boolean {
  return t.state === 'waiting' || t.state === 'assigned' || t.state === 'running';
}

export function isFinished(t: TrialRun): boolean {
  return t.state === 'complete' || t.state === 'pruned' || t.state === 'failed';
}

/** The spec of a StudyCreated event, checked; throws VALIDATION_FAILED. */
export function studyOf(event: Pick<StudyCreated, 'spec'>): Study {
  let raw: unknown;
  try {
    raw = JSON.parse(event.spec);
  } catch (error) {
    throw new MabeamError('VALIDATION_FAILED', `Invalid study: spec is not JSON (${(error as Error).message})`);
  }
  return parseStudy(raw);
}

/** A copy to decide on: a decision that fails half-way leaves the run it was given as it was. */
export function draftOf(run: StudyRun): StudyRun {
  return { ...run, trials: run.trials.map((t) => ({ ...t, triedBy: [...t.triedBy], errors: [...t.errors] })), diverged: [...run.diverged], untold: [...run.untold] };
}

/** What the searcher proposes next for a run: its next proposal, with the pending trials it counts. */
export function nextProposal(run: StudyRun): { proposal: Proposal; searcherState: unknown } {
  const pending = run.trials.filter(isActive).map((t) => ({ id: t.trialId, params: t.params }));
  const { state, proposals } = run.study.searcher.ask(run.searcherState, 1, pending);
  return { proposal: proposals[0]!, searcherState: state };
}

function trialOf(run: StudyRun, trialId: string): TrialRun {
  const n = trialNumberOf(run.studyId, trialId);
  const t = n === undefined ? undefined : run.trials[n - 1];
  if (!t) throw new MabeamError('VALIDATION_FAILED', `Study ${run.studyId} has no trial ${trialId}`);
  return t;
}

/**
 * A trial finished: the searcher is told — at once for an asynchronous
 * study; for a study run in batches, once the whole batch has finished, in
 * trial order, so what it learns does not depend on which evaluator was
 * quicker.
 */
function finish(run: StudyRun, t: TrialRun, state: 'complete' | 'pruned' | 'failed', at: number): void {
  t.state = state;
  t.finishedAt = at;
  t.finishedSeq = run.seq;
  run.finished += 1;
  if (run.study.spec.schedule === 'async') {
    tell(run, t);
    return;
  }
  run.untold.push(t.number);
  if (run.trials.some(isActive)) return;
  for (const n of [...run.untold].sort((a, b) => a - b)) tell(run, run.trials[n - 1]!);
  run.untold = [];
}

function tell(run: StudyRun, t: TrialRun): void {
  const state = t.state as 'complete' | 'pruned' | 'failed';
  const values = state === 'complete' ? t.values : state === 'pruned' ? t.lastValues : null;
  run.searcherState = run.study.searcher.tell(run.searcherState, {
    id: t.trialId,
    params: t.params,
    values: values ?? null,
    status: state,
    ...(state === 'pruned' && t.lastStep !== null ? { step: t.lastStep } : {}),
    ...(t.miniBatch !== null ? { miniBatch: t.miniBatch } : {}),
  } as Parameters<StudyRun['study']['searcher']['tell']>[1]);
}

/** The study a StudyCreated starts; `verify` false folds logged proposals without asking the searcher again. */
export function startRun(event: StudyCreated, verify = true): StudyRun {
  const study = studyOf(event);
  return {
    studyId: event.studyId,
    requesterId: event.requesterId,
    seed: event.seed,
    createdAt: event.envelope.eventTime,
    study,
    searcherState: study.searcher.init(event.seed),
    prunerState: study.pruner.init(),
    trials: [],
    finished: 0,
    seq: 0,
    untold: [],
    completed: null,
    diverged: [],
    verify,
  };
}

/**
 * Applies one log event to a run, in place (decide works on a draft).
 * Events for trials the run does not have are errors of the log: they throw.
 * `asked` is the searcher's answer that a TrialProposed was made from, when
 * the caller has it (then the searcher is not asked twice).
 */
export function evolve(run: StudyRun, e: Exclude<StudyEvent, { type: 'StudyCreated' }>, asked?: { proposal: Proposal; searcherState: unknown }): StudyRun {
  const at = (envelope: Envelope) => envelope.eventTime;
  run.seq += 1;
  switch (e.type) {
    case 'TrialProposed': {
      const ev = e.event;
      if (ev.number !== run.trials.length + 1) throw new MabeamError('VALIDATION_FAILED', `Study ${run.studyId}: trial ${ev.number} proposed after ${run.trials.length}`);
      const params = JSON.parse(ev.params) as Params;
      // The optimizer that made the proposal hands over the searcher's answer; a replay that checks asks again.
      if (asked || run.verify) {
        const { proposal, searcherState } = asked ?? nextProposal(run);
        if (canonicalJson(proposal.params) !== canonicalJson(params) || proposal.seed !== ev.seed) run.diverged.push({ number: ev.number, logged: params, asked: proposal.params });
        run.searcherState = searcherState;
      } else {
        run.searcherState = run.study.searcher.skip(run.searcherState, params, run.trials.filter(isActive).map((t) => ({ id: t.trialId, params: t.params })));
      }
      run.trials.push({
        trialId: ev.trialId, number: ev.number, params, seed: ev.seed, digest: ev.digest, miniBatch: ev.miniBatch, state: 'waiting', attempt: 0, agentId: null, triedBy: [],
        values: null, constraints: [], lastStep: null, lastValues: null, errors: [], proposedAt: at(ev.envelope), finishedAt: null, proposedSeq: run.seq, finishedSeq: null, aliveAt: at(ev.envelope),
      });
      return run;
    }
    case 'TrialAssigned': {
      const t = trialOf(run, e.event.trialId);
      t.state = 'assigned';
      t.attempt = e.event.attempt;
      t.agentId = e.event.agentId;
      t.triedBy.push(e.event.agentId);
      t.lastStep = null;
      t.lastValues = null;
      t.aliveAt = at(e.event.envelope);
      return run;
    }
    case 'TrialStarted': {
      const t = trialOf(run, e.event.trialId);
      t.state = 'running';
      t.aliveAt = at(e.event.envelope);
      run.prunerState = run.study.pruner.start(run.prunerState, t.trialId);
      return run;
    }
    case 'TrialReported': {
      const t = trialOf(run, e.event.trialId);
      t.lastStep = e.event.step;
      t.lastValues = e.event.values;
      t.aliveAt = at(e.event.envelope);
      const value = e.event.values[0];
      if (value !== undefined) {
        run.prunerState = run.study.pruner.report(run.prunerState, { trialId: t.trialId, step: e.event.step, value }, run.study.directions[0]!).state;
      }
      return run;
    }
    case 'TrialPruned': {
      finish(run, trialOf(run, e.event.trialId), 'pruned', at(e.event.envelope));
      return run;
    }
    case 'TrialCompleted': {
      const t = trialOf(run, e.event.trialId);
      t.values = e.event.values;
      t.constraints = e.event.constraints;
      run.prunerState = run.study.pruner.complete(run.prunerState, t.trialId, e.event.values[0]);
      finish(run, t, 'complete', at(e.event.envelope));
      return run;
    }
    case 'TrialFailed': {
      const t = trialOf(run, e.event.trialId);
      t.errors.push(e.event.error);
      if (e.event.final) finish(run, t, 'failed', at(e.event.envelope));
      return run;
    }
    case 'TrialRetried': {
      const t = trialOf(run, e.event.trialId);
      t.state = 'waiting';
      // The retry is the next attempt: the next TrialAssigned carries it, and reports of the one before are stale.
      t.attempt = e.event.attempt;
      t.agentId = null;
      t.aliveAt = at(e.event.envelope);
      return run;
    }
    case 'StudyCompleted': {
      const { envelope: _, ...completed } = e.event;
      run.completed = completed;
      return run;
    }
  }
}
