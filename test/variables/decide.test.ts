import { describe, expect, it } from 'vitest';
import type { VariableChangeRequested } from '../../src/events/types.ts';
import type { LoggedApproval } from '../../src/variables/approvals.ts';
import { decideChange } from '../../src/variables/decide.ts';
import { agentSelection, typedVariable } from '../../src/variables/model.ts';
import type { VariableRecord } from '../../src/variables/types.ts';

/**
 * The consensus gate as a pure rule: a change by consensus applies only when
 * the logged round was a consensus whose electorate was exactly the
 * variable's affected agents, decided "yes" on exactly this change.
 */
const team = agentSelection('active-team', { agents: ['a', 'b', 'c'], initial: ['a'] });
const current: VariableRecord = { id: 'active-team', definition: team, value: ['a'], version: 3, eventTime: 1_000, writerId: 'w' };

const request = (over: Partial<VariableChangeRequested> = {}): VariableChangeRequested => ({
  envelope: { eventId: 'req-1', eventType: 'VariableChangeRequested', correlationId: 'active-team', causationId: null, producerId: 'client', eventTime: 2_000 },
  variableId: 'active-team',
  value: JSON.stringify(['a', 'b']),
  expectedVersion: 3,
  requesterId: 'client',
  cause: 'consensus',
  trigger: JSON.stringify({ roundId: 'r1' }),
  definition: null,
  ...over,
});

const approval = (over: Partial<LoggedApproval> = {}): LoggedApproval => ({
  roundId: 'r1',
  protocol: 'majority',
  kind: 'consensus',
  eligible: ['c', 'a', 'b'],
  status: 'decided',
  value: JSON.stringify('yes'),
  subject: { variableId: 'active-team', value: ['a', 'b'], version: 3 },
  ...over,
});

const refusal = (a: LoggedApproval, record: VariableRecord = current) => {
  const d = decideChange(request(), record, a);
  return d.type === 'rejected' ? [d.reasonCode, d.reason] : [d.type];
};

describe('the consensus gate', () => {
  it('applies a "yes" of a consensus among exactly the affected agents, in any order', () => {
    expect(decideChange(request(), current, approval())).toMatchObject({ type: 'changed', record: { version: 4, value: ['a', 'b'] } });
    // The electorate is a set: a voter named twice is still that voter.
    expect(decideChange(request(), current, approval({ eligible: ['a', 'b', 'c', 'a'] }))).toMatchObject({ type: 'changed' });
    expect(decideChange(request(), current, approval({ protocol: 'unanimous' }))).toMatchObject({ type: 'changed' });
  });

  it('refuses a round decided by an auction, or whose outcome does not say its kind', () => {
    expect(refusal(approval({ protocol: 'first-price', kind: 'auction' }))).toEqual([
      'CONSENSUS_REFUSED', 'Round r1 (first-price) cannot approve a change of active-team: it was an auction, not a consensus.',
    ]);
    expect(refusal(approval({ kind: null }))).toEqual([
      'CONSENSUS_REFUSED', 'Round r1 (majority) cannot approve a change of active-team: its outcome does not say it was a consensus.',
    ]);
  });

  it('refuses voters of the requester\'s choosing: says who was missing and who was not affected', () => {
    expect(refusal(approval({ eligible: ['a', 'b'] }))).toEqual([
      'CONSENSUS_REFUSED', 'Round r1 (majority) had another electorate than the affected agents of active-team ("a", "b", "c"): missing "c".',
    ]);
    expect(refusal(approval({ eligible: ['a', 'b', 'c', 'mallory'] }))).toEqual([
      'CONSENSUS_REFUSED', 'Round r1 (majority) had another electorate than the affected agents of active-team ("a", "b", "c"): not affected "mallory".',
    ]);
    expect(refusal(approval({ eligible: ['a', 'x', 'y'] }))).toEqual([
      'CONSENSUS_REFUSED', 'Round r1 (majority) had another electorate than the affected agents of active-team ("a", "b", "c"): missing "b", "c"; not affected "x", "y".',
    ]);
  });

  it('refuses an open electorate, and any consensus change of a variable without affected agents', () => {
    expect(refusal(approval({ eligible: [] }))).toEqual([
      'CONSENSUS_REFUSED', 'Round r1 (majority) was open to any voter; a change of active-team needs its affected agents ("a", "b", "c") as the electorate.',
    ]);
    const model = typedVariable('model', { kind: 'choice', options: ['small', 'large'] }, 'small');
    const record: VariableRecord = { id: 'model', definition: model, value: 'small', version: 1, eventTime: 1_000, writerId: 'w' };
    const d = decideChange(request({ variableId: 'model', value: JSON.stringify('large'), expectedVersion: 1 }), record, approval({ eligible: ['a'], subject: { variableId: 'model', value: 'large', version: 1 } }));
    expect(d).toEqual({ type: 'rejected', variableId: 'model', reasonCode: 'CONSENSUS_REFUSED', reason: 'model has no affected agents, so no consensus round can approve a change of it.' });
  });

  it('the right electorate is not enough: the round must have said "yes" to exactly this change', () => {
    expect(refusal(approval({ status: 'no-decision', value: null }))).toEqual(['CONSENSUS_REFUSED', 'The consensus round r1 did not approve the change (no-decision).']);
    expect(refusal(approval({ value: JSON.stringify('no') }))).toEqual(['CONSENSUS_REFUSED', 'The consensus round r1 did not approve the change (decided, "no").']);
    expect(refusal(approval({ subject: { variableId: 'active-team', value: ['a', 'b'], version: 2 } }))[1]).toContain('approved another change');
    expect(refusal(approval({ roundId: 'r2' }))).toEqual(['CONSENSUS_REFUSED', 'The log holds no outcome of consensus round r1.']);
    expect(decideChange(request(), current, undefined)).toMatchObject({ type: 'rejected', reasonCode: 'CONSENSUS_REFUSED' });
  });

  it('a round whose log holds contradictory outcomes approves nothing', () => {
    expect(refusal(approval({ contradicted: true }))).toEqual(['CONSENSUS_REFUSED', expect.stringMatching(/contradictory outcomes of round r1/)]);
  });

  it('a change that does not claim consensus is not gated', () => {
    expect(decideChange(request({ cause: 'set', trigger: null }), current, undefined)).toMatchObject({ type: 'changed', record: { version: 4 } });
  });
});
