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

export interface AgentHandlers<S> {
  onBidRequest?: (request: BidRequest, context: AgentContext<S>) => Maybe<BidAnswer> | Promise<Maybe<BidAnswer>>;
  onProposal?: (proposal: Proposal, context: AgentContext<S>) => Maybe<VoteAnswer> | Promise<Maybe<VoteAnswer>>;
  onDirective?: (directive: Directive, context: AgentContext<S>) => void | Promise<void>;
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
}
