/**
 * What the live view shows: plain JSON rows, the shapes of the HTTP API
 * (GET /api/…) and of the events on its stream (GET /api/events).
 */
import type { Health } from '../agents/health.ts';

export type RoundKind = 'auction' | 'consensus' | 'other';
export type RoundStatus = 'open' | 'decided' | 'no-decision' | 'failed';

/** A round as the view keeps it: opened by its first request (stage 0), decided by its outcome. */
export interface RoundSummary {
  roundId: string;
  protocol: string;
  kind: RoundKind;
  status: RoundStatus;
  winners: string[];
  price: number | null;
  reason: string | null;
  /** The opening request's event time (ms); null when the request is older than what the view read. */
  openedAt: number | null;
  /** The outcome's event time (ms). */
  decidedAt: number | null;
  latencyMs: number | null;
  /** Bids or votes seen for the round (distinct event ids), counted or not. */
  answers: number;
}

export interface AgentRow {
  agentId: string;
  role: string;
  capabilities: string[];
  /** The latest lifecycle state (starting, running, stopping, stopped, failed, …), null before any. */
  state: string | null;
  health: Health;
  healthReason: string;
  /** The last heartbeat's event time (ms). */
  lastHeartbeat: number | null;
  memoryRssBytes: number | null;
  consumerLag: number | null;
  instanceId: string | null;
  host: string | null;
}

export interface VariableRow {
  variableId: string;
  value: unknown;
  version: number;
  updatedAt: number | null;
}

export interface StudySummary {
  studyId: string;
  name: string | null;
  searcher: string;
  /** Trials proposed. */
  trials: number;
  /** Trials complete, pruned or failed for good. */
  finished: number;
  completed: boolean;
  /** The best trial's values (the first of the Pareto front for several objectives), null before one completes. */
  best: number[] | null;
}

export interface DeadLetterRow {
  /** When it was dead-lettered (ms). */
  at: number;
  /** Where the record that could not be taken is: its topic, partition and offset. */
  topic: string;
  partition: number;
  offset: number;
  reasonCode: string;
  reason: string;
}

export interface DeadLetterCount {
  topic: string;
  reasonCode: string;
  count: number;
}

export interface DeadLetters {
  counts: DeadLetterCount[];
  /** Newest first. */
  latest: DeadLetterRow[];
}

export interface Overview {
  prefix: string;
  agents: number;
  rounds: number;
  variables: number;
  studies: number;
  deadLetters: number;
  /** When the view started (ms). */
  startedAt: number;
}

/** A change the view pushes to its listeners (each becomes one event on the stream). */
export type LiveEvent =
  | { type: 'round'; data: RoundSummary }
  | { type: 'agent'; data: AgentRow }
  | { type: 'variable'; data: VariableRow }
  | { type: 'study'; data: { studyId: string } }
  | { type: 'dead-letter'; data: DeadLetterRow };

export type LiveListener = (event: LiveEvent) => void;
