// An agent in a few lines: it offers "gpu", bids on requests that need it,
// votes on proposals it is named in, and takes directives addressed to it.
// Run it:   bin/mabeam agent run examples/agents/gpu-bidder.ts
// Or supervised, restarted if it dies:   bin/mabeam supervise examples/supervisor.json
import { defineAgent } from '../../src/agents/index.ts';

export default defineAgent<{ price: number; handled: number }>({
  id: process.env['AGENT_ID'] ?? 'gpu-bidder',
  role: 'worker',
  capabilities: ['gpu', 'inference'],
  resources: { memoryMb: 512 },
  initialState: () => ({ price: 10, handled: 0 }),
  onBidRequest: (request, { state }) => {
    state.handled += 1;
    if (request.reservePrice !== null && state.price < request.reservePrice) return null; // abstain
    return { amount: state.price, attributes: { handled: state.handled } };
  },
  onProposal: (proposal) => ({ choice: proposal.options[0] ?? 'yes', reason: 'first option' }),
  onDirective: (directive, { state, logger }) => {
    if (directive.action === 'adjust-parameters') state.price = JSON.parse(directive.parameters ?? '{}').price ?? state.price;
    logger.info({ action: directive.action }, 'directive applied');
  },
});
