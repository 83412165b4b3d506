import { MabeamError } from '../errors.ts';
import type { LifecycleState } from '../events/types.ts';

/**
 * The lifecycle of an agent instance as a table. `null` is "not yet known".
 *
 *   registered → starting → running → stopping → stopped
 *   failed and migrating can be entered from the active states (and failed
 *   from nothing: a process that dies before it could report anything); a
 *   failed or stopped instance can be started again (that is a restart); a
 *   migrating one hands over to the instance that resumes it.
 */
export const lifecycleTransitions: Readonly<Record<LifecycleState | 'none', readonly LifecycleState[]>> = Object.freeze({
  none: ['registered', 'starting', 'failed'],
  registered: ['starting', 'stopped'],
  starting: ['running', 'stopping', 'failed'],
  running: ['stopping', 'failed', 'migrating'],
  stopping: ['stopped', 'failed'],
  stopped: ['starting'],
  failed: ['starting', 'stopped'],
  migrating: ['stopped', 'failed'],
});

export const lifecycleStates: readonly LifecycleState[] = ['registered', 'starting', 'running', 'stopping', 'stopped', 'failed', 'migrating'];

export function canTransition(from: LifecycleState | null, to: LifecycleState): boolean {
  return lifecycleTransitions[from ?? 'none'].includes(to);
}

/** Returns the new state, or throws ILLEGAL_TRANSITION naming the moves that are allowed. */
export function transition(from: LifecycleState | null, to: LifecycleState): LifecycleState {
  if (!canTransition(from, to)) {
    const allowed = lifecycleTransitions[from ?? 'none'];
    throw new MabeamError('ILLEGAL_TRANSITION', `An agent cannot go from ${from ?? '(new)'} to ${to}; from ${from ?? '(new)'} it can go to ${allowed.join(', ')}.`, {
      details: { from, to },
    });
  }
  return to;
}
