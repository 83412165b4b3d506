/**
 * The events of a plan's log (`plans`, keyed by plan id) as the fold reads
 * them. Their shapes are the Avro records in schemas/events/ (src/events/types.ts).
 */
import type { DecodedEvent } from '../codec/codec.ts';
import type {
  PlanCancelled,
  PlanCompleted,
  PlanCreated,
  PlanFailed,
  StepAssigned,
  StepAuctioned,
  StepCompleted,
  StepFailed,
  StepReady,
  StepRetried,
  StepSkipped,
  StepStarted,
} from '../events/types.ts';

export type PlanEvent =
  | { type: 'PlanCreated'; event: PlanCreated }
  | { type: 'StepReady'; event: StepReady }
  | { type: 'StepSkipped'; event: StepSkipped }
  | { type: 'StepAuctioned'; event: StepAuctioned }
  | { type: 'StepAssigned'; event: StepAssigned }
  | { type: 'StepStarted'; event: StepStarted }
  | { type: 'StepCompleted'; event: StepCompleted }
  | { type: 'StepFailed'; event: StepFailed }
  | { type: 'StepRetried'; event: StepRetried }
  | { type: 'PlanCompleted'; event: PlanCompleted }
  | { type: 'PlanFailed'; event: PlanFailed }
  | { type: 'PlanCancelled'; event: PlanCancelled };

/** The plan-log event types the fold applies. */
export const planEventTypes: ReadonlySet<string> = new Set(['PlanCreated', 'StepReady', 'StepSkipped', 'StepAuctioned', 'StepAssigned', 'StepStarted', 'StepCompleted', 'StepFailed', 'StepRetried', 'PlanCompleted', 'PlanFailed', 'PlanCancelled']);

/** Whether a decoded event is one the fold applies (narrows it to those types). */
export function isPlanEvent(decoded: DecodedEvent): decoded is DecodedEvent<PlanEvent['type']> {
  return planEventTypes.has(decoded.type);
}
