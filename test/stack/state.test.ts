import { describe, expect, it } from 'vitest';
import { isRunningState, recordedPort, stoppedState } from '../../src/stack/state.ts';
import type { StackState } from '../../src/stack/types.ts';

const state = (services: StackState['services']): StackState => ({
  name: 's',
  dir: '/tmp/s',
  ephemeral: false,
  startedAt: '2026-01-01T00:00:00.000Z',
  endpoints: { kafkaBrokers: ['127.0.0.1:40001'], schemaRegistryUrl: 'http://127.0.0.1:40003/apis/ccompat/v7', redisUrl: 'redis://127.0.0.1:40005' },
  services,
});

describe('the stack record', () => {
  it('gives back each recorded port by role, and reads the client port from the address of older records', () => {
    const s = state([
      { name: 'kafka', origin: 'started', address: '127.0.0.1:40001', ports: { client: 40001, controller: 40002 }, pid: 10 },
      // Older versions wrote the environment's addresses as the stack's: their port is still where clients point.
      { name: 'registry', origin: 'environment', address: 'http://127.0.0.1:40003/apis/ccompat/v7' },
      { name: 'redis', origin: 'default', address: 'redis://127.0.0.1:6379' },
    ]);
    expect(recordedPort(s, 'kafka', 'client')).toBe(40001);
    expect(recordedPort(s, 'kafka', 'controller')).toBe(40002);
    expect(recordedPort(s, 'registry', 'client')).toBe(40003);
    expect(recordedPort(s, 'registry', 'management')).toBeUndefined();
    // The machine's own Redis was never placed by the stack.
    expect(recordedPort(s, 'redis', 'client')).toBeUndefined();
    expect(recordedPort(undefined, 'kafka', 'client')).toBeUndefined();
  });

  it('a stopped record keeps addresses and ports, forgets the processes, and does not count as running', () => {
    const running = state([{ name: 'redis', origin: 'started', address: 'redis://127.0.0.1:40005', ports: { client: 40005 }, pid: 12, watchdogPid: 13, marker: 'm' }]);
    const stopped = stoppedState(running, new Date('2026-01-02T00:00:00.000Z'));
    expect(stopped.stoppedAt).toBe('2026-01-02T00:00:00.000Z');
    expect(stopped.services).toEqual([{ name: 'redis', origin: 'started', address: 'redis://127.0.0.1:40005', ports: { client: 40005 }, marker: 'm' }]);
    expect(stopped.endpoints).toEqual(running.endpoints);
    expect([isRunningState(running), isRunningState(stopped), isRunningState(undefined)]).toEqual([true, false, false]);
    expect(recordedPort(stopped, 'redis', 'client')).toBe(40005);
  });
});
