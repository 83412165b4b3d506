/**
 * The optimizer's decisions, with no Kafka in them: for each input (a study
 * declared, an evaluator's report) and each tick of the clock, the events to
 * write on the study's log. Every event is evolved into the run as soon as
 * it is emitted, so the next decision sees it, and the run a decision
 * leaves is exactly what evolving the written events gives.
 *
 * - A declaration is checked; a bad one, or a second one for the same id,
 *   gets a Rejection. A good one is written back (the study starts) and the
 *   first `parallelism` trials are proposed and assigned.
 * - A report counts only for the current attempt of an unfinished trial, by
 *   the evaluator it was assigned to: anything else — a late report of an
 *   attempt retried elsewhere, a second completion — gets a Rejection, so a
 *   trial is never counted twice.
 * - Intermediate values go to the pruner; a prune is a TrialPruned.
 * - A failure is retried (same params, another evaluator) until the retry
 *   policy's attempts are used; a lease that runs out (no sign of life from
 *   the evaluator) is a clock decision, written as TrialRetried before the
 *   trial is given to anyone else.
 * - When the trial budget is spent (or the time budget is up) the study
 *   completes with its best trials.
 */
import { deterministicEventId, newEnvelope } from '../../events/envelope.ts';
import type { EventTypeName, EventTypes, Rejection, StudyCreated, TrialCompleted, TrialFailed, TrialHeartbeat, TrialReported, TrialStarted } from '../../events/types.ts';
import { isPrune } from '../pruners/index.ts';
import { bestTrials } from './best.ts';
import { draftOf, evolve, isActive, isFinished, nextProposal, startRun, trialIdOf, trialNumberOf, type StudyEvent, type StudyRun, type TrialRun } from './run.ts';

/** An evaluator that may be given a trial, with the attempts it holds now. */
export interface Evaluator {
  agentId: string;
  load: number;
}

export interface DecideContext {
  /** The optimizer's clock, ms. */
  now: number;
  /** Who writes (envelope producerId). */
  producerId: string;
  /** The running agents with a capability, with their load; the caller counts loads, decide adds what it assigns. */
  evaluators(capability: string): Evaluator[];
}

/** An event to write on the study's log. */
export type Emitted = { [T in EventTypeName]: { type: T; event: EventTypes[T] } }[EventTypeName];

/** What a decision leaves: the run (a new object; undefined when the input started nothing) and the events to write. */
export interface Decision {
  run: StudyRun | undefined;
  events: Emitted[];
}

type Body<T extends EventTypeName> = Omit<EventTypes[T], 'envelope'>;

/** The events of one decision, evolved into the draft as they are emitted. */
class Emitter {
  readonly events: Emitted[] = [];
  private readonly ctx: DecideContext;
  private readonly studyId: string;
  private readonly causationId: string | null;

  constructor(ctx: DecideContext, studyId: string, causationId: string | null) {
    this.ctx = ctx;
    this.studyId = studyId;
    this.causationId = causationId;
  }

  event<T extends EventTypeName>(type: T, body: Body<T>): EventTypes[T] {
    // An answer to an input gets an id derived from it (a redelivered input yields the same ids); a clock decision a fresh one.
    const eventId = this.causationId === null ? undefined : deterministicEventId('study', this.causationId, type, String(this.events.length));
    const envelope = newEnvelope(type, this.ctx.producerId, { correlationId: this.studyId, causationId: this.causationId, eventTime: this.ctx.now, ...(eventId ? { eventId } : {}) });
    const event = { envelope, ...body } as EventTypes[T];
    this.events.push({ type, event } as Emitted);
    return event;
  }

  /** Emits a log event and evolves the run with it. */
  emit<T extends Exclude<StudyEvent['type'], 'StudyCreated'>>(run: StudyRun, type: T, body: Body<T>, asked?: Parameters<typeof evolve>[2]): void {
    const event = this.event(type, body);
    evolve(run, { type, event } as Exclude<StudyEvent, { type: 'StudyCreated' }>, asked);
  }

  reject(rejected: { envelope: { eventId: string; eventType: string } }, agentId: string | null, reasonCode: string, reason: string): void {
    this.event('Rejection', { subjectId: this.studyId, rejectedEventId: rejected.envelope.eventId, rejectedEventType: rejected.envelope.eventType, agentId, reasonCode, reason } satisfies Body<'Rejection'> as Omit<Rejection, 'envelope'>);
  }
}

/** A study declared: started (written back, first trials proposed) or rejected. */
export function decideCreated(existing: StudyRun | undefined, input: StudyCreated, ctx: DecideContext): Decision {
  const out = new Emitter(ctx, input.studyId, input.envelope.eventId);
  if (existing) {
    out.reject(input, null, 'DUPLICATE_STUDY', `Study ${input.studyId} exists already (declared by ${existing.requesterId}); choose another study id.`);
    return { run: existing, events: out.events };
  }
  let run: StudyRun;
  try {
    run = startRun(out.event('StudyCreated', { studyId: input.studyId, requesterId: input.requesterId, seed: input.seed, spec: input.spec }));
  } catch (error) {
    out.events.length = 0;
    out.reject(input, null, 'INVALID_STUDY', (error as Error).message);
    return { run: undefined, events: out.events };
  }
  fill(run, out, ctx);
  return { run, events: out.events };
}

type Report = TrialStarted | TrialHeartbeat | TrialReported | TrialCompleted | TrialFailed;

/** The current trial a report is for, or the reason it does not count. */
function current(run: StudyRun | undefined, report: Report): { trial: TrialRun } | { code: string; reason: string } {
  if (!run) return { code: 'UNKNOWN_STUDY', reason: `No study ${report.studyId} has been started.` };
  if (run.completed) return { code: 'STUDY_COMPLETED', reason: `Study ${run.studyId} has completed (${run.completed.reason}).` };
  const n = trialNumberOf(run.studyId, report.trialId);
  const trial = n === undefined ? undefined : run.trials[n - 1];
  if (!trial) return { code: 'UNKNOWN_TRIAL', reason: `Study ${run.studyId} has no trial ${report.trialId}.` };
  if (isFinished(trial)) return { code: 'TRIAL_FINISHED', reason: `Trial ${trial.trialId} is ${trial.state} already; it counts once.` };
  if (report.attempt !== trial.attempt || trial.state === 'waiting') {
    return { code: 'STALE_ATTEMPT', reason: `Trial ${trial.trialId} is at attempt ${trial.attempt}${trial.state === 'waiting' ? ' (waiting for an evaluator)' : ''}, not ${report.attempt}.` };
  }
  if (report.agentId !== trial.agentId) return { code: 'NOT_ASSIGNED', reason: `Attempt ${trial.attempt} of trial ${trial.trialId} is assigned to ${trial.agentId}, not ${report.agentId}.` };
  return { trial };
}

function badValues(values: readonly number[], expected: number, what: string): string | undefined {
  if (values.length !== expected) return `${what} has ${values.length} value(s) but the study has ${expected}.`;
  if (!values.every((v) => Number.isFinite(v))) return `${what} must be finite numbers, not ${JSON.stringify(values)}.`;
  return undefined;
}

/** An evaluator's (or anyone's) report on a trial. */
/** A report refused before it is looked at (its signature, signatures required): a Rejection, the study unchanged. */
export function decideRefusedReport(existing: StudyRun | undefined, input: Report, reasonCode: string, reason: string, ctx: DecideContext): Decision {
  const out = new Emitter(ctx, input.studyId, input.envelope.eventId);
  out.reject(input, input.agentId, reasonCode, reason);
  return { run: existing, events: out.events };
}

export function decideReport(existing: StudyRun | undefined, type: 'TrialStarted' | 'TrialHeartbeat' | 'TrialReported' | 'TrialCompleted' | 'TrialFailed', input: Report, ctx: DecideContext): Decision {
  const out = new Emitter(ctx, input.studyId, input.envelope.eventId);
  const found = current(existing, input);
  if ('code' in found) {
    out.reject(input, input.agentId, found.code, found.reason);
    return { run: existing, events: out.events };
  }
  const run = draftOf(existing!);
  const trial = run.trials[found.trial.number - 1]!;
  const spec = run.study.spec;
  const base = { studyId: run.studyId, trialId: trial.trialId, attempt: trial.attempt };
  switch (type) {
    case 'TrialStarted': {
      const e = input as TrialStarted;
      out.emit(run, 'TrialStarted', { ...base, agentId: e.agentId, instanceId: e.instanceId, leaseMs: e.leaseMs });
      break;
    }
    case 'TrialHeartbeat':
      // A sign of life renews the lease; it decides nothing, so nothing is written.
      trial.aliveAt = ctx.now;
      break;
    case 'TrialReported': {
      const e = input as TrialReported;
      const bad = badValues(e.values, run.study.directions.length, `The report at step ${e.step}`) ?? (Number.isSafeInteger(e.step) && e.step >= 0 ? undefined : `The step must be a whole number >= 0, not ${e.step}.`);
      if (bad) {
        out.reject(input, e.agentId, 'INVALID_VALUES', bad);
        return { run: existing, events: out.events };
      }
      const judged = run.study.pruner.report(run.prunerState, { trialId: trial.trialId, step: e.step, value: e.values[0]! }, run.study.directions[0]!);
      out.emit(run, 'TrialReported', { ...base, agentId: e.agentId, step: e.step, values: e.values, pruned: isPrune(judged.decision) });
      if (isPrune(judged.decision)) out.emit(run, 'TrialPruned', { ...base, step: e.step, rule: judged.decision.rule, reason: judged.decision.reason });
      break;
    }
    case 'TrialCompleted': {
      const e = input as TrialCompleted;
      const bad = badValues(e.values, run.study.directions.length, 'The completion') ?? badValues(e.constraints, spec.constraints.length, 'Its constraints');
      if (bad) {
        out.reject(input, e.agentId, 'INVALID_VALUES', bad);
        return { run: existing, events: out.events };
      }
      out.emit(run, 'TrialCompleted', { ...base, agentId: e.agentId, values: e.values, constraints: e.constraints });
      break;
    }
    case 'TrialFailed': {
      const e = input as TrialFailed;
      const final = !spec.retry.retryOnError || trial.attempt >= spec.retry.maxAttempts;
      out.emit(run, 'TrialFailed', { ...base, agentId: e.agentId, error: e.error, final });
      if (!final) {
        out.emit(run, 'TrialRetried', { ...base, attempt: trial.attempt + 1, previousAgentId: e.agentId, reasonCode: 'EVALUATION_FAILED', reason: `attempt ${trial.attempt} on ${e.agentId} failed: ${e.error}` });
      }
      break;
    }
  }
  fill(run, out, ctx);
  return { run, events: out.events };
}

/**
 * The clock: attempts whose evaluator gave no sign of life for their lease
 * are retried (or, out of attempts, failed); a study past its time budget
 * completes; waiting trials get evaluators that have appeared since.
 */
export function decideTick(existing: StudyRun, ctx: DecideContext): Decision {
  if (existing.completed) return { run: existing, events: [] };
  const run = draftOf(existing);
  const out = new Emitter(ctx, run.studyId, null);
  const { maxAttempts, leaseMs } = run.study.spec.retry;
  for (const t of run.trials) {
    if ((t.state !== 'assigned' && t.state !== 'running') || ctx.now - t.aliveAt < leaseMs) continue;
    const base = { studyId: run.studyId, trialId: t.trialId, attempt: t.attempt };
    const code = t.state === 'assigned' ? 'NOT_STARTED' : 'LEASE_EXPIRED';
    const what = t.state === 'assigned' ? `was not started by ${t.agentId}` : `had no sign of life from ${t.agentId}`;
    const reason = `attempt ${t.attempt} ${what} for ${ctx.now - t.aliveAt} ms (lease ${leaseMs} ms)`;
    if (t.attempt >= maxAttempts) out.emit(run, 'TrialFailed', { ...base, agentId: t.agentId, error: `${code}: ${reason}; no attempts left`, final: true });
    else out.emit(run, 'TrialRetried', { ...base, attempt: t.attempt + 1, previousAgentId: t.agentId, reasonCode: code, reason });
  }
  fill(run, out, ctx);
  return out.events.length === 0 ? { run: existing, events: [] } : { run, events: out.events };
}

/** Proposes up to the parallelism, assigns what waits, and completes a study whose budget is spent. */
function fill(run: StudyRun, out: Emitter, ctx: DecideContext): void {
  if (run.completed) return;
  const spec = run.study.spec;
  if (spec.budget.timeMs !== undefined && ctx.now >= run.createdAt + spec.budget.timeMs) {
    complete(run, out, 'time');
    return;
  }
  const limit = spec.budget.trials ?? Number.POSITIVE_INFINITY;
  // A batch study proposes the next batch only when the whole of the last one has finished.
  const open = spec.schedule === 'async' || !run.trials.some(isActive);
  while (open && run.trials.length < limit && run.trials.filter(isActive).length < spec.parallelism) {
    const asked = nextProposal(run);
    const number = run.trials.length + 1;
    out.emit(
      run,
      'TrialProposed',
      {
        studyId: run.studyId, trialId: trialIdOf(run.studyId, number), number, params: JSON.stringify(asked.proposal.params), seed: asked.proposal.seed, digest: asked.proposal.digest,
        miniBatch: asked.proposal.miniBatch ?? null, origin: asked.proposal.origin ? JSON.stringify(asked.proposal.origin) : null, searcher: run.study.searcher.name,
      },
      asked,
    );
  }
  assign(run, out, ctx);
  if (run.trials.length >= limit && run.finished >= limit) complete(run, out, 'trials');
}

/** Gives each waiting trial to the least-loaded evaluator, preferring one that has not tried it. */
function assign(run: StudyRun, out: Emitter, ctx: DecideContext): void {
  const waiting = run.trials.filter((t) => t.state === 'waiting');
  if (waiting.length === 0) return;
  const evaluators = ctx.evaluators(run.study.spec.evaluators.capability);
  for (const t of waiting) {
    if (evaluators.length === 0) return;
    const fresh = evaluators.filter((e) => !t.triedBy.includes(e.agentId));
    const pool = fresh.length > 0 ? fresh : evaluators;
    const chosen = pool.reduce((a, b) => (b.load < a.load || (b.load === a.load && b.agentId < a.agentId) ? b : a));
    chosen.load += 1;
    out.emit(run, 'TrialAssigned', {
      studyId: run.studyId, trialId: t.trialId, number: t.number, attempt: Math.max(1, t.attempt), agentId: chosen.agentId, rule: 'least-loaded',
      params: JSON.stringify(t.params), miniBatch: t.miniBatch, leaseMs: run.study.spec.retry.leaseMs,
    });
  }
}

function complete(run: StudyRun, out: Emitter, reason: 'trials' | 'time'): void {
  const best = bestTrials(run);
  const applied = best.length === 1 ? [...new Set(Object.values(run.study.spec.apply))].sort() : [];
  out.emit(run, 'StudyCompleted', { studyId: run.studyId, reason, trials: run.finished, best: JSON.stringify(best), applied });
}
