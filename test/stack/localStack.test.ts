import { mkdtemp, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { describe, expect, inject, it } from 'vitest';
import { MabeamError } from '../../src/errors.ts';
import { createKafka } from '../../src/kafka/client.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { findJava } from '../../src/stack/java.ts';
import { resolveStackOptions, stackStatus, startStack, stopStack, type StackState } from '../../src/stack/index.ts';
import { isAlive } from '../../src/stack/processes.ts';

async function answers(state: StackState): Promise<void> {
  const admin = createKafka({ brokers: state.endpoints.kafkaBrokers, clientId: 'stack-test', logger: silentLogger() }).admin();
  await admin.connect();
  expect((await admin.describeCluster()).brokers).toHaveLength(1);
  await admin.disconnect();
  expect((await fetch(`${state.endpoints.schemaRegistryUrl}/subjects`)).status).toBe(200);
  const redis = new Redis(state.endpoints.redisUrl);
  expect(await redis.ping()).toBe('PONG');
  redis.disconnect();
}

const pids = (state: StackState): number[] => state.services.flatMap((s) => [s.pid, s.watchdogPid]).filter((p): p is number => p !== undefined);

describe('local stack', () => {
  it('starts with an empty cache, is reused while running, stops clean, and starts warm from the cache', { timeout: 240_000 }, async () => {
    const cacheDir = await mkdtemp(join(tmpdir(), 'mabeam-cache-'));
    try {
      const cold = await startStack({ name: 'cold', ephemeral: true, cacheDir });
      let stopped = false;
      try {
        expect(cold.report).toMatchObject({ reused: false, fetched: { kafka: true, registry: true } });
        expect(cold.state.services.map((s) => [s.name, s.origin]).sort()).toEqual([
          ['kafka', 'started'],
          ['redis', 'started'],
          ['registry', 'started'],
        ]);
        await answers(cold.state);

        const again = await startStack({ name: 'cold', ephemeral: true, cacheDir, stateDir: cold.state.dir });
        expect(again.report.reused).toBe(true);
        expect(again.state.endpoints).toEqual(cold.state.endpoints);
        const status = await stackStatus({ name: 'cold', ephemeral: true, stateDir: cold.state.dir });
        expect(status.services.map((s) => s.running)).toEqual([true, true, true]);

        await stopStack(cold.state);
        stopped = true;
        expect(pids(cold.state).filter(isAlive)).toEqual([]);
        await expect(stat(cold.state.dir)).rejects.toThrow(/ENOENT/);
      } finally {
        if (!stopped) await stopStack(cold.state);
      }

      const warm = await startStack({ name: 'warm', ephemeral: true, cacheDir });
      try {
        expect(warm.report).toMatchObject({ reused: false, fetched: { kafka: false, registry: false } });
        await answers(warm.state);
        process.stderr.write(`local stack start: cold ${cold.report.timings['total']} ms ${JSON.stringify(cold.report.timings)}, warm ${warm.report.timings['total']} ms\n`);
      } finally {
        await stopStack(warm.state);
      }
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
  });

  it("never takes the environment's addresses for its own services", { timeout: 180_000 }, async () => {
    const stack = inject('stack');
    const env = { ...process.env, KAFKA_BROKERS: stack.kafkaBrokers.join(','), SCHEMA_REGISTRY_URL: stack.schemaRegistryUrl, REDIS_URL: stack.redisUrl };
    const { state } = await startStack({ name: 'beside-env', ephemeral: true, env });
    try {
      expect(state.services.map((s) => [s.name, s.origin])).toEqual([
        ['kafka', 'started'],
        ['registry', 'started'],
        ['redis', 'started'],
      ]);
      expect(pids(state).every(isAlive)).toBe(true);
      expect(state.endpoints.kafkaBrokers).not.toEqual(stack.kafkaBrokers);
      expect(state.endpoints.schemaRegistryUrl).not.toBe(stack.schemaRegistryUrl);
      await answers(state);
    } finally {
      await stopStack(state);
    }
  });

  it('says what is wrong with bad options and a missing Java', async () => {
    expect(() => resolveStackOptions({ kafkaPort: 5000, registryPort: 5000 })).toThrow(/kafkaPort, kafkaControllerPort, registryPort and redisPort must differ/);
    expect(() => resolveStackOptions({ name: 'a b' })).toThrow(/name: letters, digits/);
    const error = await findJava({ minMajor: 21, explicitHome: '/nonexistent/jdk', purpose: 'Apicurio Registry' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MabeamError);
    expect((error as MabeamError).code).toBe('STACK_DEPENDENCY_MISSING');
    expect((error as MabeamError).message).toBe('Apicurio Registry needs Java 21+, but /nonexistent/jdk has no working bin/java.');
  });
});

describe('KRaft cluster ids', () => {
  it('never start with a dash (a command line would take them for an option)', async () => {
    const { newClusterId } = await import('../../src/stack/kafka.ts');
    const ids = Array.from({ length: 2000 }, newClusterId);
    expect(ids.filter((id) => id.startsWith('-'))).toEqual([]);
    expect(ids.every((id) => /^[A-Za-z0-9_-]{22}$/.test(id))).toBe(true);
  });
});
