import { describe, expect, it } from 'vitest';
import { canTransition, lifecycleStates, lifecycleTransitions, transition } from '../../src/agents/lifecycle.ts';

describe('agent lifecycle', () => {
  it('follows registered → starting → running → stopping → stopped', () => {
    let state = transition(null, 'registered');
    for (const next of ['starting', 'running', 'stopping', 'stopped'] as const) state = transition(state, next);
    expect(state).toBe('stopped');
  });

  it('restarts from failed and stopped, and hands over from migrating', () => {
    expect(transition('failed', 'starting')).toBe('starting');
    expect(transition('stopped', 'starting')).toBe('starting');
    expect(transition('running', 'migrating')).toBe('migrating');
    expect(transition('migrating', 'stopped')).toBe('stopped');
  });

  it('refuses illegal moves with a typed error that says what is allowed', () => {
    expect(() => transition('stopped', 'running')).toThrow('An agent cannot go from stopped to running; from stopped it can go to starting.');
    expect(() => transition(null, 'running')).toThrowError(expect.objectContaining({ code: 'ILLEGAL_TRANSITION' }));
    expect(canTransition('registered', 'migrating')).toBe(false);
  });

  it('names every state in the table, and only known states', () => {
    expect(Object.keys(lifecycleTransitions).sort()).toEqual(['none', ...lifecycleStates].sort());
    for (const targets of Object.values(lifecycleTransitions)) for (const t of targets) expect(lifecycleStates).toContain(t);
  });
});
