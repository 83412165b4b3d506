/**
 * TypeScript shapes of the Avro events in schemas/. Nullable Avro fields are
 * `T | null`; timestamps are milliseconds since the epoch; fields documented
 * as JSON are strings holding JSON.
 */
export interface Envelope {
  eventId: string;
  eventType: string;
  correlationId: string | null;
  causationId: string | null;
  producerId: string;
  eventTime: number;
}

interface Event {
  envelope: Envelope;
}

export interface AgentRecord extends Event {
  agentId: string;
  role: string;
  capabilities: string[];
  resources: Record<string, number>;
  consumerGroup: string;
  metadata: Record<string, string>;
  /** Ed25519 public key, the raw 32 bytes in base64 (null or absent: the agent does not sign). */
  publicKey?: string | null;
  /** Its key id (src/security/keys.ts keyIdOf). */
  keyId?: string | null;
  /** Epoch ms after which the key signs nothing. */
  keyNotAfter?: number | null;
}

export interface AgentStateSnapshot extends Event {
  agentId: string;
  instanceId: string;
  sequence: number;
  state: Buffer;
  contentType: string;
}

export interface Heartbeat extends Event {
  agentId: string;
  instanceId: string;
  host: string;
  pid: number;
  sequence: number;
  intervalMs: number;
  memoryRssBytes: number;
  heapUsedBytes: number;
  consumerLag: number;
}

export type LifecycleState = 'registered' | 'starting' | 'running' | 'stopping' | 'stopped' | 'failed' | 'migrating';

export interface LifecycleChanged extends Event {
  agentId: string;
  instanceId: string | null;
  from: LifecycleState | null;
  to: LifecycleState;
  reason: string;
  host: string | null;
}

export interface HandlerFailed extends Event {
  agentId: string;
  instanceId: string;
  handler: 'onBidRequest' | 'onProposal' | 'onDirective' | 'stepCost';
  subjectId: string;
  causeEventId: string;
  error: string;
}

export interface VariableState extends Event {
  variableId: string;
  version: number;
  valueType: string;
  value: string;
  writerId: string;
  definition: string | null;
}

export interface VariableChangeRequested extends Event {
  variableId: string;
  value: string | null;
  expectedVersion: number | null;
  requesterId: string;
  cause: string;
  trigger: string | null;
  definition: string | null;
}

export interface VariableChanged extends Event {
  variableId: string;
  version: number;
  previousValue: string | null;
  value: string;
  writerId: string;
  cause: string;
  trigger: string | null;
}

export interface VariableChangeRejected extends Event {
  variableId: string;
  attemptedValue: string | null;
  requesterId: string;
  reasonCode: string;
  reason: string;
}

export interface BidRequest extends Event {
  roundId: string;
  protocol: string;
  item: string;
  requiredCapabilities: string[];
  eligibleAgents: string[];
  reservePrice: number | null;
  deadline: number;
  parameters: string | null;
  /** Decoded events always have it (Avro default 0); a new request may leave it out. */
  stage?: number;
  earlierStages?: string[];
}

export interface Bid extends Event {
  roundId: string;
  agentId: string;
  amount: number;
  bundle: string[];
  attributes: string | null;
}

export interface Proposal extends Event {
  roundId: string;
  protocol: string;
  subject: string;
  options: string[];
  eligibleVoters: string[];
  weights: Record<string, number>;
  quorum: number | null;
  deadline: number;
  parameters: string | null;
  /** Decoded events always have it (Avro default 0); a new request may leave it out. */
  stage?: number;
  earlierStages?: string[];
}

export interface Vote extends Event {
  roundId: string;
  agentId: string;
  choice: string;
  weight: number | null;
  reason: string | null;
}

export interface Directive extends Event {
  agentId: string;
  action: string;
  parameters: string | null;
  roundId: string | null;
  variableId: string | null;
}

export interface RoundClosed extends Event {
  roundId: string;
  protocol: string;
  cause: 'complete' | 'deadline' | 'cancelled';
  countedEventIds: string[];
  /** Decoded events always have them (Avro defaults 0 and true). */
  stage?: number;
  final?: boolean;
}

export interface RoundOutcome extends Event {
  roundId: string;
  protocol: string;
  status: 'decided' | 'no-decision' | 'failed';
  winners: string[];
  price: number | null;
  value: string | null;
  reason: string;
  details: string | null;
  /** JSON: what the round was about (the request's item or the proposal's subject). */
  subject?: string | null;
  /** The kind of protocol that decided (auction or consensus); null in outcomes written before it was recorded. */
  kind?: string | null;
  /** Who could answer the round's last stage; empty for an open round (and in outcomes written before it was recorded). */
  eligible?: string[];
}

export interface Rejection extends Event {
  subjectId: string;
  rejectedEventId: string | null;
  rejectedEventType: string | null;
  agentId: string | null;
  reasonCode: string;
  reason: string;
}

export interface RoundState extends Event {
  roundId: string;
  request: string | null;
  protocol: string | null;
  counted: string;
  pending: string;
  closed: boolean;
  handled: string[];
  closedAt: number | null;
}

export interface MetricSample extends Event {
  name: string;
  value: number;
  labels: Record<string, string>;
  source: string;
}

export interface DeadLetterHeader {
  key: string;
  value: Buffer | null;
}

export interface DeadLetter extends Event {
  reasonCode: string;
  reason: string;
  sourceTopic: string;
  sourcePartition: number;
  sourceOffset: number;
  sourceTimestamp: number | null;
  consumerGroup: string | null;
  schemaId: number | null;
  key: Buffer | null;
  value: Buffer | null;
  headers: DeadLetterHeader[];
}

export interface StudyCreated extends Event {
  studyId: string;
  requesterId: string;
  seed: number;
  /** JSON: the study declaration (see optimizer/study/spec.ts). */
  spec: string;
}

export interface TrialProposed extends Event {
  studyId: string;
  trialId: string;
  number: number;
  /** JSON */
  params: string;
  seed: number;
  digest: string;
  miniBatch: number | null;
  /** JSON: how the searcher made it (SIMBA), or null. */
  origin: string | null;
  searcher: string;
}

export interface TrialAssigned extends Event {
  studyId: string;
  trialId: string;
  number: number;
  attempt: number;
  agentId: string;
  rule: string;
  /** JSON */
  params: string;
  miniBatch: number | null;
  leaseMs: number;
}

export interface TrialStarted extends Event {
  studyId: string;
  trialId: string;
  attempt: number;
  agentId: string;
  instanceId: string;
  leaseMs: number;
}

export interface TrialHeartbeat extends Event {
  studyId: string;
  trialId: string;
  attempt: number;
  agentId: string;
}

export interface TrialReported extends Event {
  studyId: string;
  trialId: string;
  attempt: number;
  agentId: string;
  step: number;
  values: number[];
  /** Set by the optimizer when it writes the report back: the pruner's verdict. */
  pruned: boolean;
}

export interface TrialPruned extends Event {
  studyId: string;
  trialId: string;
  attempt: number;
  step: number;
  rule: string;
  reason: string;
}

export interface TrialCompleted extends Event {
  studyId: string;
  trialId: string;
  attempt: number;
  agentId: string;
  values: number[];
  constraints: number[];
}

export interface TrialFailed extends Event {
  studyId: string;
  trialId: string;
  attempt: number;
  agentId: string | null;
  error: string;
  final: boolean;
}

export interface TrialRetried extends Event {
  studyId: string;
  trialId: string;
  attempt: number;
  previousAgentId: string | null;
  reasonCode: string;
  reason: string;
}

export interface StudyCompleted extends Event {
  studyId: string;
  reason: string;
  trials: number;
  /** JSON */
  best: string;
  applied: string[];
}

export interface PlanRequested extends Event {
  planId: string;
  requesterId: string;
  /** JSON: what is wanted, its inputs and constraints. */
  goal: string;
  /** The template that decomposes the goal; null when the plan is given whole. */
  goalType: string | null;
  /** JSON: the whole plan, or null. */
  plan: string | null;
}

export interface PlanCreated extends Event {
  planId: string;
  requesterId: string;
  goalType: string | null;
  /** JSON: the checked plan (planner/plan.ts). */
  plan: string;
}

export interface PlanRejected extends Event {
  planId: string;
  requesterId: string;
  reasonCode: string;
  reason: string;
  problems: string[];
}

export interface StepReady extends Event {
  planId: string;
  stepId: string;
  reason: string;
}

export interface StepSkipped extends Event {
  planId: string;
  stepId: string;
  reason: string;
}

export interface StepAuctioned extends Event {
  planId: string;
  stepId: string;
  attempt: number;
  roundId: string;
  protocol: string;
  asked: string[];
  tiers: string[][];
  deadline: number;
}

export interface StepAssigned extends Event {
  planId: string;
  stepId: string;
  attempt: number;
  agentId: string;
  capability: string;
  /** The assignment auction; null when only one agent could take the step. */
  roundId: string | null;
  rule: string;
  /** JSON: the resolved inputs. */
  inputs: string;
  leaseMs: number;
  escalated: boolean;
}

export interface StepStarted extends Event {
  planId: string;
  stepId: string;
  attempt: number;
  agentId: string;
  instanceId: string;
  leaseMs: number;
}

export interface StepHeartbeat extends Event {
  planId: string;
  stepId: string;
  attempt: number;
  agentId: string;
}

export interface StepCompleted extends Event {
  planId: string;
  stepId: string;
  attempt: number;
  agentId: string;
  /** JSON, or null. */
  result: string | null;
}

export interface StepFailed extends Event {
  planId: string;
  stepId: string;
  attempt: number;
  agentId: string | null;
  error: string;
  retriable: boolean;
  /** Set by the planner: no attempt follows. */
  final: boolean;
  /** Set by the planner: the step is handed up by hierarchical delegation. */
  escalated: boolean;
}

export interface StepRetried extends Event {
  planId: string;
  stepId: string;
  attempt: number;
  previousAgentId: string | null;
  reasonCode: string;
  reason: string;
  /** No agent is chosen before this time (ms): the retry's backoff. */
  notBefore: number;
  escalated: boolean;
}

export interface PlanCompleted extends Event {
  planId: string;
  /** JSON: the joined result. */
  result: string;
}

export interface PlanFailed extends Event {
  planId: string;
  reason: string;
  failed: string[];
}

export interface PlanCancelled extends Event {
  planId: string;
  requesterId: string;
  reason: string;
}

/** Every event type by its short name. */
export interface EventTypes {
  AgentRecord: AgentRecord;
  AgentStateSnapshot: AgentStateSnapshot;
  Heartbeat: Heartbeat;
  LifecycleChanged: LifecycleChanged;
  HandlerFailed: HandlerFailed;
  VariableState: VariableState;
  VariableChanged: VariableChanged;
  VariableChangeRequested: VariableChangeRequested;
  VariableChangeRejected: VariableChangeRejected;
  BidRequest: BidRequest;
  Bid: Bid;
  Proposal: Proposal;
  Vote: Vote;
  Directive: Directive;
  RoundClosed: RoundClosed;
  RoundOutcome: RoundOutcome;
  Rejection: Rejection;
  RoundState: RoundState;
  MetricSample: MetricSample;
  DeadLetter: DeadLetter;
  StudyCreated: StudyCreated;
  TrialProposed: TrialProposed;
  TrialAssigned: TrialAssigned;
  TrialStarted: TrialStarted;
  TrialHeartbeat: TrialHeartbeat;
  TrialReported: TrialReported;
  TrialPruned: TrialPruned;
  TrialCompleted: TrialCompleted;
  TrialFailed: TrialFailed;
  TrialRetried: TrialRetried;
  StudyCompleted: StudyCompleted;
  PlanRequested: PlanRequested;
  PlanCreated: PlanCreated;
  PlanRejected: PlanRejected;
  StepReady: StepReady;
  StepSkipped: StepSkipped;
  StepAuctioned: StepAuctioned;
  StepAssigned: StepAssigned;
  StepStarted: StepStarted;
  StepHeartbeat: StepHeartbeat;
  StepCompleted: StepCompleted;
  StepFailed: StepFailed;
  StepRetried: StepRetried;
  PlanCompleted: PlanCompleted;
  PlanFailed: PlanFailed;
  PlanCancelled: PlanCancelled;
}

export type EventTypeName = keyof EventTypes;
export type AnyEvent = EventTypes[EventTypeName];
