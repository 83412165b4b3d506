import { type OperatorFunction, distinctUntilChanged, filter, groupBy, map, mergeMap, scan } from 'rxjs';

/**
 * alive        — heartbeats on time, consumer lag under the threshold
 * lagging      — heartbeats on time, but behind its input by more than the threshold
 * unresponsive — heartbeats overdue (more than `unresponsiveAfter` intervals)
 * dead         — no heartbeat for `deadAfter` intervals, or overdue while its
 *                consumer group has no members
 */
export type Health = 'alive' | 'lagging' | 'unresponsive' | 'dead';

export interface HealthPolicy {
  lagThreshold: number;
  unresponsiveAfter: number;
  deadAfter: number;
}

export const defaultHealthPolicy: HealthPolicy = Object.freeze({ lagThreshold: 1_000, unresponsiveAfter: 2, deadAfter: 5 });

export interface LastHeartbeat {
  eventTime: number;
  intervalMs: number;
  consumerLag: number;
}

export interface HealthInputs {
  now: number;
  heartbeat?: LastHeartbeat;
  /** Members of the agent's consumer group (describeGroups), when known. */
  groupMembers?: number;
}

export interface HealthAssessment {
  health: Health;
  reason: string;
}

export function assessHealth(inputs: HealthInputs, policy: HealthPolicy = defaultHealthPolicy): HealthAssessment {
  const hb = inputs.heartbeat;
  if (!hb) {
    return inputs.groupMembers && inputs.groupMembers > 0
      ? { health: 'unresponsive', reason: 'in its consumer group but no heartbeat yet' }
      : { health: 'dead', reason: 'no heartbeat and no consumer group member' };
  }
  const overdue = (inputs.now - hb.eventTime) / hb.intervalMs;
  const age = `last heartbeat ${Math.round(inputs.now - hb.eventTime)} ms ago`;
  if (overdue > policy.deadAfter) return { health: 'dead', reason: `${age} (${policy.deadAfter} intervals)` };
  if (overdue > policy.unresponsiveAfter) {
    if (inputs.groupMembers === 0) return { health: 'dead', reason: `${age} and its consumer group is empty` };
    return { health: 'unresponsive', reason: `${age} (${policy.unresponsiveAfter} intervals)` };
  }
  if (hb.consumerLag > policy.lagThreshold) return { health: 'lagging', reason: `${hb.consumerLag} messages behind (threshold ${policy.lagThreshold})` };
  return { health: 'alive', reason: age };
}

export type HealthSignal =
  | { kind: 'heartbeat'; agentId: string; heartbeat: LastHeartbeat }
  | { kind: 'group'; agentId: string; members: number }
  | { kind: 'tick'; agentId: string; now: number };

export interface HealthChange extends HealthAssessment {
  agentId: string;
  at: number;
}

/**
 * Health of each agent from its signals, emitted when it changes. Time only
 * enters through `tick` signals (and heartbeats' own times), so the same
 * signals always give the same health.
 */
export function trackHealth(policy: HealthPolicy = defaultHealthPolicy): OperatorFunction<HealthSignal, HealthChange> {
  return (signals) =>
    signals.pipe(
      groupBy((s) => s.agentId),
      mergeMap((one) =>
        one.pipe(
          scan(
            (state: { inputs: HealthInputs; changed: boolean }, s: HealthSignal) => {
              const inputs = { ...state.inputs };
              if (s.kind === 'heartbeat') {
                inputs.heartbeat = s.heartbeat;
                inputs.now = Math.max(inputs.now, s.heartbeat.eventTime);
              } else if (s.kind === 'group') inputs.groupMembers = s.members;
              else inputs.now = Math.max(inputs.now, s.now);
              return { inputs, changed: true };
            },
            { inputs: { now: 0 }, changed: false },
          ),
          filter((state) => state.changed),
          map((state) => ({ agentId: one.key, at: state.inputs.now, ...assessHealth(state.inputs, policy) })),
          distinctUntilChanged((a, b) => a.health === b.health),
        ),
      ),
    );
}
