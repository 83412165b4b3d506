import type { Bid, BidRequest, Directive, LifecycleState, Proposal, Vote } from '../events/types.ts';
import type { Logger } from '../log/logger.ts';

/** An agent's answer to a bid request; return null (or nothing) to abstain. */
export interface BidAnswer {
  amount: number;
  bundle?: string[];
  /** Anything else the bidder wants to say (JSON-serialisable). */
  attributes?: unknown;
}

/** An agent's vote on a proposal; return null (or nothing) to abstain. */
export interface VoteAnswer {
  choice: string;
  weight?: number;
  reason?: string;
}

export interface AgentContext<S> {
  agentId: string;
  instanceId: string;
  logger: Logger;
  /**
   * The agent's own state (JSON-serialisable). Handlers may change it; it is
   * written to the agent-state topic on stop and migration and restored by
   * the next instance.
   */
  state: S;
  /**
   * Reports a measurement (a MetricSample on the metrics topic, source = this
   * agent): how it performs, or that it carried out a directive. Adaptation
   * functions read these. Written with the events of the message being
   * handled, or with the next heartbeat.
   */
  report(name: string, value: number, labels?: Record<string, string>): void;
}

type Maybe<T> = T | null | undefined | void;

/** A trial an evaluator is given (TrialAssigned to this agent). */
export interface Trial {
  studyId: string;
  trialId: string;
  number: number;
  /** 1 for the first evaluation of the trial, one more for each retry. */
  attempt: number;
  params: Record<string, unknown>;
  /** The mini-batch of evaluation examples to evaluate on, for searchers that use them; null for the whole set. */
  miniBatch: number | null;
}

/** What an evaluation answers: the objective value(s), and constraint values (<= 0 satisfied) if the study has constraints. */
export type TrialAnswer = number | number[] | { values: number[]; constraints?: number[] };

export interface TrialContext<S> extends AgentContext<S> {
  /**
   * Reports an intermediate value (one per objective) at a step — an epoch,
   * examples seen — for the pruner, and resolves with its verdict once the
   * optimizer has judged the report (read back from the study's log): true
   * when the trial is pruned (stop), false to go on. If no verdict comes
   * within a third of the lease it resolves false (the evaluation goes on,
   * and `signal` still aborts when a prune arrives later).
   */
  intermediate(step: number, value: number | number[]): Promise<boolean>;
  /**
   * Aborted when the evaluation should stop: the trial was pruned, retried
   * elsewhere, the study completed, or the host is stopping. What the handler
   * answers after that is not written.
   */
  signal: AbortSignal;
  /** Why the evaluation should stop (`pruned: asha …`), once the signal is aborted. */
  readonly stopReason: string | null;
}

/** A step of a plan an agent is given to run (StepAssigned to this agent), or bids for. */
export interface Step {
  planId: string;
  stepId: string;
  /** 1 for the first attempt at the step, one more for each retry or escalation. */
  attempt: number;
  /** The capability the step needs (for an escalated step, the tier it was handed up to). */
  capability: string;
  /** Whether the step was handed up by hierarchical delegation. */
  escalated: boolean;
  /** The step's inputs, resolved by the planner from the plan and the results of the steps before it. */
  inputs: Record<string, unknown>;
}

/**
 * What a step answers: its result, any JSON-serialisable value (undefined is
 * written as null). Something JSON cannot hold (a BigInt, a cycle, a
 * function) is the attempt's failure.
 */
export type StepAnswer = unknown;

export interface StepContext<S> extends AgentContext<S> {
  /**
   * Aborted when the attempt is taken away: the step was retried (as a later
   * attempt), its lease was counted lost, the plan completed, failed or was
   * cancelled, or the host is stopping. What the handler answers after that
   * is not written.
   */
  signal: AbortSignal;
  /** Why the attempt should stop (`retried as attempt 2 …`), once the signal is aborted. */
  readonly stopReason: string | null;
}

export interface AgentHandlers<S> {
  onBidRequest?: (request: BidRequest, context: AgentContext<S>) => Maybe<BidAnswer> | Promise<Maybe<BidAnswer>>;
  onProposal?: (proposal: Proposal, context: AgentContext<S>) => Maybe<VoteAnswer> | Promise<Maybe<VoteAnswer>>;
  onDirective?: (directive: Directive, context: AgentContext<S>) => void | Promise<void>;
  /**
   * Evaluates a trial of a study (the agent needs the study's evaluator
   * capability, 'evaluate' by default). Runs beside the agent's other
   * handlers; a throw is the attempt's failure (retried by the study's
   * policy).
   */
  onTrial?: (trial: Trial, context: TrialContext<S>) => TrialAnswer | Promise<TrialAnswer>;
  /**
   * Runs a step of a plan assigned to this agent. Runs beside the agent's
   * other handlers; its answer is the step's result. Throw a StepError with
   * `retriable: false` to fail the step with no retry; any other throw is a
   * failure the plan's retry policy may retry.
   */
  onStep?: (step: Step, context: StepContext<S>) => StepAnswer | Promise<StepAnswer>;
  /**
   * The agent's bid in a step's auction (lowest wins): a finite cost >= 0,
   * or undefined (or null) to pass. Without it the agent bids its load, the
   * number of steps it is running, so idle agents win. Only with onStep.
   */
  stepCost?: (step: Step, context: AgentContext<S>) => Maybe<number> | Promise<Maybe<number>>;
}

export interface AgentDefinition<S = Record<string, unknown>> extends AgentHandlers<S> {
  id: string;
  role: string;
  capabilities: string[];
  /** Resource needs, e.g. { memoryMb: 256 }. */
  resources?: Record<string, number>;
  metadata?: Record<string, string>;
  /** The state of a brand-new agent; later instances start from the last snapshot. */
  initialState?: () => S;
}

/** What an agent produced for an event, as the host writes it. */
export type AgentAnswer = { kind: 'bid'; bid: Bid } | { kind: 'vote'; vote: Vote };

/** An agent as a host runs it (internal to the host's parts; not exported). */
export interface HostedAgent {
  // Each agent's state type is its own; the host keeps them side by side.
  definition: AgentDefinition<any>;
  context: AgentContext<unknown>;
  /** Its lifecycle state in this instance; null until announced. */
  lifecycle: LifecycleState | null;
  snapshotSequence: number;
  heartbeatSequence: number;
  /** Set while one of its handlers runs (dispatch.ts runs an agent's handlers one at a time). */
  busy?: Promise<void>;
}
