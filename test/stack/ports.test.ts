import { describe, expect, it } from 'vitest';
import { silentLogger } from '../../src/log/logger.ts';
import { onFreshPorts } from '../../src/stack/ports.ts';

const taken = new Error('Unable to start the management interface on 127.0.0.1:44995: java.net.BindException: Address already in use');

describe('starting a service on fresh ports', () => {
  it('starts again on new ports when a chosen port was taken before the service could bind it', async () => {
    const calls: boolean[] = [];
    const started = await onFreshPorts('registry', false, silentLogger(), async (retry) => {
      calls.push(retry);
      if (calls.length === 1) throw taken;
      return 'up';
    });
    expect(started).toBe('up');
    expect(calls).toEqual([false, true]);
  });

  it('gives up after three attempts, and never retries ports the user set or other failures', async () => {
    let attempts = 0;
    await expect(onFreshPorts('kafka', false, silentLogger(), async () => { attempts += 1; throw taken; })).rejects.toBe(taken);
    expect(attempts).toBe(3);
    attempts = 0;
    await expect(onFreshPorts('kafka', true, silentLogger(), async () => { attempts += 1; throw taken; })).rejects.toBe(taken);
    expect(attempts).toBe(1);
    const other = new Error('java.lang.OutOfMemoryError');
    attempts = 0;
    await expect(onFreshPorts('kafka', false, silentLogger(), async () => { attempts += 1; throw other; })).rejects.toBe(other);
    expect(attempts).toBe(1);
  });
});
