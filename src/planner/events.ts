/**
 * The plan events as the fold reads them: the fields their Avro schemas
 * (schemas/events/, with the planner's topics) are to carry. Every event is
 * keyed by plan id; fields documented as JSON are strings holding JSON.
 */
import type { Envelope } from '../events/types.ts';

interface PlanEventBase {
  envelope: Envelope;
  planId: string;
}

interface StepEventBase extends PlanEventBase {
  stepId: string;
}

export interface PlanCreated extends PlanEventBase {
  /** JSON: the whole plan (the DAG), as parsePlan accepts it. */
  plan: string;
  requesterId: string;
}

export interface StepReady extends StepEventBase {
  reason: string;
}

export interface StepSkipped extends StepEventBase {
  reason: string;
}

export interface StepAssigned extends StepEventBase {
  attempt: number;
  agentId: string;
  /** The auction round that chose the agent (null when only one agent could). */
  roundId: string | null;
  leaseMs: number;
}

export interface StepStarted extends StepEventBase {
  attempt: number;
  agentId: string;
  leaseMs: number;
}

export interface StepCompleted extends StepEventBase {
  attempt: number;
  agentId: string;
  /** JSON, or null. */
  result: string | null;
}

export interface StepFailed extends StepEventBase {
  attempt: number;
  agentId: string | null;
  error: string;
  retriable: boolean;
  /** Set by the planner: no attempt follows. */
  final: boolean;
  /** Set by the planner: the step was handed up through hierarchical delegation. */
  escalated: boolean;
}

export interface StepRetried extends StepEventBase {
  /** The new attempt. */
  attempt: number;
  reasonCode: string;
  reason: string;
  /** Not before this time (ms) is the new attempt assigned: the retry's backoff. */
  notBefore: number;
}

export interface PlanCompleted extends PlanEventBase {
  /** JSON: the plan's result, named as its `result` says. */
  result: string;
}

export interface PlanFailed extends PlanEventBase {
  reason: string;
  failed: string[];
}

export interface PlanCancelled extends PlanEventBase {
  reason: string;
}

export type PlanEvent =
  | { type: 'PlanCreated'; event: PlanCreated }
  | { type: 'StepReady'; event: StepReady }
  | { type: 'StepSkipped'; event: StepSkipped }
  | { type: 'StepAssigned'; event: StepAssigned }
  | { type: 'StepStarted'; event: StepStarted }
  | { type: 'StepCompleted'; event: StepCompleted }
  | { type: 'StepFailed'; event: StepFailed }
  | { type: 'StepRetried'; event: StepRetried }
  | { type: 'PlanCompleted'; event: PlanCompleted }
  | { type: 'PlanFailed'; event: PlanFailed }
  | { type: 'PlanCancelled'; event: PlanCancelled };
