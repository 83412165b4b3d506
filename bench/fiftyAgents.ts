/**
 * The benchmark's 50 agents as an agent module, for running them in a process of
 * their own: `mabeam agent run bench/fiftyAgents.ts --pool bench --prefix <prefix>`.
 * Agent i bids 10 + (37 i mod 50) and votes "no" when i is a multiple of 3.
 */
import { defineAgent } from '../src/agents/defineAgent.ts';

export const fiftyAgentIds = Array.from({ length: 50 }, (_, i) => `agent-${i}`);

export default {
  pool: 'bench',
  agents: fiftyAgentIds.map((id, i) =>
    defineAgent({ id, role: 'worker', capabilities: ['bench'], onBidRequest: () => ({ amount: 10 + ((i * 37) % 50) }), onProposal: () => ({ choice: i % 3 === 0 ? 'no' : 'yes' }) }),
  ),
};
