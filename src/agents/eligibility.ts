import type { BidRequest, Directive, Proposal } from '../events/types.ts';

/** Only whether a handler exists matters here, not its type. */
interface Agent {
  id: string;
  capabilities: readonly string[];
  onBidRequest?: unknown;
  onProposal?: unknown;
  onDirective?: unknown;
  onStep?: unknown;
}

/**
 * Who receives what. A bid request goes to agents that have a bid handler,
 * every required capability, and — when the request names bidders — are
 * named. A proposal goes to the named voters (every agent with a proposal
 * handler when none are named). A directive goes to the agent it names.
 * A step's auction goes to agents that run steps, have the step's
 * capability and every required one, among the named ones.
 */
export function eligibleForBidRequest(agent: Agent, request: Pick<BidRequest, 'eligibleAgents' | 'requiredCapabilities'>): boolean {
  if (!agent.onBidRequest) return false;
  if (request.eligibleAgents.length > 0 && !request.eligibleAgents.includes(agent.id)) return false;
  return request.requiredCapabilities.every((c) => agent.capabilities.includes(c));
}

export function eligibleForProposal(agent: Agent, proposal: Pick<Proposal, 'eligibleVoters'>): boolean {
  if (!agent.onProposal) return false;
  return proposal.eligibleVoters.length === 0 || proposal.eligibleVoters.includes(agent.id);
}

export function addressedTo(agent: Agent, directive: Pick<Directive, 'agentId'>): boolean {
  return Boolean(agent.onDirective) && directive.agentId === agent.id;
}

export function eligibleForStep(agent: Agent, request: Pick<BidRequest, 'eligibleAgents' | 'requiredCapabilities'>, step: { capability: string }): boolean {
  if (!agent.onStep) return false;
  if (request.eligibleAgents.length > 0 && !request.eligibleAgents.includes(agent.id)) return false;
  return agent.capabilities.includes(step.capability) && request.requiredCapabilities.every((c) => agent.capabilities.includes(c));
}
