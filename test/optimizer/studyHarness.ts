/**
 * Studies run in memory: the optimizer's pure decisions (study/decide.ts)
 * fed by a fake clock and simulated evaluators, with no broker. The harness
 * keeps the runs by study id, as the optimizer does, and every event the
 * decisions wrote (`log`, Rejections included) in order. Inputs get ids from
 * a counter, so two harnesses fed the same inputs write the same events.
 */
import { newEnvelope } from '../../src/events/envelope.ts';
import type { EventTypeName, EventTypes, StudyCreated, TrialAssigned } from '../../src/events/types.ts';
import { decideCreated, decideReport, decideTick, type DecideContext, type Decision, type Emitted, type Evaluator } from '../../src/optimizer/study/decide.ts';
import { studyEventTypes, type StudyEvent, type StudyRun } from '../../src/optimizer/study/run.ts';
import type { Params } from '../../src/optimizer/space.ts';

type ReportType = 'TrialStarted' | 'TrialHeartbeat' | 'TrialReported' | 'TrialCompleted' | 'TrialFailed';
type Body<T extends EventTypeName> = Omit<EventTypes[T], 'envelope'>;

/** What a simulated evaluator does with an attempt it is given. */
export type Outcome =
  | { values: number[]; constraints?: number[]; reports?: Array<{ step: number; values: number[] }> }
  | { error: string; reports?: Array<{ step: number; values: number[] }> }
  /** Takes the attempt and never answers (a dead evaluator). */
  | { silent: true };

export type Evaluate = (params: Params, assigned: TrialAssigned) => Outcome;

export interface HarnessOptions {
  /** The clock's start, ms. Default 1_000_000. */
  now?: number;
  /** The running evaluators (capability 'evaluate'). Default e-a, e-b. */
  evaluators?: string[];
  /** Loads the caller adds to what the harness counts (attempts of studies it does not hold). */
  extraLoad?: Record<string, number>;
}

export class StudyHarness {
  now: number;
  evaluators: string[];
  extraLoad: Record<string, number>;
  readonly runs = new Map<string, StudyRun>();
  readonly log: Emitted[] = [];
  private inputs = 0;

  constructor(options: HarnessOptions = {}) {
    this.now = options.now ?? 1_000_000;
    this.evaluators = options.evaluators ?? ['e-a', 'e-b'];
    this.extraLoad = options.extraLoad ?? {};
  }

  /** The optimizer's context: evaluators with the attempts they hold in every study (as optimizer.ts counts them). */
  ctx(): DecideContext {
    // Counted when a decision first asks (most decisions assign nothing), as the runs were before it.
    let loads: Map<string, number> | undefined;
    const count = () => {
      const out = new Map<string, number>(Object.entries(this.extraLoad));
      for (const run of this.runs.values()) {
        for (const t of run.trials) if ((t.state === 'assigned' || t.state === 'running') && t.agentId) out.set(t.agentId, (out.get(t.agentId) ?? 0) + 1);
      }
      return out;
    };
    return {
      now: this.now,
      producerId: 'optimizer-1',
      evaluators: (capability) => {
        loads ??= count();
        return capability === 'evaluate' ? this.evaluators.map((agentId): Evaluator => ({ agentId, load: loads!.get(agentId) ?? 0 })) : [];
      },
    };
  }

  run(studyId: string): StudyRun {
    const run = this.runs.get(studyId);
    if (!run) throw new Error(`no study ${studyId}`);
    return run;
  }

  /** An input as its writer would send it, with an id from the harness's counter. */
  input<T extends EventTypeName>(type: T, body: Body<T>, producerId: string): EventTypes[T] {
    this.inputs += 1;
    const envelope = newEnvelope(type, producerId, { eventId: `input-${this.inputs}`, eventTime: this.now, correlationId: (body as { studyId?: string }).studyId ?? null });
    return { envelope, ...body } as EventTypes[T];
  }

  private keep(studyId: string, decision: Decision): Emitted[] {
    if (decision.run) this.runs.set(studyId, decision.run);
    this.log.push(...decision.events);
    return decision.events;
  }

  /** A study declared (the spec as an object, or a string taken as it is). */
  declare(studyId: string, spec: unknown, options: { seed?: number; requesterId?: string } = {}): Emitted[] {
    const input: StudyCreated = this.input('StudyCreated', { studyId, requesterId: options.requesterId ?? 'cli-1', seed: options.seed ?? 7, spec: typeof spec === 'string' ? spec : JSON.stringify(spec) }, options.requesterId ?? 'cli-1');
    return this.keep(studyId, decideCreated(this.runs.get(studyId), input, this.ctx()));
  }

  /** An evaluator's report; returns what the optimizer wrote for it. */
  report<T extends ReportType>(type: T, body: Body<T>): Emitted[] {
    const input = this.input(type, body, (body as { agentId?: string | null }).agentId ?? 'anyone');
    return this.keep(body.studyId, decideReport(this.runs.get(body.studyId), type, input as Parameters<typeof decideReport>[2], this.ctx()));
  }

  /** One tick of the clock over every study. */
  tick(): Emitted[] {
    const out: Emitted[] = [];
    for (const [studyId, run] of [...this.runs]) out.push(...this.keep(studyId, decideTick(run, this.ctx())));
    return out;
  }

  /** The current attempt of trial `number`, as its evaluator names it. */
  attemptOf(studyId: string, number: number): { studyId: string; trialId: string; attempt: number; agentId: string } {
    const t = this.run(studyId).trials[number - 1];
    if (!t || t.agentId === null) throw new Error(`trial ${number} of ${studyId} is not assigned`);
    return { studyId, trialId: t.trialId, attempt: t.attempt, agentId: t.agentId };
  }

  /** The study's log as a reader of `studies` folds it: its study events, in order (Rejections are not study events). */
  studyLog(studyId: string): StudyEvent[] {
    return this.log.filter((e) => studyEventTypes.has(e.type) && (e.event as { studyId?: string }).studyId === studyId) as unknown as StudyEvent[];
  }

  /**
   * Evaluators at work: every TrialAssigned of the study written from `from`
   * on (default: the whole log) is taken in the order written, and answered
   * as `evaluate` says — TrialStarted, the intermediate reports (stopping if
   * the trial is pruned), then TrialCompleted or TrialFailed — with the clock
   * moving `stepMs` before each input. An assignment no longer current when
   * its turn comes (retried, finished) is skipped. Stops when the study
   * completes, when `until` says so, or when nothing is left to answer;
   * throws after `limit` assignments answered (a study that never ends).
   */
  evaluate(studyId: string, evaluate: Evaluate, options: { stepMs?: number; until?: (run: StudyRun) => boolean; from?: number; limit?: number } = {}): void {
    const stepMs = options.stepMs ?? 10;
    const limit = options.limit ?? 10_000;
    let answered = 0;
    let cursor = options.from ?? 0;
    const queue: TrialAssigned[] = [];
    const step = () => {
      this.now += stepMs;
    };
    const current = (a: TrialAssigned) => {
      const t = this.run(studyId).trials[a.number - 1]!;
      return (t.state === 'assigned' || t.state === 'running') && t.attempt === a.attempt && t.agentId === a.agentId;
    };
    for (;;) {
      for (; cursor < this.log.length; cursor++) {
        const e = this.log[cursor]!;
        if (e.type === 'TrialAssigned' && e.event.studyId === studyId) queue.push(e.event);
      }
      const run = this.run(studyId);
      if (run.completed || options.until?.(run)) return;
      const a = queue.shift();
      if (!a) return;
      if (!current(a)) continue;
      if (++answered > limit) throw new Error(`study ${studyId}: more than ${limit} assignments answered`);
      const outcome = evaluate(JSON.parse(a.params) as Params, a);
      if ('silent' in outcome) continue;
      const base = { studyId, trialId: a.trialId, attempt: a.attempt, agentId: a.agentId };
      step();
      this.report('TrialStarted', { ...base, instanceId: `${a.agentId}-host`, leaseMs: a.leaseMs });
      for (const r of outcome.reports ?? []) {
        if (!current(a)) break;
        step();
        this.report('TrialReported', { ...base, step: r.step, values: r.values, pruned: false });
      }
      if (!current(a)) continue;
      step();
      if ('error' in outcome) this.report('TrialFailed', { ...base, error: outcome.error, final: false });
      else this.report('TrialCompleted', { ...base, values: outcome.values, constraints: outcome.constraints ?? [] });
    }
  }
}

/** Events of one type, in order. */
export function ofType<T extends EventTypeName>(events: readonly Emitted[], type: T): Array<EventTypes[T]> {
  return events.filter((e) => e.type === type).map((e) => e.event as EventTypes[T]);
}
