import { collectDefaultMetrics, Counter, Gauge, Histogram, type Registry } from 'prom-client';

export interface MetricsOptions {
  /** The prom-client registry to register in (tests give each their own). */
  registry: Registry;
  /** Labels put on every metric, e.g. { service: 'coordinator' }. */
  labels?: Record<string, string>;
  /**
   * Also collect prom-client's default process and Node.js metrics (CPU,
   * memory, event loop lag, GC; their usual `process_` / `nodejs_` names) into
   * the same registry. Off by default. At most once per registry.
   */
  defaults?: boolean;
}

/** How a round ended, for `rounds` and `coordinationLatency`. */
export type RoundStatus = 'decided' | 'no-decision' | 'failed';
/** The kind of answer, for `answers`. */
export type AnswerKind = 'bid' | 'vote';
/** What happened to a variable change, for `variableChanges`. */
export type VariableChangeOutcome = 'applied' | 'rejected';

/** Buckets of `mabeam_coordination_latency_seconds`: 1 ms to 60 s. */
export const coordinationLatencyBuckets: readonly number[] = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60];

export interface Metrics {
  registry: Registry;
  /** Messages sent to the dead-letter topic. */
  deadLetters: Counter<'topic' | 'reason'>;
  /** Seconds from a round's request (its event time) to its outcome. `status`: a `RoundStatus`. */
  coordinationLatency: Histogram<'protocol' | 'status'>;
  /** Rounds ended. `status`: a `RoundStatus`. */
  rounds: Counter<'protocol' | 'status'>;
  /** Stages opened by iterative protocols (each new stage of a multi-stage round). */
  roundStages: Counter<'protocol'>;
  /** Answers counted in rounds. `kind`: an `AnswerKind`. */
  answers: Counter<'protocol' | 'kind'>;
  /** Input refused with a `Rejection`, by reason code. */
  rejections: Counter<'reason'>;
  /** Agents currently in each lifecycle state. */
  agentsByState: Gauge<'state'>;
  /** Changes to coordination variables. `outcome`: a `VariableChangeOutcome`. */
  variableChanges: Counter<'variable' | 'outcome'>;
  /** Messages a consumer group has yet to read, by group and topic. */
  consumerLag: Gauge<'group' | 'topic'>;
  /** Records found on a partition their key does not hash to, moved to the right one (a producer with another partitioner). */
  rerouted: Counter<'topic'>;
  /** Transactions a deciding member committed, by group. */
  transactions: Counter<'group'>;
  /** What optimizers decided of trials: proposed, complete, pruned, failed (for good), retried. */
  trials: Counter<'outcome'>;
  /** Studies ended: completed (by reason: trials, time) or rejected. */
  studies: Counter<'status'>;
  /** What planners decided of steps: assigned (directly or by auction), completed, retried, failed (for good), skipped. */
  steps: Counter<'outcome'>;
  /** Plans ended: completed, failed, cancelled, or rejected (by reason code). */
  plans: Counter<'status'>;
  /** Records refused for their signature (signatures required), by topic and reason: FORGED, UNKNOWN_KEY, KEY_EXPIRED. */
  forgedEvents: Counter<'topic' | 'reason'>;
}

/**
 * Creates the product's metrics in the given registry. Nothing is registered
 * in prom-client's global default registry, so any number of registries (one
 * per test, one per process) can each hold a set.
 */
export function createMetrics(options: MetricsOptions): Metrics {
  const { registry } = options;
  if (options.labels) registry.setDefaultLabels(options.labels);
  if (options.defaults) collectDefaultMetrics({ register: registry });
  const registers = [registry];
  return {
    registry,
    deadLetters: new Counter({
      name: 'mabeam_dead_letters_total',
      help: 'Messages sent to the dead-letter topic, by source topic and reason code.',
      labelNames: ['topic', 'reason'],
      registers,
    }),
    coordinationLatency: new Histogram({
      name: 'mabeam_coordination_latency_seconds',
      help: 'Seconds from a round\'s request (its event time) to its outcome, by protocol and how the round ended (decided, no-decision, failed).',
      labelNames: ['protocol', 'status'],
      buckets: [...coordinationLatencyBuckets],
      registers,
    }),
    rounds: new Counter({
      name: 'mabeam_rounds_total',
      help: 'Coordination rounds ended, by protocol and how they ended (decided, no-decision, failed).',
      labelNames: ['protocol', 'status'],
      registers,
    }),
    roundStages: new Counter({
      name: 'mabeam_round_stages_total',
      help: 'Stages opened by iterative protocols (a multi-stage round counts each stage), by protocol.',
      labelNames: ['protocol'],
      registers,
    }),
    answers: new Counter({
      name: 'mabeam_answers_total',
      help: 'Answers counted in rounds, by protocol and kind (bid, vote).',
      labelNames: ['protocol', 'kind'],
      registers,
    }),
    rejections: new Counter({
      name: 'mabeam_rejections_total',
      help: 'Input the coordinator refused with a Rejection event, by reason code.',
      labelNames: ['reason'],
      registers,
    }),
    agentsByState: new Gauge({
      name: 'mabeam_agents',
      help: 'Agents currently in each lifecycle state.',
      labelNames: ['state'],
      registers,
    }),
    variableChanges: new Counter({
      name: 'mabeam_variable_changes_total',
      help: 'Changes to coordination variables, by variable and outcome (applied, rejected).',
      labelNames: ['variable', 'outcome'],
      registers,
    }),
    consumerLag: new Gauge({
      name: 'mabeam_consumer_lag',
      help: 'Messages a consumer group has yet to read, by group and topic.',
      labelNames: ['group', 'topic'],
      registers,
    }),
    rerouted: new Counter({
      name: 'mabeam_rerouted_total',
      help: 'Records read from a partition their key does not hash to (murmur2) and moved to the right one, by topic.',
      labelNames: ['topic'],
      registers,
    }),
    transactions: new Counter({
      name: 'mabeam_transactions_total',
      help: 'Transactions committed by deciding members (coordinators, variable owners, optimizers), by consumer group.',
      labelNames: ['group'],
      registers,
    }),
    trials: new Counter({
      name: 'mabeam_trials_total',
      help: 'Trials as optimizers decided them: proposed, complete, pruned, failed (for good), retried.',
      labelNames: ['outcome'],
      registers,
    }),
    studies: new Counter({
      name: 'mabeam_studies_total',
      help: 'Studies ended: completed-trials, completed-time (budget spent) or rejected.',
      labelNames: ['status'],
      registers,
    }),
    steps: new Counter({
      name: 'mabeam_steps_total',
      help: 'Plan steps as planners decided them: assigned-direct, assigned-auction, completed, retried, failed (for good), skipped.',
      labelNames: ['outcome'],
      registers,
    }),
    plans: new Counter({
      name: 'mabeam_plans_total',
      help: 'Plans ended: completed, failed, cancelled, or rejected-<reason code>.',
      labelNames: ['status'],
      registers,
    }),
    forgedEvents: new Counter({
      name: 'mabeam_forged_events_total',
      help: 'Records refused for their signature while signatures are required, by topic and reason (FORGED, UNKNOWN_KEY, KEY_EXPIRED).',
      labelNames: ['topic', 'reason'],
      registers,
    }),
  };
}
