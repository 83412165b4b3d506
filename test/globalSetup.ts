import type { TestProject } from 'vitest/node';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { endpointsFromEnvironment, startStack, stopStack, type StackEndpoints } from '../src/stack/index.ts';
import { readStackCredentials, type StackCredentials } from '../src/stack/credentials.ts';
import { startChromiumInstall } from './chromium.ts';

declare module 'vitest' {
  export interface ProvidedContext {
    stack: StackEndpoints;
    /**
     * A secure stack (SASL/SCRAM and ACLs, registry basic auth, Redis password), logged in as its
     * admin; undefined when MABEAM_TEST_SECURE_STACK=0 (a quick run of tests that do not need it).
     */
    secureStack: StackEndpoints | undefined;
    /** Its passwords (the registry's developer and reader logins among them). */
    secureCredentials: StackCredentials | undefined;
    /** Its state folder (its record, logs and private files). */
    secureStateDir: string | undefined;
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
  const log = createLogger({ level: process.env['MABEAM_LOG_LEVEL'] ?? 'info', name: 'test-stack' });
  const fromEnv = endpointsFromEnvironment();
  // The secure stack is always the embedded one, started beside the plain one.
  const [plain, secure] = await Promise.all([
    fromEnv ? undefined : startStack({ name: 'test', ephemeral: true }, log),
    process.env['MABEAM_TEST_SECURE_STACK'] === '0' ? undefined : startStack({ name: 'test-secure', ephemeral: true, secure: true }, log),
  ]);
  if (plain) process.stderr.write(`test stack up in ${plain.report.timings['total']} ms: ${JSON.stringify(plain.state.endpoints)}\n`);
  if (secure) process.stderr.write(`secure test stack up in ${secure.report.timings['total']} ms: kafka ${secure.state.endpoints.kafkaBrokers.join(',')}, registry ${secure.state.endpoints.schemaRegistryUrl}\n`);
  project.provide('stack', fromEnv ?? plain!.state.endpoints);
  project.provide('secureStack', secure?.state.endpoints);
  project.provide('secureCredentials', secure ? await readStackCredentials(secure.state.dir) : undefined);
  project.provide('secureStateDir', secure?.state.dir);
  return async () => {
    await Promise.all([plain ? stopStack(plain.state, { timeoutMs: 10_000 }) : undefined, secure ? stopStack(secure.state, { timeoutMs: 10_000 }) : undefined]);
  };
}
