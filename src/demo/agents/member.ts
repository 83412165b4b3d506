/**
 * The demo's agents, one module for all of them: DEMO_AGENT (ada, bo, cy or
 * dee) picks who this process is. Each has its capabilities and what a GPU
 * hour is worth to it, and it
 *
 * - bids its valuation in sealed-bid auctions, and in an English auction
 *   the asking price while that is within its valuation (else it passes);
 * - votes on a variable change it is affected by: yes when the proposed
 *   GPU price is within its valuation;
 * - evaluates trials of team studies (the team's quality: skills, how pairs
 *   work together, a cost per member);
 * - runs plan steps of its capabilities.
 *
 * dee deliberates: a request for 8 GPU hours or more takes it 3 s, long
 * enough to kill a process in the middle of a round.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { defineAgent } from '../../agents/index.ts';
import { profileOf, teamQuality } from './profiles.ts';

const profile = profileOf(process.env['DEMO_AGENT']);

const parse = (json: string | null): Record<string, unknown> => {
  try {
    const value: unknown = json === null ? null : JSON.parse(json);
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : {};
  } catch {
    return {};
  }
};

export default defineAgent({
  id: profile.id,
  role: 'worker',
  capabilities: profile.capabilities,
  resources: { memoryMb: 256 },
  async onBidRequest(request) {
    const item = parse(request.item);
    if (profile.deliberateMs > 0 && Number(item['quantity'] ?? 0) >= 8) await sleep(profile.deliberateMs);
    if (request.protocol !== 'english') return { amount: profile.valuation };
    // A stage asks for `asking`; the first stage starts at the start price (else the reserve).
    const parameters = parse(request.parameters);
    const asking = Number(parameters['asking'] ?? parameters['startPrice'] ?? request.reservePrice ?? 0);
    return asking <= profile.valuation ? { amount: asking } : { amount: asking, attributes: { pass: true } };
  },
  onProposal(proposal) {
    const subject = parse(proposal.subject);
    const price = Number(subject['value']);
    return Number.isFinite(price) && price <= profile.valuation
      ? { choice: 'yes', reason: `${price} is within my ${profile.valuation}` }
      : { choice: 'no', reason: `${String(subject['value'])} is over my ${profile.valuation}` };
  },
  onTrial(trial) {
    const team = trial.params['team'];
    return teamQuality(Array.isArray(team) ? team.map(String) : []);
  },
  async onStep(step, { signal }) {
    await sleep(200, undefined, { signal }).catch(() => undefined);
    return { by: profile.id, step: step.stepId, inputs: step.inputs };
  },
});
