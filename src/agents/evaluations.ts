import { ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import type { DecodedEvent, EventCodec } from '../codec/codec.ts';
import { describeError } from '../errors.ts';
import { deterministicEventId, newEnvelope } from '../events/envelope.ts';
import type { TrialAssigned } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import { messagingSpan, type MessagingSpan } from '../tracing/trace.ts';
import { handling } from './dispatch.ts';
import type { Outbox, Outgoing } from './outbox.ts';
import type { HostedAgent, Trial, TrialAnswer, TrialContext } from './types.ts';

export interface EvaluationsOptions {
  outbox: Pick<Outbox, 'send'>;
  codec: Pick<EventCodec, 'check'>;
  instanceId: string;
  topic: (name: string) => string;
  logger: Logger;
  /** The host's consumer group (on the spans of the evaluations). */
  group?: string;
}

interface Running {
  agentId: string;
  studyId: string;
  trialId: string;
  attempt: number;
  controller: AbortController;
  stopReason: string | null;
  heartbeat: NodeJS.Timeout | undefined;
  leaseMs: number;
  /** Reports waiting for the optimizer's verdict, by step. */
  verdicts: Map<number, Array<(pruned: boolean) => void>>;
  /** Everything this evaluation writes, in order. */
  chain: Promise<void>;
  done: Promise<void>;
  /** The evaluation's span (a child of its assignment's), until it ends. */
  span: MessagingSpan | undefined;
  /** The trace headers everything the evaluation writes carries: its assignment's trace. */
  trace: Record<string, string>;
}

/** maxHandlerErrorLength of dispatch: an error message longer than this is cut. */
const maxErrorLength = 2_000;

/**
 * The evaluations of a host's agents: a TrialAssigned (on `studies`) to a
 * local agent with `onTrial` starts one beside the consumer — it is not
 * awaited by the batch, so a long evaluation holds up nothing. Each writes,
 * in order, TrialStarted (its lease), a TrialHeartbeat every third of the
 * lease, the intermediate values its handler reports (each answered with
 * the pruner's verdict once the optimizer has written it back), and
 * TrialCompleted or TrialFailed. A TrialPruned, a TrialRetried (the lease was lost) or a
 * StudyCompleted aborts it: its handler's signal fires and nothing more is
 * written for it. Nothing a handler does escapes: a throw, or an answer
 * that is not numbers, is the attempt's TrialFailed.
 *
 * A host that dies mid-trial writes nothing more: the lease runs out and the
 * optimizer retries the trial elsewhere. A host that stops says so
 * (TrialFailed "evaluator stopping"), so the retry need not wait for the lease.
 *
 * An evaluation runs in a span of its assignment's trace (`process
 * <studies>`, from the assignment to the evaluation's end), and everything
 * it writes carries that span on: a study's creation, its trials'
 * assignments and their reports share one trace.
 */
export class Evaluations {
  private readonly o: EvaluationsOptions;
  private readonly running = new Map<string, Running>();

  constructor(options: EvaluationsOptions) {
    this.o = options;
  }

  get size(): number {
    return this.running.size;
  }

  /** Whether any of these agents evaluates trials (then the host reads `studies`). */
  static wanted(agents: Iterable<HostedAgent>): boolean {
    for (const a of agents) if (a.definition.onTrial) return true;
    return false;
  }

  /** One record of `studies`; `parent` is the trace context it carries (contextOf its headers). */
  handle(decoded: DecodedEvent, agents: ReadonlyMap<string, HostedAgent>, parent: Context = ROOT_CONTEXT): void {
    switch (decoded.type) {
      case 'TrialAssigned': {
        const a = decoded.event;
        const agent = agents.get(a.agentId);
        if (!agent?.definition.onTrial || !handling(agent)) return;
        if (this.running.has(keyOf(a.trialId, a.attempt))) return; // delivered again
        this.start(a, agent, parent);
        return;
      }
      case 'TrialReported': {
        // The optimizer wrote a report back, with the pruner's verdict on it.
        const e = decoded.event;
        const r = this.running.get(keyOf(e.trialId, e.attempt));
        // Pruned: the evaluation stops now (its TrialPruned follows), so nothing more is written for it.
        if (r && e.pruned === true) this.stopOne(r, `pruned at step ${e.step}`);
        else if (r) settle(r, e.step, false);
        return;
      }
      case 'TrialPruned': {
        const p = decoded.event;
        this.abort((r) => r.trialId === p.trialId, `pruned by ${p.rule} at step ${p.step}: ${p.reason}`);
        return;
      }
      case 'TrialRetried': {
        const r = decoded.event;
        this.abort((x) => x.trialId === r.trialId && x.attempt < r.attempt, `retried as attempt ${r.attempt} (${r.reasonCode}: ${r.reason})`);
        return;
      }
      case 'StudyCompleted': {
        const c = decoded.event;
        this.abort((x) => x.studyId === c.studyId, `study ${c.studyId} completed (${c.reason})`);
        return;
      }
    }
  }

  /** Stops every evaluation: each is told (aborted) and reported failed, so the optimizer retries it at once. */
  async stop(reason: string): Promise<void> {
    const all = [...this.running.values()];
    for (const r of all) {
      this.write(r, 'TrialFailed', { studyId: r.studyId, trialId: r.trialId, attempt: r.attempt, agentId: r.agentId, error: `evaluator stopping: ${reason}`, final: false });
      this.stopOne(r, `host stopping: ${reason}`);
    }
    await Promise.all(all.map((r) => r.done.catch(() => undefined)));
    await Promise.all(all.map((r) => r.chain));
  }

  private abort(match: (r: Running) => boolean, reason: string): void {
    for (const r of this.running.values()) if (match(r)) this.stopOne(r, reason);
  }

  private stopOne(r: Running, reason: string): void {
    if (r.controller.signal.aborted) return;
    r.stopReason = reason;
    clearInterval(r.heartbeat);
    r.controller.abort(new Error(reason));
    for (const step of [...r.verdicts.keys()]) settle(r, step, true);
    r.span?.span.setAttribute('mabeam.stop_reason', reason);
    endSpan(r);
    this.o.logger.debug({ trialId: r.trialId, attempt: r.attempt, reason }, 'evaluation stopped');
  }

  private start(a: TrialAssigned, agent: HostedAgent, parent: Context): void {
    const o = this.o;
    const controller = new AbortController();
    const span = messagingSpan('process', o.topic('studies'), parent, {
      key: a.studyId,
      ...(o.group ? { group: o.group } : {}),
      subject: { 'mabeam.study_id': a.studyId, 'mabeam.trial_id': a.trialId, 'mabeam.attempt': String(a.attempt), 'mabeam.agent_id': a.agentId },
    });
    const r: Running = {
      agentId: a.agentId, studyId: a.studyId, trialId: a.trialId, attempt: a.attempt, controller, stopReason: null,
      heartbeat: undefined, leaseMs: a.leaseMs, verdicts: new Map(), chain: Promise.resolve(), done: Promise.resolve(), span, trace: span.headers,
    };
    const key = keyOf(a.trialId, a.attempt);
    this.running.set(key, r);
    const base = { studyId: a.studyId, trialId: a.trialId, attempt: a.attempt, agentId: a.agentId };
    this.write(r, 'TrialStarted', { ...base, instanceId: o.instanceId, leaseMs: a.leaseMs }, a.envelope.eventId);
    r.heartbeat = setInterval(() => this.write(r, 'TrialHeartbeat', base), Math.max(100, Math.floor(a.leaseMs / 3)));
    r.heartbeat.unref();
    let params: Record<string, unknown>;
    try {
      params = JSON.parse(a.params) as Record<string, unknown>;
    } catch (error) {
      this.finish(r, key, { error: `the assignment's params are not JSON: ${describeError(error)}` });
      return;
    }
    const trial: Trial = { studyId: a.studyId, trialId: a.trialId, number: a.number, attempt: a.attempt, params, miniBatch: a.miniBatch };
    const context: TrialContext<unknown> = Object.assign(Object.create(agent.context) as object, {
      signal: controller.signal,
      intermediate: async (step: number, value: number | number[]): Promise<boolean> => {
        if (controller.signal.aborted) return true;
        const values = Array.isArray(value) ? value : [value];
        const bad = badNumbers(values);
        if (bad || !Number.isSafeInteger(step) || step < 0) throw new TypeError(bad ?? `a step must be a whole number >= 0, not ${step}`);
        // Waiting for the verdict from before the report is written: the answer cannot slip past.
        const verdict = new Promise<boolean>((resolve) => {
          const list = r.verdicts.get(step) ?? [];
          list.push(resolve);
          r.verdicts.set(step, list);
        });
        const timer = setTimeout(() => settle(r, step, false), Math.max(100, Math.floor(r.leaseMs / 3)));
        this.write(r, 'TrialReported', { ...base, step, values, pruned: false });
        try {
          return await verdict;
        } finally {
          clearTimeout(timer);
        }
      },
    }) as TrialContext<unknown>;
    // Object.assign would copy a getter's value (null) once: the reason is read when asked for.
    Object.defineProperty(context, 'stopReason', { get: () => r.stopReason, enumerable: true });
    r.done = (async () => {
      try {
        const answer = await agent.definition.onTrial!(trial, context);
        this.finish(r, key, normalise(answer));
      } catch (error) {
        this.finish(r, key, { error: describeError(error).slice(0, maxErrorLength) });
      }
    })();
  }

  private finish(r: Running, key: string, result: { values: number[]; constraints: number[] } | { error: string }): void {
    clearInterval(r.heartbeat);
    if (!r.controller.signal.aborted) {
      const base = { studyId: r.studyId, trialId: r.trialId, attempt: r.attempt, agentId: r.agentId };
      if ('error' in result) this.write(r, 'TrialFailed', { ...base, error: result.error, final: false });
      else this.write(r, 'TrialCompleted', { ...base, values: result.values, constraints: result.constraints });
      endSpan(r, 'error' in result ? result.error : undefined);
    }
    void r.chain.finally(() => {
      if (this.running.get(key) === r) this.running.delete(key);
    });
  }

  /** Queues one event of an evaluation: its events are written one after another, in order. */
  private write<T extends 'TrialStarted' | 'TrialHeartbeat' | 'TrialReported' | 'TrialCompleted' | 'TrialFailed'>(r: Running, type: T, body: Record<string, unknown>, causationId?: string): void {
    const o = this.o;
    const eventId = type === 'TrialStarted' ? deterministicEventId('trial-started', r.trialId, String(r.attempt), r.agentId) : undefined;
    const event = { envelope: newEnvelope(type, r.agentId, { correlationId: r.studyId, causationId: causationId ?? null, ...(eventId ? { eventId } : {}) }), ...body };
    const outgoing: Outgoing = { topic: o.topic('study-inputs'), key: r.studyId, type, event: event as Outgoing['event'] };
    r.chain = r.chain
      .then(() => o.outbox.send([outgoing], r.trace))
      .catch((error: unknown) => o.logger.warn({ trialId: r.trialId, attempt: r.attempt, type, error: describeError(error) }, 'a trial event could not be written; the lease will tell'));
  }
}

/** Ends an evaluation's span once (with its error, when it failed). */
function endSpan(r: Running, error?: string): void {
  r.span?.end(error);
  r.span = undefined;
}

/** Tells the reports of a step waiting for a verdict. */
function settle(r: Running, step: number, pruned: boolean): void {
  const waiting = r.verdicts.get(step);
  if (!waiting) return;
  r.verdicts.delete(step);
  for (const resolve of waiting) resolve(pruned || r.controller.signal.aborted);
}

function keyOf(trialId: string, attempt: number): string {
  return `${trialId}\u0000${attempt}`;
}

function badNumbers(values: readonly unknown[]): string | undefined {
  if (values.length === 0) return 'an evaluation must answer at least one value';
  if (!values.every((v) => typeof v === 'number' && Number.isFinite(v))) return `values must be finite numbers, not ${JSON.stringify(values)}`;
  return undefined;
}

function normalise(answer: TrialAnswer): { values: number[]; constraints: number[] } | { error: string } {
  const values = typeof answer === 'number' ? [answer] : Array.isArray(answer) ? answer : answer && typeof answer === 'object' ? answer.values : undefined;
  const constraints = answer && typeof answer === 'object' && !Array.isArray(answer) ? (answer.constraints ?? []) : [];
  if (!Array.isArray(values)) return { error: `onTrial must answer a number, an array of numbers or { values, constraints }, not ${JSON.stringify(answer)}` };
  const bad = badNumbers(values) ?? (constraints.length > 0 ? badNumbers(constraints) : undefined);
  if (bad) return { error: `onTrial answered ${JSON.stringify(answer)}: ${bad}` };
  return { values: [...values], constraints: [...constraints] };
}
