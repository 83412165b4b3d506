import { ROOT_CONTEXT, type Context } from '@opentelemetry/api';
import type { DecodedEvent } from '../codec/codec.ts';
import { MabeamError } from '../errors.ts';
import { deterministicEventId, newEnvelope } from '../events/envelope.ts';
import type { StepAssigned } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import { messagingSpan, type MessagingSpan } from '../tracing/trace.ts';
import { describeThrown, handling, maxHandlerErrorLength } from './dispatch.ts';
import type { Outbox, Outgoing } from './outbox.ts';
import type { HostedAgent, Step, StepContext } from './types.ts';

/**
 * What a step handler throws to fail the step for good: `retriable: false`
 * tells the planner that another attempt would fail the same way. Any other
 * throw (or a StepError that is retriable) is a failure the plan's retry
 * policy may retry.
 */
export class StepError extends MabeamError {
  constructor(message: string, options: { retriable?: boolean; cause?: unknown } = {}) {
    super('STEP_FAILED', message, { retriable: options.retriable ?? true, ...(options.cause === undefined ? {} : { cause: options.cause }) });
  }
}

export interface StepsOptions {
  outbox: Pick<Outbox, 'send'>;
  instanceId: string;
  topic: (name: string) => string;
  logger: Logger;
  /** The host's consumer group (on the spans of the attempts). */
  group?: string;
}

interface Running {
  agentId: string;
  planId: string;
  stepId: string;
  attempt: number;
  controller: AbortController;
  stopReason: string | null;
  heartbeat: NodeJS.Timeout | undefined;
  /** The attempt's StepCompleted or StepFailed is written (or it was aborted): nothing more is. */
  finished: boolean;
  /** Everything this attempt writes, in order. */
  chain: Promise<void>;
  done: Promise<void>;
  /** The attempt's span (a child of its assignment's), until it ends. */
  span: MessagingSpan | undefined;
  /** The trace headers everything the attempt writes carries: its assignment's trace. */
  trace: Record<string, string>;
}

type Outcome = { result: string } | { error: string; retriable: boolean };

/** How many attempts a host remembers having started, so that one delivered again is not run again. */
const rememberedAttempts = 10_000;

/**
 * The steps a host's agents run: a StepAssigned (on `plans`) to a local
 * agent with `onStep` starts the attempt beside the consumer — it is not
 * awaited by the batch, so a long step holds up nothing. Each attempt
 * writes, in order, to `plan-inputs` (keyed by plan id): StepStarted (its
 * lease), a StepHeartbeat every third of the lease, then StepCompleted (the
 * result as JSON) or StepFailed (retriable unless the handler threw a
 * StepError that says otherwise). The same attempt delivered again is not
 * run again. A StepRetried (a later attempt), the planner counting the
 * attempt failed (its lease ran out) or the plan's end (completed, failed,
 * cancelled) aborts it: the handler's signal fires and nothing more is
 * written for it. Nothing a handler does escapes: a throw, or a result JSON
 * cannot hold, is the attempt's StepFailed.
 *
 * An attempt runs in a span of its assignment's trace (`process <plans>`,
 * from the assignment to the attempt's end), and everything it writes
 * carries that span on: the plan's request, its steps' assignments and
 * their reports share one trace.
 *
 * A host that dies mid-step writes nothing more: the lease runs out and the
 * planner retries the step elsewhere. A host that stops says so (StepFailed
 * "agent stopping", retriable), so the retry need not wait for the lease.
 */
export class Steps {
  private readonly o: StepsOptions;
  private readonly running = new Map<string, Running>();
  /** Attempts started here, oldest first (a Map keeps insertion order). */
  private readonly started = new Map<string, true>();

  constructor(options: StepsOptions) {
    this.o = options;
  }

  get size(): number {
    return this.running.size;
  }

  /** Step attempts agents here bid on and have not heard of yet, until the auction's deadline. */
  private readonly promised = new Map<string, { agents: Set<string>; until: number }>();

  /** How many steps an agent is running, or has bid on and not yet heard of: its load, the base of its default cost in a step's auction. */
  load(agentId: string, now = Date.now()): number {
    let n = 0;
    for (const r of this.running.values()) if (r.agentId === agentId && !r.finished) n += 1;
    for (const [key, p] of this.promised) {
      if (p.until < now) this.promised.delete(key);
      else if (p.agents.has(agentId)) n += 1;
    }
    return n;
  }

  /** An agent here bid on a step's attempt: it counts in its load until the step is assigned (to anyone) or the auction's deadline. */
  bidOn(agentId: string, step: { planId: string; stepId: string; attempt: number }, deadline: number): void {
    const key = keyOf(step.planId, step.stepId, step.attempt);
    const p = this.promised.get(key) ?? { agents: new Set<string>(), until: deadline };
    p.agents.add(agentId);
    this.promised.set(key, p);
  }

  /** Whether any of these agents runs steps (then the host reads `plans`). */
  static wanted(agents: Iterable<HostedAgent>): boolean {
    for (const a of agents) if (a.definition.onStep) return true;
    return false;
  }

  /** One record of `plans`; `parent` is the trace context it carries (contextOf its headers). */
  handle(decoded: DecodedEvent, agents: ReadonlyMap<string, HostedAgent>, parent: Context = ROOT_CONTEXT): void {
    switch (decoded.type) {
      case 'StepAssigned': {
        const a = decoded.event;
        this.promised.delete(keyOf(a.planId, a.stepId, a.attempt));
        const agent = agents.get(a.agentId);
        if (!agent?.definition.onStep || !handling(agent)) return;
        const key = keyOf(a.planId, a.stepId, a.attempt);
        if (this.started.has(key)) return; // delivered again
        this.remember(key);
        this.start(a, agent, key, parent);
        return;
      }
      case 'StepRetried': {
        const r = decoded.event;
        this.abort((x) => x.planId === r.planId && x.stepId === r.stepId && x.attempt < r.attempt, `retried as attempt ${r.attempt} (${r.reasonCode}: ${r.reason})`);
        return;
      }
      case 'StepFailed': {
        // The planner counted the attempt failed: its own report written back, or a lease it saw run out.
        const f = decoded.event;
        this.abort((x) => x.planId === f.planId && x.stepId === f.stepId && x.attempt === f.attempt, `the planner counted attempt ${f.attempt} failed: ${f.error}`);
        return;
      }
      case 'PlanCompleted':
      case 'PlanFailed':
      case 'PlanCancelled': {
        const p = decoded.event;
        const why = decoded.type === 'PlanCompleted' ? 'completed' : decoded.type === 'PlanFailed' ? `failed: ${decoded.event.reason}` : `cancelled: ${decoded.event.reason}`;
        this.abort((x) => x.planId === p.planId, `plan ${p.planId} ${why}`);
        return;
      }
    }
  }

  /** Stops every running attempt: each is reported failed (retriable), so the planner retries it at once, and aborted. */
  async stop(reason: string): Promise<void> {
    const all = [...this.running.values()].filter((r) => !r.finished);
    for (const r of all) {
      this.write(r, 'StepFailed', { ...base(r), error: `agent stopping: ${reason}`.slice(0, maxHandlerErrorLength), retriable: true, final: false, escalated: false });
      this.stopOne(r, `host stopping: ${reason}`);
    }
    await Promise.all(all.map((r) => r.done));
    await Promise.all(all.map((r) => r.chain));
  }

  private remember(key: string): void {
    this.started.set(key, true);
    if (this.started.size > rememberedAttempts) {
      const oldest = this.started.keys().next().value;
      if (oldest !== undefined) this.started.delete(oldest);
    }
  }

  private abort(match: (r: Running) => boolean, reason: string): void {
    for (const r of this.running.values()) if (!r.finished && match(r)) this.stopOne(r, reason);
  }

  private stopOne(r: Running, reason: string): void {
    if (r.controller.signal.aborted) return;
    r.finished = true;
    r.stopReason = reason;
    clearInterval(r.heartbeat);
    r.controller.abort(new Error(reason));
    r.span?.span.setAttribute('mabeam.stop_reason', reason);
    endSpan(r);
    this.o.logger.debug({ planId: r.planId, stepId: r.stepId, attempt: r.attempt, reason }, 'step stopped');
  }

  private start(a: StepAssigned, agent: HostedAgent, key: string, parent: Context): void {
    const controller = new AbortController();
    const span = messagingSpan('process', this.o.topic('plans'), parent, {
      key: a.planId,
      ...(this.o.group ? { group: this.o.group } : {}),
      subject: { 'mabeam.plan_id': a.planId, 'mabeam.step_id': a.stepId, 'mabeam.attempt': String(a.attempt), 'mabeam.agent_id': a.agentId },
    });
    const r: Running = {
      agentId: a.agentId, planId: a.planId, stepId: a.stepId, attempt: a.attempt, controller, stopReason: null,
      heartbeat: undefined, finished: false, chain: Promise.resolve(), done: Promise.resolve(), span, trace: span.headers,
    };
    this.running.set(key, r);
    this.write(r, 'StepStarted', { ...base(r), instanceId: this.o.instanceId, leaseMs: a.leaseMs }, a.envelope.eventId);
    r.heartbeat = setInterval(() => this.write(r, 'StepHeartbeat', base(r)), Math.max(100, Math.floor(a.leaseMs / 3)));
    r.heartbeat.unref();
    const inputs = inputsOf(a.inputs);
    if (typeof inputs === 'string') {
      // The same inputs would fail any attempt the same way.
      this.finish(r, key, { error: inputs, retriable: false });
      return;
    }
    const step: Step = { planId: a.planId, stepId: a.stepId, attempt: a.attempt, capability: a.capability, escalated: a.escalated, inputs };
    // The agent's own context underneath (its state, report), and a stop reason read when asked for.
    const context = Object.create(agent.context, {
      signal: { value: controller.signal, enumerable: true },
      stopReason: { get: () => r.stopReason, enumerable: true },
    }) as StepContext<unknown>;
    r.done = (async () => {
      let outcome: Outcome;
      try {
        outcome = resultOf(await agent.definition.onStep!(step, context));
      } catch (error) {
        outcome = { error: describeThrown(error).slice(0, maxHandlerErrorLength), retriable: !(error instanceof StepError) || error.retriable };
      }
      this.finish(r, key, outcome);
    })();
  }

  private finish(r: Running, key: string, outcome: Outcome): void {
    clearInterval(r.heartbeat);
    if (!r.finished) {
      r.finished = true;
      if ('error' in outcome) this.write(r, 'StepFailed', { ...base(r), error: outcome.error, retriable: outcome.retriable, final: false, escalated: false });
      else this.write(r, 'StepCompleted', { ...base(r), result: outcome.result });
      endSpan(r, 'error' in outcome ? outcome.error : undefined);
    }
    void r.chain.finally(() => {
      if (this.running.get(key) === r) this.running.delete(key);
    });
  }

  /** Queues one event of an attempt: its events are written one after another, in order. */
  private write(r: Running, type: 'StepStarted' | 'StepHeartbeat' | 'StepCompleted' | 'StepFailed', body: Record<string, unknown>, causationId?: string): void {
    const o = this.o;
    // Started and finished once per attempt and agent: one delivered again is a recognisable duplicate.
    const eventId = type === 'StepHeartbeat' ? undefined : deterministicEventId(type === 'StepStarted' ? 'step-started' : 'step-finished', r.planId, r.stepId, String(r.attempt), r.agentId);
    const envelope = newEnvelope(type, r.agentId, { correlationId: r.planId, causationId: causationId ?? null, ...(eventId ? { eventId } : {}) });
    const outgoing: Outgoing = { topic: o.topic('plan-inputs'), key: r.planId, type, event: { envelope, ...body } as Outgoing['event'] };
    // A result the broker will not take (too large) is the attempt's failure, under the same id.
    if (type === 'StepCompleted') {
      outgoing.instead = (why) => ({
        ...outgoing,
        type: 'StepFailed',
        event: { envelope: { ...envelope, eventType: 'StepFailed' }, ...base(r), error: `its result could not be written: ${why}`.slice(0, maxHandlerErrorLength), retriable: true, final: false, escalated: false } as Outgoing['event'],
      });
    }
    r.chain = r.chain
      .then(() => o.outbox.send([outgoing], r.trace))
      .catch((error: unknown) => o.logger.warn({ planId: r.planId, stepId: r.stepId, attempt: r.attempt, type, error: describeThrown(error) }, 'a step event could not be written; the lease will tell'));
  }
}

/** Ends an attempt's span once (with the attempt's error, when it failed). */
function endSpan(r: { span: MessagingSpan | undefined }, error?: string): void {
  r.span?.end(error);
  r.span = undefined;
}

function base(r: Running): { planId: string; stepId: string; attempt: number; agentId: string } {
  return { planId: r.planId, stepId: r.stepId, attempt: r.attempt, agentId: r.agentId };
}

function keyOf(planId: string, stepId: string, attempt: number): string {
  return `${planId}\u0000${stepId}\u0000${attempt}`;
}

/** The assignment's inputs as an object, or why they are not one. */
function inputsOf(json: string): Record<string, unknown> | string {
  try {
    const inputs: unknown = JSON.parse(json);
    if (inputs && typeof inputs === 'object' && !Array.isArray(inputs)) return inputs as Record<string, unknown>;
    return `the assignment's inputs are not a JSON object: ${json.slice(0, 200)}`;
  } catch (error) {
    return `the assignment's inputs are not JSON: ${describeThrown(error)}`;
  }
}

/** A step's answer as the JSON of its result (undefined is null), or why JSON cannot hold it. */
function resultOf(answer: unknown): Outcome {
  try {
    const result = JSON.stringify(answer === undefined ? null : answer);
    if (result === undefined) return { error: `onStep answered a ${typeof answer}, which JSON cannot hold`, retriable: true };
    return { result };
  } catch (error) {
    return { error: `onStep answered a result JSON cannot hold: ${describeThrown(error)}`.slice(0, maxHandlerErrorLength), retriable: true };
  }
}
