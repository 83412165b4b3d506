import { TestScheduler } from 'rxjs/testing';
import { describe, expect, it } from 'vitest';
import { assessHealth, trackHealth, type HealthSignal } from '../../src/agents/health.ts';

const hb = (eventTime: number, consumerLag = 0) => ({ eventTime, intervalMs: 1_000, consumerLag });

describe('health assessment', () => {
  it('reads heartbeats, lag and group membership', () => {
    expect(assessHealth({ now: 1_500, heartbeat: hb(1_000) }).health).toBe('alive');
    expect(assessHealth({ now: 1_500, heartbeat: hb(1_000, 5_000) })).toEqual({ health: 'lagging', reason: '5000 messages behind (threshold 1000)' });
    expect(assessHealth({ now: 3_500, heartbeat: hb(1_000), groupMembers: 1 })).toEqual({ health: 'unresponsive', reason: 'last heartbeat 2500 ms ago (2 intervals)' });
    expect(assessHealth({ now: 3_500, heartbeat: hb(1_000), groupMembers: 0 }).health).toBe('dead');
    expect(assessHealth({ now: 6_100, heartbeat: hb(1_000), groupMembers: 1 }).health).toBe('dead');
    expect(assessHealth({ now: 0 }).health).toBe('dead');
    expect(assessHealth({ now: 0, groupMembers: 2 }).health).toBe('unresponsive');
  });
});

describe('trackHealth operator', () => {
  it('emits each agent\'s health when it changes, driven only by its signals', () => {
    const scheduler = new TestScheduler((actual, expected) => expect(actual).toEqual(expected));
    scheduler.run(({ cold, expectObservable }) => {
      const signals: Record<string, HealthSignal> = {
        a: { kind: 'heartbeat', agentId: 'x', heartbeat: hb(1_000) },
        b: { kind: 'tick', agentId: 'x', now: 1_800 },
        c: { kind: 'tick', agentId: 'x', now: 3_600 },
        d: { kind: 'heartbeat', agentId: 'x', heartbeat: hb(3_700, 2_000) },
        e: { kind: 'heartbeat', agentId: 'y', heartbeat: hb(3_700) },
        f: { kind: 'group', agentId: 'x', members: 0 },
        g: { kind: 'tick', agentId: 'x', now: 6_000 },
      };
      const source = cold('a-b-c-d-e-f-g|', signals);
      expectObservable(source.pipe(trackHealth())).toBe('a---c-d-e---g|', {
        a: { agentId: 'x', at: 1_000, health: 'alive', reason: 'last heartbeat 0 ms ago' },
        c: { agentId: 'x', at: 3_600, health: 'unresponsive', reason: 'last heartbeat 2600 ms ago (2 intervals)' },
        d: { agentId: 'x', at: 3_700, health: 'lagging', reason: '2000 messages behind (threshold 1000)' },
        e: { agentId: 'y', at: 3_700, health: 'alive', reason: 'last heartbeat 0 ms ago' },
        g: { agentId: 'x', at: 6_000, health: 'dead', reason: 'last heartbeat 2300 ms ago and its consumer group is empty' },
      });
    });
  });
});
