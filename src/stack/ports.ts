import { createServer } from 'node:net';
import { describeError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';

/**
 * Asks the kernel for a free loopback port, preferring `preferred` when it is
 * free. `avoid` holds ports already chosen for the same service but not yet
 * bound, which the kernel would otherwise happily hand out again.
 */
export async function freePort(preferred?: number, avoid: readonly number[] = []): Promise<number> {
  if (preferred !== undefined && !avoid.includes(preferred) && (await isFree(preferred))) return preferred;
  for (;;) {
    const port = await listenOn(0);
    if (!avoid.includes(port)) return port;
  }
}

export async function isFree(port: number): Promise<boolean> {
  try {
    await listenOn(port);
    return true;
  } catch {
    return false;
  }
}

function listenOn(port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => {
      const address = server.address();
      const chosen = typeof address === 'object' && address ? address.port : port;
      server.close(() => resolve(chosen));
    });
  });
}

/**
 * A port found free can be taken before the service binds it: other
 * processes' outgoing connections draw on the same range. A service that
 * fails only because a port it was given is in use starts again on newly
 * chosen ports, up to three times; ports the user set are never changed.
 */
export async function onFreshPorts<T>(service: string, portsFixed: boolean, log: Logger, start: (retry: boolean) => Promise<T>): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    try {
      return await start(attempt > 1);
    } catch (error) {
      if (portsFixed || attempt >= 3 || !/Address already in use|BindException/i.test(describeError(error))) throw error;
      log.warn({ service, attempt }, 'a port chosen for the service was taken before it could bind it; starting it again on new ports');
    }
  }
}
