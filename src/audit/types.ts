/**
 * What an audit returns: plain, JSON-able objects (no class instances, no
 * buffers), so `mabeam audit … --json` prints them as they are. Values the
 * log holds as JSON text (items, parameters, variable values, triggers,
 * outcome details) are parsed; text that is not JSON stays text.
 */
import type { Kafka } from 'kafkajs';
import type { EventCodec } from '../codec/codec.ts';
import type { LifecycleState, RoundClosed, RoundOutcome } from '../events/types.ts';
import type { UndecodableRecord } from '../replay/scanLog.ts';
import type { TopicDefinition } from '../topics/types.ts';

/** What an audit reads with: the cluster, the codec, the topic prefix. */
export interface AuditConnection {
  kafka: Kafka;
  codec: EventCodec;
  prefix: string;
  /** The topic definitions (which event types each topic carries); default topics/*.json. */
  definitions?: TopicDefinition[];
  /** How long reading the log may take (default 120 000 ms, then LOG_READ_TIMEOUT). */
  timeoutMs?: number;
}

/** Where a record is in the log. */
export interface LogPosition {
  topic: string;
  partition: number;
  offset: number;
  /** The record's log timestamp (ms). */
  timestamp: number;
  /** Set when the engine copied the record here from where a producer had put it (its key belongs here): that partition and offset. */
  forwardedFrom?: { partition: number; offset: number };
}

/** The producer that wrote a record: for a transactional producer, id and epoch name the transactions it wrote (a fenced one has a lower epoch). */
export interface WrittenBy {
  producerId: string;
  producerEpoch: number;
  transactional: boolean;
}

/** A Rejection on the outcomes topic: the coordinator refused an event. */
export interface Refusal {
  reasonCode: string;
  reason: string;
  /** The Rejection's own event id. */
  eventId: string;
  /** The refused event's id. */
  rejectedEventId: string | null;
  agentId: string | null;
  eventTime: number;
  position: LogPosition;
  writtenBy: WrittenBy | null;
}

/** A request of a round: the BidRequest or Proposal that opened it, or one of its later stages. */
export interface RoundRequestInfo {
  eventId: string;
  type: 'BidRequest' | 'Proposal';
  kind: 'auction' | 'consensus';
  protocol: string;
  stage: number;
  /** What the round is about: the BidRequest's item or the Proposal's subject. */
  subject: unknown;
  /** Who may answer (bidders or voters); empty: anyone with the required capabilities. */
  eligible: string[];
  requiredCapabilities: string[];
  /** Consensus: the choices, the voters' weights, the quorum. */
  options: string[];
  weights: Record<string, number>;
  quorum: number | null;
  reservePrice: number | null;
  deadline: number;
  parameters: unknown;
  /** The envelope's producerId: who sent it (the coordinator for a later stage). */
  sentBy: string;
  eventTime: number;
  position: LogPosition;
  writtenBy: WrittenBy | null;
  /** Set when the coordinator refused the request (UNKNOWN_PROTOCOL, DUPLICATE_ROUND, INVALID_REQUEST, …). */
  refused?: Refusal;
  /** Other records with the same event id (copies), not taken as further requests. */
  duplicates: LogPosition[];
}

export type AnswerVerdict = 'counted' | 'refused' | 'neither';

/** A bid or a vote of the round, and what became of it. */
export interface AnswerInfo {
  eventId: string;
  type: 'Bid' | 'Vote';
  agentId: string;
  /** The answer in words: the amount (and bundle), "pass", or the choice. */
  answer: string;
  amount?: number;
  bundle?: string[];
  attributes?: unknown;
  pass?: boolean;
  choice?: string;
  weight?: number | null;
  reason?: string | null;
  eventTime: number;
  /** The envelope's producerId. */
  sentBy: string;
  /** The request (or stage) it answers: the envelope's causationId. */
  repliesTo: string | null;
  /** The stage it belongs to: the one whose closing counted it, else the one it replies to. */
  stage: number | null;
  position: LogPosition;
  verdict: AnswerVerdict;
  /** Counted: by the closing of this stage. */
  countedAt?: { stage: number; closingEventId: string };
  /** Refused: the coordinator's Rejection (reasonCode, reason). */
  refusal?: Refusal;
  /** Neither counted nor refused: why, as far as the log tells. */
  note?: string;
  /** Later records with the same event id; each such copy the coordinator refused as DUPLICATE_EVENT is in duplicateRefusals. */
  duplicates: LogPosition[];
  duplicateRefusals: Refusal[];
}

/** A coordinator's RoundClosed: a stage (or the round) closed. */
export interface ClosingInfo {
  stage: number;
  cause: RoundClosed['cause'];
  /** False when another stage followed. */
  final: boolean;
  /** The answers it counted, by event id, in the order they were taken. */
  countedEventIds: string[];
  /** Their agents, in the same order (null where the answer is not in the log). */
  countedAgents: Array<string | null>;
  eventId: string;
  eventTime: number;
  position: LogPosition;
  writtenBy: WrittenBy | null;
  duplicates: LogPosition[];
}

/** One stage of a round: its request, the answers to it and its closing. Rounds that are not iterative have stage 0 only. */
export interface StageInfo {
  stage: number;
  request?: RoundRequestInfo;
  closed?: ClosingInfo;
  counted: number;
  refused: number;
}

export interface OutcomeInfo {
  protocol: string;
  status: RoundOutcome['status'];
  winners: string[];
  price: number | null;
  value: unknown;
  /** Why, in the protocol's words. */
  reason: string;
  details: unknown;
  subject: unknown;
  kind: string | null;
  eligible: string[];
  eventId: string;
  eventTime: number;
  position: LogPosition;
  writtenBy: WrittenBy | null;
}

/** A directive the round's decision sent (an award to a winner). */
export interface RoundDirectiveInfo {
  agentId: string;
  action: string;
  parameters: unknown;
  eventId: string;
  /** True when its event id is the one the coordinator derives for this round and agent. */
  expectedId: boolean;
  eventTime: number;
  position: LogPosition;
  writtenBy: WrittenBy | null;
  duplicates: LogPosition[];
}

/** A record of the round the coordinator does not take (the wrong event type for its topic, keyed by something else). */
export interface IgnoredRecord {
  type: string;
  eventId: string | null;
  position: LogPosition;
  why: string;
}

export type RoundAuditState = 'decided' | 'no-decision' | 'failed' | 'open' | 'refused' | 'unopened';

/** The whole story of one round, from the log. */
export interface RoundAudit {
  roundId: string;
  /**
   * decided / no-decision / failed: what its outcome says; open: opened,
   * no outcome yet; refused: its request was refused; unopened: the log
   * holds answers or refusals for it but no request.
   */
  state: RoundAuditState;
  protocol: string | null;
  kind: 'auction' | 'consensus' | null;
  /** The partition of the round topics its id belongs to, and what was read. */
  partition: number;
  /**
   * What was read: the round's partition of the round topics (`whole`: the
   * request and answer topics whole; else from a little before the round's
   * first output until every record the coordinator named was found), and
   * the winners' partitions of directives.
   */
  read: { topics: string[]; partition: number; records: number; whole: boolean; directivePartitions: number[]; directiveRecords: number };
  /** The request that opened it (stage 0), when the log has one. */
  request?: RoundRequestInfo;
  /** Every request of the round in log order: the opening one, later stages, and refused ones. */
  requests: RoundRequestInfo[];
  answers: AnswerInfo[];
  stages: StageInfo[];
  /** The closing that ended it (the final one). */
  closed?: ClosingInfo;
  /** The first outcome; every outcome record of the round is in `outcomes` (more than one is an anomaly, or a round id used again). */
  outcome?: OutcomeInfo;
  outcomes: OutcomeInfo[];
  /** Directives the decision sent, read on the winners' partitions of the directives topic. */
  directives: RoundDirectiveInfo[];
  /** Winners the decision should have told (an award) whose directive is not in the log. */
  missingDirectives: string[];
  /** Refusals naming an event of the round that is not in the log (or not a request or an answer). */
  otherRefusals: Refusal[];
  /** Records of the round the coordinator does not take, and why. */
  ignored: IgnoredRecord[];
  /** Records on the partitions read that did not decode (the coordinator dead-lettered them): which round they were meant for cannot be told. */
  undecodable: UndecodableRecord[];
}

// ---- variables ----

export type VariableCauseKind = 'define' | 'set' | 'compare-and-set' | 'consensus' | 'adaptation' | 'market' | 'other';

/** Why a variable changed (or was asked to), from the request's cause and trigger. */
export interface VariableCause {
  kind: VariableCauseKind;
  /** The cause as written (define, set, consensus, adaptation, market, …). */
  name: string;
  /** In words. */
  summary: string;
  expectedVersion?: number;
  /** consensus and market changes: the round. */
  roundId?: string;
  protocol?: string;
  /** adaptation: the function, its reason and the samples it was given. */
  function?: string;
  reason?: string;
  samples?: Array<{ eventId: string; name: string; value: number }>;
}

export interface VariableRequestInfo {
  eventId: string;
  requesterId: string;
  value: unknown;
  expectedVersion: number | null;
  cause: string;
  trigger: unknown;
  /** A define request's definition. */
  definition: unknown;
  eventTime: number;
  position: LogPosition;
  duplicates: LogPosition[];
}

export interface VariableVersionInfo {
  version: number;
  previousValue: unknown;
  value: unknown;
  writerId: string;
  cause: VariableCause;
  trigger: unknown;
  eventId: string;
  eventTime: number;
  position: LogPosition;
  writtenBy: WrittenBy | null;
  /** The request that led to it (its causation), when the log has it. */
  request?: VariableRequestInfo;
  duplicates: LogPosition[];
}

export interface VariableRefusalInfo {
  reasonCode: string;
  reason: string;
  attemptedValue: unknown;
  requesterId: string;
  cause?: VariableCause;
  eventId: string;
  eventTime: number;
  position: LogPosition;
  writtenBy: WrittenBy | null;
  request?: VariableRequestInfo;
  duplicates: LogPosition[];
}

export interface VariableAudit {
  variableId: string;
  read: { topics: string[]; partitions: Record<string, number>; records: number };
  /** The definition the first applied version was defined with. */
  definition: unknown;
  current: { version: number; value: unknown } | null;
  versions: VariableVersionInfo[];
  refused: VariableRefusalInfo[];
  /** Requests the owners have not answered (yet). */
  unanswered: VariableRequestInfo[];
  undecodable: UndecodableRecord[];
}

// ---- agents ----

export interface LifecycleStep {
  from: LifecycleState | null;
  to: LifecycleState;
  reason: string;
  instanceId: string | null;
  host: string | null;
  eventTime: number;
  position: LogPosition;
}

export interface AgentInstanceInfo {
  instanceId: string;
  host: string | null;
  firstSeen: number;
  lastSeen: number;
  /** The states it went through, in order. */
  states: LifecycleState[];
  lastState: LifecycleState;
}

/** An instance started after an earlier one had stopped or failed. */
export interface AgentRestart {
  instanceId: string | null;
  at: number;
  /** The state it started again from (stopped or failed), and the instance that was in it. */
  after: LifecycleState;
  previousInstanceId: string | null;
  reason: string;
}

/** A hand-over: an instance migrating, and the instance that started next. */
export interface AgentMigration {
  fromInstanceId: string | null;
  toInstanceId: string | null;
  reason: string;
  at: number;
  resumedAt: number | null;
}

export interface AgentAnswerInfo {
  roundId: string;
  type: 'Bid' | 'Vote';
  eventId: string;
  answer: string;
  amount?: number;
  choice?: string;
  eventTime: number;
  position: LogPosition;
  verdict: AnswerVerdict;
  countedAt?: { stage: number; closingEventId: string };
  refusal?: Refusal;
  note?: string;
  duplicates: LogPosition[];
}

export interface RoundWonInfo {
  roundId: string;
  protocol: string;
  winners: string[];
  price: number | null;
  value: unknown;
  reason: string;
  eventId: string;
  eventTime: number;
  position: LogPosition;
  duplicates: LogPosition[];
}

export interface HandlerFailureInfo {
  handler: string;
  subjectId: string;
  causeEventId: string;
  error: string;
  instanceId: string;
  eventId: string;
  eventTime: number;
  position: LogPosition;
  duplicates: LogPosition[];
}

/**
 * failed: a HandlerFailed names it; carried-out: a stop or migrate the host
 * acted on (its lifecycle says so); delivered: the agent's consumer group
 * has committed past it, with no failure; pending: not consumed yet;
 * unknown: the log does not say which consumer group the agent is in.
 */
export type DirectiveHandling = 'failed' | 'carried-out' | 'delivered' | 'pending' | 'unknown';

export interface AgentDirectiveInfo {
  eventId: string;
  action: string;
  roundId: string | null;
  variableId: string | null;
  parameters: unknown;
  sentBy: string;
  eventTime: number;
  position: LogPosition;
  writtenBy: WrittenBy | null;
  handling: DirectiveHandling;
  failure?: HandlerFailureInfo;
  duplicates: LogPosition[];
}

export interface AgentAudit {
  agentId: string;
  read: { topics: string[]; agentPartition: number; records: number; consumerGroup: string | null };
  /** The agent's latest registration record. */
  registration?: { role: string; capabilities: string[]; resources: Record<string, number>; consumerGroup: string; metadata: Record<string, string>; eventTime: number; position: LogPosition };
  lifecycle: LifecycleStep[];
  instances: AgentInstanceInfo[];
  restarts: AgentRestart[];
  migrations: AgentMigration[];
  answers: AgentAnswerInfo[];
  roundsWon: RoundWonInfo[];
  directives: AgentDirectiveInfo[];
  handlerFailures: HandlerFailureInfo[];
  undecodable: UndecodableRecord[];
}
