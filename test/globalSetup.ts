import type { TestProject } from 'vitest/node';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { endpointsFromEnvironment, startStack, stopStack, type StackEndpoints } from '../src/stack/index.ts';
import { startChromiumInstall } from './chromium.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackEndpoints;
    /** Names this run's Chromium install, if one was started (see test/chromium.ts). */
    runId: number;
  }
}

/**
 * One stack for the whole run. With KAFKA_BROKERS, SCHEMA_REGISTRY_URL and
 * REDIS_URL all set (e.g. docker compose), those are used as they are;
 * otherwise an ephemeral local stack starts here and is stopped at the end —
 * and, should this process be killed, by the watchdog of each service.
 * The browser tests' Chromium, when missing, is installed in the background
 * while the other tests run (those tests wait for it, and report a failure).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  silenceKafkajsTimerWarnings();
  project.provide('runId', process.pid);
  await startChromiumInstall(process.pid);
  const fromEnv = endpointsFromEnvironment();
  if (fromEnv) {
    project.provide('stack', fromEnv);
    return async () => undefined;
  }
  const log = createLogger({ level: process.env['MABEAM_LOG_LEVEL'] ?? 'info', name: 'test-stack' });
  const { state, report } = await startStack({ name: 'test', ephemeral: true }, log);
  process.stderr.write(`test stack up in ${report.timings['total']} ms: ${JSON.stringify(state.endpoints)}\n`);
  project.provide('stack', state.endpoints);
  return async () => {
    await stopStack(state, { timeoutMs: 10_000 });
  };
}
