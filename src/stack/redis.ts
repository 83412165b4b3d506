import { execFile } from 'node:child_process';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
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
}

/** A private Redis for this stack; it keeps nothing on disk (Redis is a read model only). */
export async function startRedisNode(o: RedisNodeOptions): Promise<SpawnedService & { logFile: string; url: string }> {
  await mkdir(o.dataDir, { recursive: true });
  const logFile = join(o.dataDir, 'redis.log');
  const service = await spawnService({
    command: o.binary,
    args: ['--port', String(o.port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no', '--dir', o.dataDir],
    logFile,
    ...(o.ownerPid === undefined ? {} : { ownerPid: o.ownerPid }),
  });
  const url = `redis://127.0.0.1:${o.port}`;
  await waitForRedis(url, o.startTimeoutMs, service.pid, logFile);
  return { ...service, logFile, url };
}

export async function waitForRedis(url: string, timeoutMs: number, pid?: number, logFile?: string): Promise<void> {
  await waitUntilReady({
    what: `Redis at ${url}`,
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
