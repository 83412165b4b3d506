/**
 * The fault run's bidders as an agent module: five agents in one pool
 * (`mabeam agent run bench/faultAgents.ts --prefix <prefix>`), so two
 * processes running it are two replicas of one consumer group and every
 * request is answered by all five, from whichever replica owns its partition.
 *
 * Each agent's bid is a function of the round id and the agent alone, and the
 * five bids of a round all differ, so the winner of a round where every agent
 * was counted is known in advance (fault-run.ts checks it).
 */
import { createHash } from 'node:crypto';
import { defineAgent } from '../src/agents/defineAgent.ts';

export const faultAgentIds = Array.from({ length: 5 }, (_, i) => `fault-${i}`);

/** 10 + ((h + 37 i) mod 90), h from the round id: distinct for the five agents (37 i mod 90 differs for i < 5). */
export function faultBid(roundId: string, agentIndex: number): number {
  const h = createHash('sha1').update(roundId).digest().readUInt32BE(0) % 90;
  return 10 + ((h + 37 * agentIndex) % 90);
}

export default {
  pool: 'fault',
  agents: faultAgentIds.map((id, i) =>
    defineAgent({ id, role: 'worker', capabilities: ['fault'], onBidRequest: (request) => ({ amount: faultBid(request.roundId, i) }) }),
  ),
};
