import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kafka, Message } from 'kafkajs';
import { CachedAgents, type AgentDirectory } from '../agents/capableAgents.ts';
import { typedEvent, type EventCodec } from '../codec/codec.ts';
import { Processor } from '../engine/processor.ts';
import type { Decider, InputRecord, Lane } from '../engine/types.ts';
import { MabeamError, describeError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import type { BidRequest, EventTypeName, PlanCreated, PlanRejected, PlanRequested, Rejection } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import type { StopsForGood } from '../runtime/stopped.ts';
import { KeyDirectoryFollower } from '../security/directoryFollower.ts';
import { signaturesRequired } from '../security/signing.ts';
import { isSignatureRefusalCode, type SignatureRefusal } from '../security/verify.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';
import { decideAssigned, decideAuctioned, decideAwarded, decideCancel, decideCreated, decideNoTaker, decideReport, decideTick, type PlanDecideContext, type PlanDecision, type StepReport, type ToAssign } from './decide.ts';
import type { PlanEvent } from './events.ts';
import { capabilitiesOf, parsePlan } from './plan.ts';
import { readPlans } from './planLog.ts';
import type { PlanRun } from './run.ts';
import { parseStepRoundId, stepRoundId, type StepItem } from './stepRounds.ts';
import { Templates } from './templates.ts';


export interface PlannerOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  prefix: string;
  definitions: TopicDefinition[];
  /** Who can run steps of a capability (RegistryAgents: the agent registry); its answers are kept 500 ms. */
  agents: AgentDirectory;
  /** Goal templates by type (default: the built-in ones). */
  templates?: Templates;
  metrics?: Metrics;
  instanceId?: string;
  sessionTimeoutMs?: number;
  /** How often leases, backoffs and deadlines are looked at, ms. Default 250. */
  tickMs?: number;
  /** Refuse step reports not signed by their agent's registered key (as a coordinator does). Default off, unless MABEAM_REQUIRE_SIGNATURES=1. */
  requireSignatures?: boolean;
}

/** What a plan-inputs record decides: plan events, refusals and rejections (on `plans`), and step auctions (on `bid-requests`). */
export type Written = PlanEvent | { type: 'PlanRejected'; event: PlanRejected } | { type: 'Rejection'; event: Rejection } | { type: 'BidRequest'; event: BidRequest };

/**
 * Runs plans. Planners form one consumer group (`<prefix>.planners`) on
 * `plan-inputs`, keyed by plan id, so one planner decides each plan and its
 * reports in log order. It is a decider on the engine (src/engine/): what a
 * partition's inputs decide (decide.ts) is written to `plans` — the plan's
 * log — by that partition's fenced producer, in one transaction with the
 * input offsets and the BidRequests of the step auctions it opens. Its
 * state is the fold of `plans` (run.ts): a new owner of a partition reads it
 * to its end after fencing and goes on where the previous owner's last
 * commit left each plan; a completed step is never run again.
 *
 * A step auction's outcome is on `outcomes`, keyed by round id: the
 * planners' second group (`<prefix>.planners.awards`, also on the engine)
 * copies the outcomes (and refusals) of step rounds, as they are, to
 * `plan-inputs` under their plan's id, exactly once.
 *
 * The clock (leases, backoffs, the plan's deadline) decides through ticks
 * whose decisions are written before they are acted on. Which agents are
 * running comes from the directory; whom an auction asked is on the log.
 */
export class Planner implements StopsForGood {
  readonly groupId: string;
  readonly instanceId: string;
  private readonly o: PlannerOptions;
  private readonly log: Logger;
  private readonly processor: Processor<Written>;
  private readonly relay: Processor<never>;
  private readonly templates: Templates;
  private readonly directory: CachedAgents;
  /** The agents' keys, when signatures are required. */
  private readonly keys: KeyDirectoryFollower | undefined;
  /** Plans by partition, as committed plus what the lane's open transaction decided. */
  private readonly runs = new Map<number, Map<string, PlanRun>>();
  /** When each assigned or running step's agent last gave a sign of life (ms), by plan then step. */
  private readonly alive = new Map<string, Map<string, number>>();
  private readonly topics: { inputs: string; plans: string; bidRequests: string; outcomes: string };
  private tickTimer: NodeJS.Timeout | undefined;
  private readonly ticking = new Set<number>();

  constructor(options: PlannerOptions) {
    this.o = options;
    this.groupId = `${options.prefix}.planners`;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = options.logger.child({ ns: 'planner', instance: this.instanceId });
    this.templates = options.templates ?? new Templates();
    this.directory = new CachedAgents(options.agents, { onError: (capability, error) => this.log.warn({ capability, error: describeError(error) }, 'asking for agents failed; the last answer stands for now') });
    const t = (name: string) => topicName(options.prefix, name);
    this.topics = { inputs: t('plan-inputs'), plans: t('plans'), bidRequests: t('bid-requests'), outcomes: t('outcomes') };
    if (signaturesRequired(options.requireSignatures)) this.keys = new KeyDirectoryFollower({ kafka: options.kafka, codec: options.codec, prefix: options.prefix, groupPrefix: 'planner-keys', logger: this.log });
    const definition = options.definitions.find((d) => d.name === 'plan-inputs');
    if (!definition) throw new MabeamError('INVALID_OPTIONS', 'The planner needs the topic definition "plan-inputs" (topics/plan-inputs.json).');
    const allowedTypes = definition.eventTypes;
    const decider: Decider<Written> = {
      inputs: [this.topics.inputs],
      restore: (partitions) => this.restore(partitions),
      decide: (record, lane) => this.decide(record, lane, allowedTypes),
      committed: (_p, written) => this.count(written),
      release: (p) => {
        for (const id of this.runs.get(p)?.keys() ?? []) this.alive.delete(id);
        this.runs.delete(p);
      },
    };
    const common = {
      kafka: options.kafka,
      codec: options.codec,
      prefix: options.prefix,
      producerId: this.instanceId,
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: options.sessionTimeoutMs } : {}),
    };
    this.processor = new Processor<Written>({ ...common, logger: this.log, groupId: this.groupId, decider });
    this.relay = new Processor<never>({ ...common, logger: this.log.child({ part: 'awards' }), groupId: `${this.groupId}.awards`, decider: this.awardsRelay() });
  }

  /** Stops for good when either of its members does. */
  get stoppedForGood(): Promise<Error> {
    return Promise.race([this.processor.stoppedForGood, this.relay.stoppedForGood, ...(this.keys ? [this.keys.stoppedForGood] : [])]);
  }

  /** The plans this member decides now (for status and tests). */
  plans(): PlanRun[] {
    return [...this.runs.values()].flatMap((m) => [...m.values()]);
  }

  async start(): Promise<void> {
    const types: EventTypeName[] = ['PlanCreated', 'PlanRejected', 'StepReady', 'StepSkipped', 'StepAuctioned', 'StepAssigned', 'StepStarted', 'StepCompleted', 'StepFailed', 'StepRetried', 'PlanCompleted', 'PlanFailed', 'PlanCancelled', 'Rejection', 'BidRequest'];
    await Promise.all(types.map((type) => this.o.codec.schemaId(type)));
    await this.keys?.start();
    await Promise.all([this.processor.start(), this.relay.start()]);
    this.tickTimer = setInterval(() => this.tick(), this.o.tickMs ?? 250);
    this.tickTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.tickTimer);
    await Promise.all([this.processor.stop(), this.relay.stop()]);
    await this.keys?.stop();
  }

  private async restore(partitions: readonly number[]): Promise<void> {
    const read = await readPlans({ kafka: this.o.kafka, codec: this.o.codec, logger: this.log, topic: this.topics.plans, partitions });
    const now = Date.now();
    for (const p of partitions) {
      const runs = read.get(p) ?? new Map<string, PlanRun>();
      // A sign of life is not written to the log: after a restore every running step's agent gets a whole lease again.
      for (const run of runs.values()) {
        for (const s of run.steps.values()) if (s.state === 'assigned' || s.state === 'running') this.aliveAt(run.planId).set(s.stepId, now);
      }
      this.runs.set(p, runs);
    }
    this.log.info({ partitions, plans: partitions.reduce((n, p) => n + (this.runs.get(p)?.size ?? 0), 0) }, 'plans restored');
  }

  private aliveAt(planId: string): Map<string, number> {
    let m = this.alive.get(planId);
    if (!m) this.alive.set(planId, (m = new Map()));
    return m;
  }

  private context(planId?: string): PlanDecideContext {
    return { now: Date.now(), producerId: this.instanceId, ...(planId ? { aliveAt: this.aliveAt(planId) } : {}) };
  }

  private async decide(record: InputRecord, lane: Lane<Written>, allowedTypes: string[]): Promise<void> {
    const decoded = await this.o.codec.decode(record.message.value, { allowedTypes });
    const key = record.message.key?.toString() ?? null;
    const step = decoded.type === 'RoundOutcome' ? parseStepRoundId(decoded.event.roundId) : decoded.type === 'Rejection' ? parseStepRoundId(decoded.event.subjectId) : undefined;
    const planId = step?.planId ?? ('planId' in decoded.event ? decoded.event.planId : undefined);
    if (planId === undefined) throw new MabeamError('VALIDATION_FAILED', `Invalid ${decoded.type} on plan-inputs: it names no plan (a RoundOutcome or Rejection here is of a step round, step:<plan>/<step>#<attempt>).`);
    if (key !== planId) throw new MabeamError('VALIDATION_FAILED', `Invalid ${decoded.type}: the message key is ${key === null ? 'missing' : `"${key}"`} but plan-inputs is keyed by planId ("${planId}")`);
    let runs = this.runs.get(record.partition);
    if (!runs) this.runs.set(record.partition, (runs = new Map()));
    const run = runs.get(planId);
    // Who can take which step, asked before anything is decided: a decision then changes the plan only once it cannot fail.
    const agents = run ? await this.capable(capabilitiesOf(run.plan)) : new Map<string, string[]>();
    const ctx = this.context(planId);
    const eventId = decoded.event.envelope.eventId;
    const reject = (reasonCode: string, reason: string, agentId: string | null = null) => this.rejection(lane, record.partition, planId, eventId, decoded.type, agentId, reasonCode, reason);
    switch (decoded.type) {
      case 'PlanRequested': {
        const request = decoded.event;
        if (run) return reject('DUPLICATE_PLAN', `Plan ${planId} exists already (a plan id is used once).`, null);
        await this.create(request, lane, record.partition);
        return;
      }
      case 'PlanCancelled': {
        const c = decoded.event;
        if (!run) return reject('UNKNOWN_PLAN', `No plan ${planId} to cancel.`);
        await this.apply(lane, record.partition, decideCancel(run, { requesterId: c.requesterId, reason: c.reason }, ctx), eventId, decoded.type, agents);
        return;
      }
      case 'RoundOutcome': {
        const o = decoded.event;
        if (!run || !step) return reject('UNKNOWN_PLAN', `No plan ${planId} for round ${o.roundId}.`);
        await this.apply(lane, record.partition, decideAwarded(run, { stepId: step.stepId, attempt: step.attempt, roundId: o.roundId, protocol: o.protocol, status: o.status, winners: o.winners, reason: o.reason }, ctx), eventId, decoded.type, agents);
        return;
      }
      case 'Rejection': {
        // The coordinator refused a step round's request: that attempt has no taker.
        const r = decoded.event;
        if (!run || !step || r.rejectedEventType !== 'BidRequest') return;
        const st = run.steps.get(step.stepId);
        if (st?.roundId !== r.subjectId) return;
        await this.apply(lane, record.partition, decideNoTaker(run, { stepId: step.stepId, attempt: step.attempt, roundId: r.subjectId, reason: `the coordinator refused the auction: ${r.reasonCode}: ${r.reason}` }, ctx), eventId, decoded.type, agents);
        return;
      }
      default: {
        // The rest of plan-inputs' event types (its definition's eventTypes, allowed above) are agents' reports on steps.
        const report = typedEvent(decoded) as StepReport;
        // With signatures required, an agent's report counts only if its agent signed it (the coordinator's own check).
        const refused = await this.refusedSignature(record, report.event.agentId);
        if (refused) return reject(refused.reasonCode, refused.reason, report.event.agentId);
        if (!run) return reject('UNKNOWN_PLAN', `No plan ${planId}.`, report.event.agentId);
        const decision = decideReport(run, report, ctx);
        if (!decision.refused && (report.type === 'StepStarted' || report.type === 'StepHeartbeat')) this.aliveAt(planId).set(report.event.stepId, ctx.now);
        await this.apply(lane, record.partition, decision, eventId, decoded.type, agents);
      }
    }
  }

  /** A goal or plan submitted: the plan it makes is created, or the request is rejected with every problem. */
  private async create(request: PlanRequested, lane: Lane<Written>, partition: number): Promise<void> {
    const planId = request.planId;
    const rejected = (reasonCode: string, reason: string, problems: string[]) =>
      this.write(lane, partition, [{ type: 'PlanRejected', event: { envelope: newEnvelope('PlanRejected', this.instanceId, { correlationId: planId, causationId: request.envelope.eventId }), planId, requesterId: request.requesterId, reasonCode, reason, problems } }]);
    let raw: unknown;
    let goal: Record<string, unknown>;
    try {
      goal = JSON.parse(request.goal) as Record<string, unknown>;
      if (!goal || typeof goal !== 'object' || Array.isArray(goal)) throw new MabeamError('VALIDATION_FAILED', 'the goal must be a JSON object');
      if (request.plan !== null) {
        raw = JSON.parse(request.plan) as unknown;
        if (raw && typeof raw === 'object' && !Array.isArray(raw) && !('goal' in raw)) raw = { ...raw, goal };
      } else if (request.goalType !== null) {
        const template = this.templates.get(request.goalType);
        if (!template) return rejected('UNKNOWN_GOAL_TYPE', `No goal template "${request.goalType}" (this planner knows ${this.templates.types().join(', ') || 'none'}).`, []);
        raw = await template.plan(goal);
      } else return rejected('INVALID_PLAN', 'A plan request needs a plan or a goal type.', []);
    } catch (error) {
      return rejected('INVALID_PLAN', `Plan ${planId} could not be made: ${describeError(error)}`, [describeError(error)]);
    }
    let plan;
    let agents = new Map<string, string[]>();
    try {
      plan = parsePlan(raw);
      agents = await this.capable(capabilitiesOf(plan));
      const offered = [...agents].filter(([, ids]) => ids.length > 0).map(([c]) => c);
      if (offered.length < agents.size) plan = parsePlan(raw, { capabilities: offered });
    } catch (error) {
      const problems = (error as MabeamError).details?.['problems'] as string[] | undefined;
      const noAgent = problems?.length && problems.every((p) => p.includes('which no agent offers'));
      return rejected(noAgent ? 'NO_AGENT' : 'INVALID_PLAN', describeError(error), problems ?? [describeError(error)]);
    }
    const created: PlanCreated = { envelope: newEnvelope('PlanCreated', this.instanceId, { correlationId: planId, causationId: request.envelope.eventId }), planId, requesterId: request.requesterId, goalType: request.plan !== null ? null : request.goalType, plan: JSON.stringify(plan) };
    const decision = decideCreated(created, this.context(planId));
    this.runs.get(partition)!.set(planId, decision.run!);
    await this.write(lane, partition, [{ type: 'PlanCreated', event: created }]);
    await this.apply(lane, partition, decision, request.envelope.eventId, 'PlanRequested', agents);
  }

  /**
   * Writes a decision, then finds agents for the steps that need one: a step
   * only one running agent can take goes to it; with several, an auction
   * among them opens (its BidRequest in the same transaction); with none,
   * the attempt has no taker. What that decides may need agents again.
   */
  private async apply(lane: Lane<Written>, partition: number, first: PlanDecision, causeId: string, causeType: string, agents: ReadonlyMap<string, string[]>): Promise<void> {
    if (first.refused) {
      await this.rejection(lane, partition, first.run!.planId, causeId, causeType, first.refused.agentId, first.refused.reasonCode, first.refused.reason);
      return;
    }
    let queue: ToAssign[] = [...first.toAssign];
    await this.write(lane, partition, first.events);
    const run = first.run!;
    for (let guard = 0; queue.length > 0 && guard < 1_000; guard++) {
      const next = queue.shift()!;
      const decision = await this.assign(run, next, lane, agents);
      await this.write(lane, partition, decision.events);
      queue = [...queue.filter((q) => !decision.toAssign.some((d) => d.stepId === q.stepId)), ...decision.toAssign];
    }
  }

  private async assign(run: PlanRun, next: ToAssign, lane: Lane<Written>, agents: ReadonlyMap<string, string[]>): Promise<PlanDecision> {
    const ctx = this.context(run.planId);
    const [first, ...above] = next.tiers.map((c) => agents.get(c) ?? []);
    const capable = first ?? [];
    const fresh = capable.filter((id) => !next.exclude.includes(id));
    const asked = fresh.length > 0 ? fresh : capable;
    const tiers = above.filter((t) => t.length > 0);
    const protocol = run.plan.assignment.protocol;
    if (asked.length === 0 && tiers.length === 0) {
      return decideNoTaker(run, { stepId: next.stepId, attempt: next.attempt, roundId: null, reason: `no running agent has capability ${next.tiers.join(' or ')}` }, ctx);
    }
    if (asked.length === 1 && tiers.length === 0) {
      const decision = decideAssigned(run, { stepId: next.stepId, attempt: next.attempt, agentId: asked[0]!, roundId: null, rule: `the only running agent with capability ${next.tiers[0]}${capable.length > fresh.length && fresh.length > 0 ? ' not tried before' : ''}` }, ctx);
      if (!decision.refused) this.aliveAt(run.planId).set(next.stepId, ctx.now);
      return decision;
    }
    const roundId = stepRoundId(run.planId, next.stepId, next.attempt);
    const deadline = ctx.now + run.plan.assignment.biddingMs;
    const eligible = asked.length > 0 ? asked : tiers.shift()!;
    const decision = decideAuctioned(run, { stepId: next.stepId, attempt: next.attempt, roundId, protocol, asked: eligible, tiers: protocol === 'delegation' ? tiers : [], deadline }, ctx);
    if (decision.refused) return decision;
    const item: StepItem = { kind: 'plan-step', planId: run.planId, stepId: next.stepId, attempt: next.attempt, capability: next.tiers[0]!, escalated: next.escalated, inputs: next.inputs };
    const request: BidRequest = {
      envelope: newEnvelope('BidRequest', this.instanceId, { correlationId: roundId, causationId: decision.events[0]!.event.envelope.eventId }),
      roundId,
      protocol,
      item: JSON.stringify(item),
      requiredCapabilities: [],
      eligibleAgents: eligible,
      reservePrice: null,
      deadline,
      parameters: protocol === 'delegation' ? JSON.stringify({ escalation: tiers }) : null,
      stage: 0,
      earlierStages: [],
    };
    lane.out.add(this.topics.bidRequests, await this.message({ type: 'BidRequest', event: request }, roundId));
    lane.out.decisions.push({ type: 'BidRequest', event: request });
    return decision;
  }

  /** The running agents of each capability (the directory's answers, at most 500 ms old). */
  private async capable(capabilities: readonly string[]): Promise<Map<string, string[]>> {
    return new Map(await Promise.all(capabilities.map(async (c) => [c, await this.directory.agents(c)] as const)));
  }

  private async refusedSignature(record: InputRecord, agentId: string | null): Promise<SignatureRefusal | undefined> {
    if (!this.keys) return undefined;
    if (agentId === null) return { reasonCode: 'FORGED', reason: 'It names no agent, so no signature can be checked.' };
    const m = record.message;
    return this.keys.verify({ key: m.key, value: m.value, headers: m.headers, timestamp: Number(m.timestamp) }, agentId);
  }

  private async rejection(lane: Lane<Written>, partition: number, planId: string, rejectedEventId: string, rejectedEventType: string, agentId: string | null, reasonCode: string, reason: string): Promise<void> {
    const event: Rejection = { envelope: newEnvelope('Rejection', this.instanceId, { correlationId: planId, causationId: rejectedEventId }), subjectId: planId, rejectedEventId, rejectedEventType, agentId, reasonCode, reason } as Rejection;
    await this.write(lane, partition, [{ type: 'Rejection', event }]);
  }

  /** Encodes events into the lane's transaction, on the plan's partition of `plans`. */
  private async write(lane: Lane<Written>, partition: number, events: readonly Written[]): Promise<void> {
    const messages: Message[] = [];
    for (const e of events) messages.push({ ...(await this.message(e, e.type === 'Rejection' ? e.event.subjectId : (e.event as { planId: string }).planId)), partition });
    for (const m of messages) lane.out.add(this.topics.plans, m);
    lane.out.decisions.push(...events);
  }

  private async message(e: Written, key: string): Promise<Message> {
    return { key, value: await this.o.codec.encode(e.type, e.event), headers: { [eventHeaders.type]: e.type, [eventHeaders.id]: e.event.envelope.eventId } };
  }

  /** The second member: step rounds' outcomes and refusals, copied as they are to plan-inputs under their plan id. */
  private awardsRelay(): Decider<never> {
    const allowedTypes = ['io.mabeam.events.RoundOutcome', 'io.mabeam.events.Rejection', 'io.mabeam.events.RoundClosed'] as const;
    return {
      inputs: [this.topics.outcomes],
      restore: async () => undefined,
      release: () => undefined,
      decide: async (record, lane) => {
        const step = parseStepRoundId(record.message.key?.toString() ?? '');
        if (!step) return;
        const decoded = await this.o.codec.decode(record.message.value, { allowedTypes });
        if (decoded.type === 'RoundClosed') return;
        if (decoded.type === 'Rejection' && decoded.event.rejectedEventType !== 'BidRequest') return;
        lane.out.add(this.topics.inputs, { key: step.planId, value: record.message.value, headers: { [eventHeaders.type]: decoded.type, [eventHeaders.id]: decoded.event.envelope.eventId } });
      },
    };
  }

  /** Looks at every partition with a plan in progress: leases, backoffs, deadlines. */
  private tick(): void {
    for (const [partition, runs] of this.runs) {
      if (this.ticking.has(partition) || ![...runs.values()].some((r) => !r.outcome)) continue;
      this.ticking.add(partition);
      this.processor
        .inject(partition, async (lane) => {
          for (const run of [...(this.runs.get(partition)?.values() ?? [])]) {
            if (run.outcome) continue;
            const agents = await this.capable(capabilitiesOf(run.plan));
            const decision = decideTick(run, this.context(run.planId));
            if (decision.events.length > 0 || decision.toAssign.length > 0) await this.apply(lane, partition, decision, 'tick', 'tick', agents);
          }
        })
        .catch((error: unknown) => this.log.error({ partition, error: describeError(error) }, 'a plan tick failed'))
        .finally(() => this.ticking.delete(partition));
    }
  }

  private count(written: readonly Written[]): void {
    const m = this.o.metrics;
    for (const w of written) {
      if (w.type === 'PlanCompleted' || w.type === 'PlanFailed' || w.type === 'PlanCancelled') {
        this.log.info({ planId: w.event.planId, outcome: w.type }, 'plan finished');
        this.alive.delete(w.event.planId);
      }
      if (!m) continue;
      if (w.type === 'Rejection') {
        m.rejections.inc({ reason: w.event.reasonCode });
        if (isSignatureRefusalCode(w.event.reasonCode)) m.forgedEvents.inc({ topic: this.topics.inputs, reason: w.event.reasonCode });
      }
      else if (w.type === 'PlanRejected') m.plans.inc({ status: `rejected-${w.event.reasonCode}` });
      else if (w.type === 'PlanCompleted') m.plans.inc({ status: 'completed' });
      else if (w.type === 'PlanFailed') m.plans.inc({ status: 'failed' });
      else if (w.type === 'PlanCancelled') m.plans.inc({ status: 'cancelled' });
      else if (w.type === 'StepAssigned') m.steps.inc({ outcome: w.event.roundId ? 'assigned-auction' : 'assigned-direct' });
      else if (w.type === 'StepCompleted') m.steps.inc({ outcome: 'completed' });
      else if (w.type === 'StepRetried') m.steps.inc({ outcome: 'retried' });
      else if (w.type === 'StepFailed' && w.event.final) m.steps.inc({ outcome: 'failed' });
      else if (w.type === 'StepSkipped') m.steps.inc({ outcome: 'skipped' });
    }
  }
}

