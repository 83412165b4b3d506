import { randomBytes } from 'node:crypto';
import { hostname } from 'node:os';
import type { Kafka, Message } from 'kafkajs';
import { CachedAgents } from '../agents/capableAgents.ts';
import type { EventCodec } from '../codec/codec.ts';
import { Processor } from '../engine/processor.ts';
import type { Decider, InputRecord, Lane } from '../engine/types.ts';
import { MabeamError, describeError } from '../errors.ts';
import { newEnvelope } from '../events/envelope.ts';
import type { StudyCreated, VariableChangeRequested } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';
import type { Metrics } from '../metrics/metrics.ts';
import { eventHeaders } from '../producer/eventProducer.ts';
import type { StopsForGood } from '../runtime/stopped.ts';
import { KeyDirectoryFollower } from '../security/directoryFollower.ts';
import { signaturesRequired } from '../security/signing.ts';
import { isSignatureRefusalCode, type SignatureRefusal } from '../security/verify.ts';
import { topicName } from '../topics/names.ts';
import type { TopicDefinition } from '../topics/types.ts';
import type { BestTrial } from './study/best.ts';
import { decideCreated, decideRefusedReport, decideReport, decideTick, type DecideContext, type Decision, type Emitted, type Evaluator } from './study/decide.ts';
import { isActive, type StudyRun } from './study/run.ts';
import { readStudies } from './study/studyLog.ts';

/** Who may evaluate: the running agents with a capability (the agent registry, or a fixed list in tests of the pure parts). */
export interface EvaluatorDirectory {
  evaluators(capability: string): Promise<string[]>;
}

export interface OptimizerOptions {
  kafka: Kafka;
  codec: EventCodec;
  logger: Logger;
  prefix: string;
  definitions: TopicDefinition[];
  evaluators: EvaluatorDirectory;
  metrics?: Metrics;
  instanceId?: string;
  sessionTimeoutMs?: number;
  /** How often leases, time budgets and waiting trials are looked at, ms. Default 250. */
  tickMs?: number;
  /** Refuse trial reports not signed by their agent's registered key (as a coordinator does). Default off, unless MABEAM_REQUIRE_SIGNATURES=1. */
  requireSignatures?: boolean;
}

/**
 * Runs studies. Optimizers form one consumer group (`<prefix>.optimizers`)
 * on `study-inputs`, keyed by study id, so one optimizer decides each study
 * and its reports in log order. It is a decider on the engine
 * (src/engine/): what a partition's inputs decide (study/decide.ts) is
 * written to `studies` — the study's log — by that partition's fenced
 * producer in one transaction with the input offsets, together with the
 * variable change requests of a completed study that applies its best
 * params. Its state is the fold of `studies` (study/run.ts): a new owner of
 * a partition reads it to its end after fencing and goes on exactly where
 * the previous owner's last commit left the study — the same next
 * proposals. The clock (leases, time budgets, evaluators that appear)
 * decides through ticks whose decisions are written before they are acted on.
 */
export class Optimizer implements StopsForGood {
  readonly groupId: string;
  readonly instanceId: string;
  private readonly options: OptimizerOptions;
  private readonly log: Logger;
  private readonly processor: Processor<Emitted>;
  /** Studies by partition, as committed plus what the lane's open transaction decided. */
  private readonly runs = new Map<number, Map<string, StudyRun>>();
  private readonly inputTopic: string;
  private readonly studiesTopic: string;
  private tickTimer: NodeJS.Timeout | undefined;
  private readonly ticking = new Set<number>();
  private readonly directory: CachedAgents;
  /** The agents' keys, when signatures are required. */
  private readonly keys: KeyDirectoryFollower | undefined;

  constructor(options: OptimizerOptions) {
    this.options = options;
    this.groupId = `${options.prefix}.optimizers`;
    this.instanceId = options.instanceId ?? `${hostname()}-${process.pid}-${randomBytes(3).toString('hex')}`;
    this.log = options.logger.child({ ns: 'optimizer', instance: this.instanceId });
    this.inputTopic = topicName(options.prefix, 'study-inputs');
    this.studiesTopic = topicName(options.prefix, 'studies');
    if (signaturesRequired(options.requireSignatures)) this.keys = new KeyDirectoryFollower({ kafka: options.kafka, codec: options.codec, prefix: options.prefix, groupPrefix: 'optimizer-keys', logger: this.log });
    this.directory = new CachedAgents({ agents: (capability) => options.evaluators.evaluators(capability) }, {
      onError: (capability, error) => this.log.warn({ capability, error: describeError(error) }, 'asking for evaluators failed; the last answer stands for now'),
    });
    const definition = options.definitions.find((d) => d.name === 'study-inputs');
    if (!definition) throw new MabeamError('INVALID_OPTIONS', 'The optimizer needs the topic definition "study-inputs" (topics/study-inputs.json).');
    const allowedTypes = definition.eventTypes;
    const decider: Decider<Emitted> = {
      inputs: [this.inputTopic],
      restore: async (partitions) => {
        const read = await readStudies({ kafka: options.kafka, codec: options.codec, logger: this.log, topic: this.studiesTopic, partitions });
        const now = Date.now();
        for (const p of partitions) {
          const runs = read.get(p) ?? new Map<string, StudyRun>();
          // A sign of life is not written to the log: after a restore every evaluator gets a whole lease again.
          for (const run of runs.values()) for (const t of run.trials) if (isActive(t)) t.aliveAt = Math.max(t.aliveAt, now);
          this.runs.set(p, runs);
        }
        this.log.info({ partitions, studies: [...partitions].reduce((n, p) => n + (this.runs.get(p)?.size ?? 0), 0) }, 'studies restored');
      },
      decide: (record, lane) => this.decide(record, lane, allowedTypes),
      committed: (_p, decisions) => {
        const m = options.metrics;
        for (const d of decisions) {
          if (d.type === 'StudyCompleted') {
            this.log.info({ studyId: d.event.studyId, reason: d.event.reason, trials: d.event.trials }, 'study completed');
            m?.studies.inc({ status: `completed-${d.event.reason}` });
          } else if (d.type === 'TrialProposed') m?.trials.inc({ outcome: 'proposed' });
          else if (d.type === 'TrialCompleted') m?.trials.inc({ outcome: 'complete' });
          else if (d.type === 'TrialPruned') m?.trials.inc({ outcome: 'pruned' });
          else if (d.type === 'TrialRetried') m?.trials.inc({ outcome: 'retried' });
          else if (d.type === 'TrialFailed' && d.event.final) m?.trials.inc({ outcome: 'failed' });
          else if (d.type === 'Rejection') {
            m?.rejections.inc({ reason: d.event.reasonCode });
            if (isSignatureRefusalCode(d.event.reasonCode)) m?.forgedEvents.inc({ topic: this.inputTopic, reason: d.event.reasonCode });
            if (d.event.reasonCode === 'INVALID_STUDY' || d.event.reasonCode === 'DUPLICATE_STUDY') m?.studies.inc({ status: 'rejected' });
          }
        }
      },
      release: (p) => this.runs.delete(p),
    };
    this.processor = new Processor<Emitted>({
      kafka: options.kafka,
      codec: options.codec,
      logger: this.log,
      groupId: this.groupId,
      producerId: this.instanceId,
      decider,
      prefix: options.prefix,
      ...(options.metrics ? { metrics: options.metrics } : {}),
      ...(options.sessionTimeoutMs !== undefined ? { sessionTimeoutMs: options.sessionTimeoutMs } : {}),
      // A batch that decided something is written at once (evaluators wait on it); one that only renewed
      // leases (heartbeats) commits its offsets with the next decision, or after the engine's idle wait.
    });
  }

  get stoppedForGood(): Promise<Error> {
    return this.keys ? Promise.race([this.processor.stoppedForGood, this.keys.stoppedForGood]) : this.processor.stoppedForGood;
  }

  /** The studies this member decides now (for status and tests). */
  studies(): StudyRun[] {
    return [...this.runs.values()].flatMap((m) => [...m.values()]);
  }

  async start(): Promise<void> {
    const types = ['StudyCreated', 'TrialProposed', 'TrialAssigned', 'TrialStarted', 'TrialReported', 'TrialPruned', 'TrialCompleted', 'TrialFailed', 'TrialRetried', 'StudyCompleted', 'Rejection', 'VariableChangeRequested'];
    await Promise.all(types.map((t) => this.options.codec.schemaId(t)));
    await this.keys?.start();
    await this.processor.start();
    const tickMs = this.options.tickMs ?? 250;
    this.tickTimer = setInterval(() => this.tick(), tickMs);
    this.tickTimer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.tickTimer);
    await this.processor.stop();
    await this.keys?.stop();
  }

  private async context(): Promise<DecideContext> {
    const loads = new Map<string, number>();
    for (const run of this.studies()) {
      for (const t of run.trials) if ((t.state === 'assigned' || t.state === 'running') && t.agentId) loads.set(t.agentId, (loads.get(t.agentId) ?? 0) + 1);
    }
    const known = new Map<string, string[]>();
    for (const run of this.studies()) {
      const c = run.study.spec.evaluators.capability;
      if (!known.has(c)) known.set(c, await this.evaluatorIds(c));
    }
    return {
      now: Date.now(),
      producerId: this.instanceId,
      evaluators: (capability) => (known.get(capability) ?? []).map((agentId): Evaluator => ({ agentId, load: loads.get(agentId) ?? 0 })),
    };
  }

  /** Evaluator ids: the directory's answer, at most 500 ms old (see CachedAgents). */
  private evaluatorIds(capability: string): Promise<string[]> {
    return this.directory.agents(capability);
  }

  private async decide(record: InputRecord, lane: Lane<Emitted>, allowedTypes: string[]): Promise<void> {
    const o = this.options;
    const decoded = await o.codec.decode(record.message.value, { allowedTypes });
    // study-inputs carries a study's creation and its evaluators' reports on trials (its definition's eventTypes, allowed above).
    const input = decoded.event as StudyCreated | Parameters<typeof decideReport>[2];
    const key = record.message.key?.toString() ?? null;
    if (key !== input.studyId) {
      throw new MabeamError('VALIDATION_FAILED', `Invalid ${decoded.type}: the message key is ${key === null ? 'missing' : `"${key}"`} but study-inputs is keyed by studyId ("${input.studyId}")`);
    }
    let runs = this.runs.get(record.partition);
    if (!runs) this.runs.set(record.partition, (runs = new Map()));
    const existing = runs.get(input.studyId);
    const ctx = await this.context();
    if (decoded.type === 'StudyCreated' && !existing) {
      // A new study's capability is not among those asked yet.
      const spec = safeSpec(decoded.event);
      if (spec) {
        const ids = await this.evaluatorIds(spec);
        const base = ctx.evaluators;
        ctx.evaluators = (c) => (c === spec ? ids.map((agentId) => base(c).find((e) => e.agentId === agentId) ?? { agentId, load: 0 }) : base(c));
      }
    }
    const report = input as Parameters<typeof decideReport>[2];
    // With signatures required, an evaluator's report counts only if its agent signed it (the coordinator's own check).
    const refused = decoded.type === 'StudyCreated' ? undefined : await this.refusedSignature(record, report.agentId);
    const decision =
      decoded.type === 'StudyCreated'
        ? decideCreated(existing, decoded.event, ctx)
        : refused
          ? decideRefusedReport(existing, report, refused.reasonCode, refused.reason, ctx)
          : decideReport(existing, decoded.type as Parameters<typeof decideReport>[1], report, ctx);
    await this.write(record.partition, decision, lane);
  }

  private async refusedSignature(record: InputRecord, agentId: string | null): Promise<SignatureRefusal | undefined> {
    if (!this.keys) return undefined;
    if (agentId === null) return { reasonCode: 'FORGED', reason: 'It names no agent, so no signature can be checked.' };
    const m = record.message;
    return this.keys.verify({ key: m.key, value: m.value, headers: m.headers, timestamp: Number(m.timestamp) }, agentId);
  }

  /** Encodes a decision into the lane's transaction, then keeps its run (nothing is kept if encoding fails). */
  private async write(partition: number, decision: Decision, lane: Lane<Emitted>): Promise<void> {
    const messages: Array<{ topic: string; message: Message }> = [];
    for (const e of decision.events) messages.push({ topic: this.studiesTopic, message: await this.message(e, partition) });
    for (const e of decision.events) if (e.type === 'StudyCompleted' && decision.run) messages.push(...(await this.applications(decision.run, e.event.best)));
    for (const { topic, message } of messages) lane.out.add(topic, message);
    lane.out.decisions.push(...decision.events);
    const runs = this.runs.get(partition);
    if (runs && decision.run) runs.set(decision.run.studyId, decision.run);
  }

  private async message(e: Emitted, partition: number): Promise<Message> {
    const event = e.event as { envelope: { eventId: string }; studyId?: string; subjectId?: string };
    return {
      key: event.studyId ?? event.subjectId ?? null,
      partition,
      value: await this.options.codec.encode(e.type, e.event),
      headers: { [eventHeaders.type]: e.type, [eventHeaders.id]: event.envelope.eventId },
    };
  }

  /** The variable change requests that apply a completed study's best params (trigger: the study and the trial). */
  private async applications(run: StudyRun, bestJson: string): Promise<Array<{ topic: string; message: Message }>> {
    const best = (JSON.parse(bestJson) as BestTrial[])[0];
    const apply = run.study.spec.apply;
    if (!best || Object.keys(apply).length === 0) return [];
    const out: Array<{ topic: string; message: Message }> = [];
    for (const [param, variableId] of Object.entries(apply)) {
      const request: VariableChangeRequested = {
        envelope: newEnvelope('VariableChangeRequested', this.instanceId, { correlationId: variableId, causationId: run.studyId }),
        variableId,
        value: JSON.stringify(best.params[param]),
        expectedVersion: null,
        requesterId: this.instanceId,
        cause: 'optimization',
        trigger: JSON.stringify({ study: run.studyId, trial: best.trialId, values: best.values }),
        definition: null,
      };
      out.push({
        topic: topicName(this.options.prefix, 'variable-requests'),
        message: { key: variableId, value: await this.options.codec.encode('VariableChangeRequested', request), headers: { [eventHeaders.type]: 'VariableChangeRequested', [eventHeaders.id]: request.envelope.eventId } },
      });
    }
    return out;
  }

  /** Looks at every partition with a study in progress: leases, time budgets, waiting trials. */
  private tick(): void {
    for (const [partition, runs] of this.runs) {
      if (this.ticking.has(partition) || ![...runs.values()].some((r) => !r.completed)) continue;
      this.ticking.add(partition);
      this.processor
        .inject(partition, async (lane) => {
          const ctx = await this.context();
          for (const run of [...(this.runs.get(partition)?.values() ?? [])]) {
            if (run.completed) continue;
            const decision = decideTick(run, ctx);
            if (decision.events.length > 0) await this.write(partition, decision, lane);
          }
        })
        .catch((error: unknown) => this.log.error({ partition, error: describeError(error) }, 'a study tick failed'))
        .finally(() => this.ticking.delete(partition));
    }
  }
}

/** The evaluator capability a declaration names, if it is readable at all (the full check is the decision's). */
function safeSpec(created: StudyCreated): string | undefined {
  try {
    const spec = JSON.parse(created.spec) as { evaluators?: { capability?: unknown } };
    const c = spec.evaluators?.capability;
    return typeof c === 'string' ? c : 'evaluate';
  } catch {
    return undefined;
  }
}
