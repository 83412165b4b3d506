import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { writePrivateFile } from './credentials.ts';
import { spawnService, waitUntilReady, type SpawnedService } from './processes.ts';

const run = promisify(execFile);

export const defaultRedisUrl = 'redis://127.0.0.1:6379';

export async function findRedisServer(): Promise<string | undefined> {
  try {
    await run('redis-server', ['--version'], { timeout: 10_000 });
    return 'redis-server';
  } catch {
    return undefined;
  }
}

export interface RedisNodeOptions {
  binary: string;
  dataDir: string;
  port: number;
  ownerPid?: number;
  startTimeoutMs: number;
  /** A secure Redis: every client must AUTH with this password. */
  password?: string;
  /** The address it listens on (default 127.0.0.1). */
  host?: string;
}

/** A Redis URL with the password in it, as Redis clients take it: `redis://:PASSWORD@host:port`. */
export function redisUrlFor(port: number, password?: string, host = '127.0.0.1'): string {
  return password === undefined ? `redis://${host}:${port}` : `redis://:${encodeURIComponent(password)}@${host}:${port}`;
}

/** A private Redis for this stack; it keeps nothing on disk (Redis is a read model only). */
export async function startRedisNode(o: RedisNodeOptions): Promise<SpawnedService & { logFile: string; url: string }> {
  await mkdir(o.dataDir, { recursive: true });
  const logFile = join(o.dataDir, 'redis.log');
  // The password goes into a config file (mode 0600) named first, never onto the command line (`ps` shows it).
  const config = join(o.dataDir, 'redis.conf');
  if (o.password !== undefined) await writePrivateFile(config, `requirepass ${o.password}\n`);
  const service = await spawnService({
    command: o.binary,
    args: [...(o.password === undefined ? [] : [config]), '--port', String(o.port), '--bind', o.host ?? '127.0.0.1',
      // Without a password Redis takes only loopback clients (protected mode): on another address, other hosts are the point.
      ...(o.host && o.host !== '127.0.0.1' && o.password === undefined ? ['--protected-mode', 'no'] : []), '--save', '', '--appendonly', 'no', '--dir', o.dataDir],
    logFile,
    ...(o.ownerPid === undefined ? {} : { ownerPid: o.ownerPid }),
  });
  const url = redisUrlFor(o.port, undefined, o.host);
  await waitForRedis(redisUrlFor(o.port, o.password, o.host), o.startTimeoutMs, service.pid, logFile);
  return { ...service, logFile, url };
}

/** Ready means PING answers PONG (after AUTH, when the URL carries a password). */
export async function waitForRedis(url: string, timeoutMs: number, pid?: number, logFile?: string): Promise<void> {
  const shown = new URL(url);
  shown.password = '';
  await waitUntilReady({
    what: `Redis at ${shown.toString().replace(/\/$/, '')}`,
    timeoutMs,
    intervalMs: 100,
    ...(pid === undefined ? {} : { pid }),
    ...(logFile === undefined ? {} : { logFile }),
    probe: async () => {
      const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1_000, commandTimeout: 1_000 });
      client.on('error', () => undefined);
      try {
        await client.connect();
        return (await client.ping()) === 'PONG';
      } finally {
        client.disconnect();
      }
    },
  });
}
