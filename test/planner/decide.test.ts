import { describe, expect, it } from 'vitest';
import { newEnvelope } from '../../src/events/envelope.ts';
import { decideAssigned, decideAuctioned, decideAwarded, decideCancel, decideCreated, decideNoTaker, decideReport, decideTick, type PlanDecision } from '../../src/planner/decide.ts';
import type { PlanEvent } from '../../src/planner/events.ts';
import type { PlanRun } from '../../src/planner/run.ts';

/** A 3-capability diamond: fetch → (parse, scan) → report, and an all-done cleanup after report. */
const plan = (overrides: Record<string, unknown> = {}) =>
  JSON.stringify({
    goal: { url: 'u' },
    steps: [
      { id: 'fetch', capability: 'http', inputs: { url: {} } },
      { id: 'parse', capability: 'text', inputs: { page: { step: 'fetch' } } },
      { id: 'scan', capability: 'security', inputs: { page: { step: 'fetch' } }, retry: { maxAttempts: 2, backoffMs: 100 }, ...overrides },
      { id: 'report', capability: 'text', inputs: { a: { step: 'parse' }, b: { step: 'scan' } } },
      { id: 'cleanup', capability: 'http', after: ['report'], trigger: 'all-done' },
    ],
    result: { report: { step: 'report' } },
  });

const agents: Record<string, string> = { http: 'h1', text: 't1', security: 's1' };

class Loop {
  now = 10_000;
  run: PlanRun;
  log: PlanEvent[] = [];
  refused: NonNullable<PlanDecision['refused']>[] = [];
  queue: PlanDecision['toAssign'] = [];

  constructor(planJson: string) {
    const created = { envelope: newEnvelope('RoundClosed', 'cli', { eventTime: this.now }), planId: 'p', plan: planJson, requesterId: 'cli', goalType: null };
    this.run = this.keep(decideCreated(created, this.ctx())).run!;
  }

  ctx() {
    return { now: this.now, producerId: 'planner-1' };
  }

  keep(d: PlanDecision): PlanDecision {
    this.log.push(...d.events);
    if (d.refused) this.refused.push(d.refused);
    this.queue.push(...d.toAssign);
    if (d.run) this.run = d.run;
    return d;
  }

  report(type: 'StepStarted' | 'StepCompleted' | 'StepFailed', stepId: string, agentId: string, attempt: number, extra: Record<string, unknown> = {}): PlanDecision {
    this.now += 5;
    const event = { envelope: newEnvelope('RoundClosed', agentId, { eventTime: this.now }), planId: 'p', stepId, attempt, agentId, leaseMs: 1_000, instanceId: 'i', result: null, error: '', retriable: true, final: false, escalated: false, ...extra };
    return this.keep(decideReport(this.run, { type, event } as never, this.ctx()));
  }

  /** Assigns every step waiting for an agent and has each do its work as `work` says. */
  drain(work: (stepId: string, attempt: number, inputs: Record<string, unknown>) => { result: unknown } | { error: string; retriable: boolean }): void {
    for (let guard = 0; this.queue.length > 0 && guard < 100; guard++) {
      const next = this.queue.shift()!;
      const agentId = agents[next.capability]!;
      this.now += 5;
      this.keep(decideAssigned(this.run, { stepId: next.stepId, attempt: next.attempt, agentId, roundId: `round-${next.stepId}-${next.attempt}`, rule: 'test' }, this.ctx()));
      this.report('StepStarted', next.stepId, agentId, next.attempt);
      const done = work(next.stepId, next.attempt, next.inputs);
      if ('result' in done) this.report('StepCompleted', next.stepId, agentId, next.attempt, { result: JSON.stringify(done.result) });
      else this.report('StepFailed', next.stepId, agentId, next.attempt, { error: done.error, retriable: done.retriable });
    }
  }

  types(): string[] {
    return this.log.map((e) => `${e.type}${'stepId' in e.event ? ` ${e.event.stepId}` : ''}`);
  }
}

describe('the planner\'s decisions', () => {
  it('runs a diamond to its joined result: roots ready at once, each step ready when its upstream completed, inputs resolved from results', () => {
    const loop = new Loop(plan());
    expect(loop.types()).toEqual(['StepReady fetch']);
    const seen: Record<string, unknown> = {};
    loop.drain((stepId, _attempt, inputs) => {
      seen[stepId] = inputs;
      return { result: stepId === 'fetch' ? { body: 'page' } : `${stepId}-done` };
    });
    expect(seen['fetch']).toEqual({ url: 'u' });
    expect(seen['scan']).toEqual({ page: { body: 'page' } });
    expect(seen['report']).toEqual({ a: 'parse-done', b: 'scan-done' });
    const completed = loop.log.find((e) => e.type === 'PlanCompleted')!;
    expect(JSON.parse((completed.event as { result: string }).result)).toEqual({ report: 'report-done' });
    expect(loop.types().filter((t) => t.startsWith('StepReady'))).toEqual(['StepReady fetch', 'StepReady parse', 'StepReady scan', 'StepReady report', 'StepReady cleanup']);
    expect(loop.refused).toEqual([]);
  });

  it('retries a retriable failure after its backoff on another attempt; after the last attempt the step fails, what needs it is skipped, an all-done step still runs, and the plan fails naming the step', () => {
    const loop = new Loop(plan());
    loop.drain((stepId) => (stepId === 'scan' ? { error: 'scanner busy', retriable: true } : { result: stepId }));
    const retried = loop.log.find((e) => e.type === 'StepRetried')!.event as { attempt: number; notBefore: number; reasonCode: string };
    expect(retried).toMatchObject({ attempt: 2, reasonCode: 'STEP_FAILED' });
    // Not before its backoff (100 ms) does the retry need an agent.
    expect(loop.queue).toEqual([]);
    expect(decideTick(loop.run, loop.ctx()).toAssign).toEqual([]);
    loop.now = retried.notBefore;
    const tick = loop.keep(decideTick(loop.run, loop.ctx()));
    expect(tick.toAssign.map((a) => `${a.stepId}#${a.attempt} excluding ${a.exclude.join(',')}`)).toEqual(['scan#2 excluding s1']);
    loop.drain((stepId) => (stepId === 'scan' ? { error: 'scanner busy again', retriable: true } : { result: stepId }));
    const failed = loop.log.filter((e) => e.type === 'StepFailed').map((e) => e.event as { attempt: number; final: boolean });
    expect(failed.map((f) => `${f.attempt} ${f.final}`)).toEqual(['1 false', '2 true']);
    expect(loop.types()).toContain('StepSkipped report');
    expect(loop.types()).toContain('StepReady cleanup');
    expect(loop.log.at(-1)).toMatchObject({ type: 'PlanFailed', event: { failed: ['scan'] } });
  });

  it('a failure that may not be retried fails the step at once; with escalation the step gets one more attempt, offered up the escalation tiers', () => {
    const loop = new Loop(plan());
    loop.drain((stepId) => (stepId === 'scan' ? { error: 'forbidden', retriable: false } : { result: stepId }));
    expect(loop.log.filter((e) => e.type === 'StepRetried')).toEqual([]);
    expect(loop.log.find((e) => e.type === 'StepFailed')!.event).toMatchObject({ final: true, escalated: false });
    const escalating = new Loop(plan({ escalate: { to: ['review', 'audit'] } }));
    const asked: string[] = [];
    escalating.drain((stepId, attempt) => {
      const q = escalating.log.filter((e) => e.type === 'StepAssigned' && e.event.stepId === stepId && e.event.attempt === attempt).at(-1)!;
      asked.push(`${stepId}#${attempt}${(q.event as { escalated: boolean }).escalated ? ' escalated' : ''}`);
      return stepId === 'scan' && attempt === 1 ? { error: 'forbidden', retriable: false } : { result: stepId };
    });
    expect(escalating.log.find((e) => e.type === 'StepFailed')!.event).toMatchObject({ attempt: 1, final: false, escalated: true });
    expect(escalating.log.find((e) => e.type === 'StepRetried')!.event).toMatchObject({ attempt: 2, reasonCode: 'ESCALATED', escalated: true });
    expect(asked).toContain('scan#2 escalated');
    expect(escalating.run.steps.get('scan')).toMatchObject({ state: 'completed', attempt: 2, escalated: true });
    expect(escalating.log.at(-1)!.type).toBe('PlanCompleted');
  });

  it('an escalated attempt that fails too fails the step for good', () => {
    const loop = new Loop(plan({ escalate: { to: ['review'] }, retry: { maxAttempts: 1 } }));
    loop.drain((stepId) => (stepId === 'scan' ? { error: 'no', retriable: true } : { result: stepId }));
    const failed = loop.log.filter((e) => e.type === 'StepFailed').map((e) => e.event as { attempt: number; final: boolean; escalated: boolean });
    expect(failed).toMatchObject([{ attempt: 1, final: false, escalated: true }, { attempt: 2, final: true, escalated: false }]);
    expect(loop.log.at(-1)).toMatchObject({ type: 'PlanFailed', event: { failed: ['scan'] } });
  });

  it('an auction without a taker is a failed attempt: retried after the backoff, then the step fails', () => {
    const loop = new Loop(plan({ retry: { maxAttempts: 2, backoffMs: 50 } }));
    const fetch = loop.queue.shift()!;
    loop.keep(decideAssigned(loop.run, { stepId: 'fetch', attempt: fetch.attempt, agentId: 'h1', roundId: null, rule: 'only agent' }, loop.ctx()));
    loop.report('StepCompleted', 'fetch', 'h1', 1, { result: '"page"' });
    const first = loop.keep(decideNoTaker(loop.run, { stepId: 'scan', attempt: 1, roundId: 'r1', reason: 'every agent passed' }, loop.ctx()));
    expect(first.events.map((e) => e.type)).toEqual(['StepFailed', 'StepRetried']);
    expect(first.events[1]!.event).toMatchObject({ attempt: 2, reasonCode: 'NO_TAKER', notBefore: loop.now + 50 });
    expect(decideNoTaker(loop.run, { stepId: 'scan', attempt: 1, roundId: 'r1', reason: 'again' }, loop.ctx()).refused).toMatchObject({ reasonCode: 'STALE_ASSIGNMENT' });
    const last = loop.keep(decideNoTaker(loop.run, { stepId: 'scan', attempt: 2, roundId: 'r2', reason: 'every agent passed' }, loop.ctx()));
    expect(last.events[0]!.event).toMatchObject({ attempt: 2, final: true, error: expect.stringMatching(/^NO_TAKER: attempt 2: no agent took the step \(round r2\)/) });
  });

  it('a plan past its deadline fails, naming what did not finish; a cancelled plan assigns nothing more', () => {
    const loop = new Loop(JSON.stringify({ ...JSON.parse(plan()), deadlineMs: 1_000 }));
    loop.now += 999;
    expect(decideTick(loop.run, loop.ctx()).events).toEqual([]);
    loop.now += 1;
    const late = loop.keep(decideTick(loop.run, loop.ctx()));
    expect(late.events).toMatchObject([{ type: 'PlanFailed', event: { failed: ['fetch', 'parse', 'scan', 'report', 'cleanup'] } }]);
    const cancelled = new Loop(plan());
    const c = cancelled.keep(decideCancel(cancelled.run, { requesterId: 'cli', reason: 'not needed' }, cancelled.ctx()));
    expect(c.events).toMatchObject([{ type: 'PlanCancelled', event: { reason: 'not needed' } }]);
    expect(decideTick(cancelled.run, cancelled.ctx()).toAssign).toEqual([]);
    expect(decideAssigned(cancelled.run, { stepId: 'fetch', attempt: 1, agentId: 'h1', roundId: null, rule: 'x' }, cancelled.ctx()).refused).toMatchObject({ reasonCode: 'STALE_ASSIGNMENT' });
  });

  it('counts a step\'s result once: a second completion, a superseded attempt, another agent and an unknown step are refused', () => {
    const loop = new Loop(plan());
    loop.drain((stepId) => ({ result: stepId }));
    loop.report('StepCompleted', 'fetch', 'h1', 1, { result: '"again"' });
    expect(loop.refused.at(-1)).toMatchObject({ reasonCode: 'PLAN_FINISHED' });
    const fresh = new Loop(plan());
    fresh.keep(decideAssigned(fresh.run, { stepId: 'fetch', attempt: 1, agentId: 'h1', roundId: 'r', rule: 'test' }, fresh.ctx()));
    fresh.report('StepCompleted', 'fetch', 'h2', 1, { result: '"x"' });
    expect(fresh.refused.at(-1)).toMatchObject({ reasonCode: 'NOT_ASSIGNED' });
    fresh.report('StepCompleted', 'fetch', 'h1', 2, { result: '"x"' });
    expect(fresh.refused.at(-1)).toMatchObject({ reasonCode: 'STALE_ATTEMPT' });
    fresh.report('StepCompleted', 'ghost', 'h1', 1, { result: '"x"' });
    expect(fresh.refused.at(-1)).toMatchObject({ reasonCode: 'UNKNOWN_STEP' });
    fresh.report('StepCompleted', 'fetch', 'h1', 1, { result: '"first"' });
    fresh.report('StepCompleted', 'fetch', 'h1', 1, { result: '"second"' });
    expect(fresh.refused.at(-1)).toMatchObject({ reasonCode: 'STEP_FINISHED' });
    expect(fresh.run.steps.get('fetch')!.result).toBe('first');
    expect(decideAssigned(fresh.run, { stepId: 'fetch', attempt: 1, agentId: 'h1', roundId: 'r', rule: 'test' }, fresh.ctx()).refused).toMatchObject({ reasonCode: 'STALE_ASSIGNMENT' });
  });

  it('a lease that runs out is retried (a clock decision), and out of attempts the step fails', () => {
    const loop = new Loop(plan({ retry: { maxAttempts: 2, backoffMs: 0 }, timeoutMs: 500 }));
    loop.drain((stepId) => ({ result: stepId }));
    // Take scan back to a silent attempt: a fresh loop where scan's agent never answers.
    const silent = new Loop(plan({ retry: { maxAttempts: 2, backoffMs: 0 }, timeoutMs: 500 }));
    const fetch = silent.queue.shift()!;
    silent.keep(decideAssigned(silent.run, { stepId: 'fetch', attempt: fetch.attempt, agentId: 'h1', roundId: null, rule: 'test' }, silent.ctx()));
    silent.report('StepCompleted', 'fetch', 'h1', 1, { result: '"page"' });
    const scan = silent.queue.find((q) => q.stepId === 'scan')!;
    silent.keep(decideAssigned(silent.run, { stepId: 'scan', attempt: scan.attempt, agentId: 's1', roundId: null, rule: 'test' }, silent.ctx()));
    const startedAt = silent.now;
    silent.now = startedAt + 499;
    expect(decideTick(silent.run, { ...silent.ctx(), aliveAt: new Map([['scan', startedAt]]) }).events).toEqual([]);
    silent.now = startedAt + 500;
    const expired = silent.keep(decideTick(silent.run, { ...silent.ctx(), aliveAt: new Map([['scan', startedAt]]) }));
    expect(expired.events.map((e) => e.type)).toEqual(['StepFailed', 'StepRetried']);
    expect(expired.events[0]!.event).toMatchObject({ attempt: 1, agentId: 's1', final: false, error: expect.stringMatching(/^LEASE_EXPIRED: /) });
    expect(expired.events[1]!.event).toMatchObject({ attempt: 2, previousAgentId: 's1', reasonCode: 'LEASE_EXPIRED' });
    expect(expired.toAssign.map((a) => `${a.stepId}#${a.attempt}`)).toEqual(['parse#1', 'scan#2']);
    silent.keep(decideAssigned(silent.run, { stepId: 'scan', attempt: 2, agentId: 's2', roundId: null, rule: 'test' }, silent.ctx()));
    silent.now += 500;
    const gone = decideTick(silent.run, { ...silent.ctx(), aliveAt: new Map([['scan', silent.now - 500]]) });
    expect(gone.events.map((e) => `${e.type} ${(e.event as { final?: boolean }).final ?? ''}`)).toContain('StepFailed true');
  });

  it('an auction opened for a step\'s attempt is opened once; its outcome assigns the winner, naming the round and why; an outcome of another round or attempt is refused', () => {
    const loop = new Loop(plan());
    const fetch = loop.queue.shift()!;
    expect(fetch).toMatchObject({ stepId: 'fetch', attempt: 1, tiers: ['http'], escalated: false });
    const opened = loop.keep(decideAuctioned(loop.run, { stepId: 'fetch', attempt: 1, roundId: 'step:p/fetch#1', protocol: 'delegation', asked: ['h1', 'h2'], tiers: [], deadline: loop.now + 2_000 }, loop.ctx()));
    expect(opened.events.map((e) => e.type)).toEqual(['StepAuctioned']);
    expect(loop.run.steps.get('fetch')).toMatchObject({ state: 'ready', auctioning: 1, roundId: 'step:p/fetch#1' });
    // A tick does not ask for an agent again while the auction is open, and it is not opened twice.
    expect(decideTick(loop.run, loop.ctx()).toAssign).toEqual([]);
    expect(decideAuctioned(loop.run, { stepId: 'fetch', attempt: 1, roundId: 'step:p/fetch#1', protocol: 'delegation', asked: ['h1'], tiers: [], deadline: 0 }, loop.ctx()).refused).toMatchObject({ reasonCode: 'STALE_ASSIGNMENT' });
    const outcome = { stepId: 'fetch', attempt: 1, protocol: 'delegation', status: 'decided', winners: ['h2'], reason: 'h2 (tier 0) takes the task at cost 0.1' };
    expect(decideAwarded(loop.run, { ...outcome, roundId: 'step:p/other#1' }, loop.ctx()).refused).toMatchObject({ reasonCode: 'STALE_ASSIGNMENT' });
    const awarded = loop.keep(decideAwarded(loop.run, { ...outcome, roundId: 'step:p/fetch#1' }, loop.ctx()));
    expect(awarded.events).toMatchObject([{ type: 'StepAssigned', event: { agentId: 'h2', roundId: 'step:p/fetch#1', rule: 'delegation auction: h2 (tier 0) takes the task at cost 0.1', inputs: '{"url":"u"}', capability: 'http' } }]);
    expect(decideAwarded(loop.run, { ...outcome, roundId: 'step:p/fetch#1' }, loop.ctx()).refused).toMatchObject({ reasonCode: 'STALE_ASSIGNMENT' });
  });

  it('an auction that ends without a winner is an attempt without a taker', () => {
    const loop = new Loop(plan());
    loop.queue.shift();
    loop.keep(decideAuctioned(loop.run, { stepId: 'fetch', attempt: 1, roundId: 'step:p/fetch#1', protocol: 'delegation', asked: ['h1', 'h2'], tiers: [], deadline: loop.now + 2_000 }, loop.ctx()));
    const none = loop.keep(decideAwarded(loop.run, { stepId: 'fetch', attempt: 1, roundId: 'step:p/fetch#1', protocol: 'delegation', status: 'failed', winners: [], reason: 'tier 0 had no taker' }, loop.ctx()));
    expect(none.events.map((e) => e.type)).toEqual(['StepFailed', 'StepRetried']);
    expect(none.events[0]!.event).toMatchObject({ attempt: 1, agentId: null, error: expect.stringMatching(/^NO_TAKER: .*round step:p\/fetch#1.*failed: tier 0 had no taker/) });
    expect(loop.run.steps.get('fetch')).toMatchObject({ state: 'retrying', attempt: 2, auctioning: null });
  });
});
