import { describe, expect, it } from 'vitest';
import { defineAgent } from '../../src/agents/defineAgent.ts';
import { addressedTo, eligibleForBidRequest, eligibleForProposal, eligibleForStep } from '../../src/agents/eligibility.ts';

const bidder = defineAgent({ id: 'gpu-1', role: 'worker', capabilities: ['gpu', 'plan', 'gpu'], onBidRequest: () => ({ amount: 1 }) });

describe('agent definitions', () => {
  it('are checked once, naming every wrong field', () => {
    expect(() => defineAgent({ id: 'bad id', role: '', capabilities: [''], onBidRequest: () => null })).toThrow(
      'Invalid agent "bad id": id: letters, digits, ".", "_" or "-", starting with a letter or digit, at most 128; role: must not be empty; capabilities.0: a capability must not be empty',
    );
    expect(() => defineAgent({ id: 'a', role: 'r', capabilities: [], resources: { memoryMb: -1 } })).toThrowError(expect.objectContaining({ code: 'INVALID_AGENT' }));
    expect(bidder.capabilities).toEqual(['gpu', 'plan']);
    expect(Object.isFrozen(bidder)).toBe(true);
  });
});

describe('eligibility', () => {
  it('gives a bid request to bidders with every required capability, among the named ones', () => {
    expect(eligibleForBidRequest(bidder, { eligibleAgents: [], requiredCapabilities: ['gpu'] })).toBe(true);
    expect(eligibleForBidRequest(bidder, { eligibleAgents: [], requiredCapabilities: ['gpu', 'code'] })).toBe(false);
    expect(eligibleForBidRequest(bidder, { eligibleAgents: ['other'], requiredCapabilities: [] })).toBe(false);
    expect(eligibleForBidRequest(bidder, { eligibleAgents: ['other', 'gpu-1'], requiredCapabilities: ['plan'] })).toBe(true);
    const voterOnly = defineAgent({ id: 'v', role: 'r', capabilities: ['gpu'], onProposal: () => null });
    expect(eligibleForBidRequest(voterOnly, { eligibleAgents: [], requiredCapabilities: [] })).toBe(false);
  });

  it('gives a proposal to its named voters, and a directive to the agent it names', () => {
    const voter = defineAgent({ id: 'v1', role: 'r', capabilities: [], onProposal: () => ({ choice: 'yes' }), onDirective: () => undefined });
    expect(eligibleForProposal(voter, { eligibleVoters: ['v1', 'v2'] })).toBe(true);
    expect(eligibleForProposal(voter, { eligibleVoters: ['v2'] })).toBe(false);
    expect(eligibleForProposal(voter, { eligibleVoters: [] })).toBe(true);
    expect(eligibleForProposal(bidder, { eligibleVoters: [] })).toBe(false);
    expect(addressedTo(voter, { agentId: 'v1' })).toBe(true);
    expect(addressedTo(voter, { agentId: 'v2' })).toBe(false);
  });
});

describe('agents that run steps', () => {
  it('need onStep for a step cost, and get a step auction when they have its capability, among the named ones', () => {
    expect(() => defineAgent({ id: 'w', role: 'r', capabilities: [], stepCost: () => 1 })).toThrow('Invalid agent "w": stepCost: a step cost needs onStep, the handler that runs the steps it bids for');
    const worker = defineAgent({ id: 'w1', role: 'r', capabilities: ['compute', 'gpu'], onStep: () => null, stepCost: () => 1 });
    expect(eligibleForStep(worker, { eligibleAgents: [], requiredCapabilities: [] }, { capability: 'compute' })).toBe(true);
    expect(eligibleForStep(worker, { eligibleAgents: [], requiredCapabilities: [] }, { capability: 'code' })).toBe(false);
    expect(eligibleForStep(worker, { eligibleAgents: [], requiredCapabilities: ['fpga'] }, { capability: 'compute' })).toBe(false);
    expect(eligibleForStep(worker, { eligibleAgents: ['other'], requiredCapabilities: [] }, { capability: 'compute' })).toBe(false);
    expect(eligibleForStep(worker, { eligibleAgents: ['other', 'w1'], requiredCapabilities: ['gpu'] }, { capability: 'compute' })).toBe(true);
    expect(eligibleForStep(bidder, { eligibleAgents: [], requiredCapabilities: [] }, { capability: 'gpu' })).toBe(false);
  });
});
