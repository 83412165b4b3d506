import type { TestProject } from 'vitest/node';
import { silenceKafkajsTimerWarnings } from '../src/kafka/client.ts';
import { createLogger } from '../src/log/logger.ts';
import { endpointsFromEnvironment, startStack, stopStack, type StackEndpoints } from '../src/stack/index.ts';
import { readStackCredentials, type StackCredentials } from '../src/stack/credentials.ts';
import { chooseStackKind, containerImages, startContainerStack } from '../src/stack/containers.ts';
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
 * otherwise, where a Docker engine answers (or MABEAM_TESTCONTAINERS=1; =0
 * never), Kafka, Confluent Schema Registry and Redis start as containers with
 * testcontainers; elsewhere an ephemeral local stack starts here. Either is
 * stopped at the end — and, should this process be killed, by testcontainers'
 * reaper or the watchdog of each embedded service.
 * The browser tests' Chromium, when missing, is installed in the background
 * while the other tests run (those tests wait for it, and report a failure).
 */
export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  silenceKafkajsTimerWarnings();
  project.provide('runId', process.pid);
  await startChromiumInstall(process.pid);
  const log = createLogger({ level: process.env['MABEAM_LOG_LEVEL'] ?? 'info', name: 'test-stack' });
  const fromEnv = endpointsFromEnvironment();
  const kind = fromEnv ? undefined : await chooseStackKind();
  const startedAt = Date.now();
  // The secure stack is always the embedded one, started beside the plain one.
  const [plain, containers, secure] = await Promise.all([
    kind === 'embedded' ? startStack({ name: 'test', ephemeral: true }, log) : undefined,
    kind === 'containers' ? startContainerStack({}, log) : undefined,
    process.env['MABEAM_TEST_SECURE_STACK'] === '0' ? undefined : startStack({ name: 'test-secure', ephemeral: true, secure: true }, log),
  ]);
  if (plain) process.stderr.write(`test stack (embedded) up in ${plain.report.timings['total']} ms: ${JSON.stringify(plain.state.endpoints)}\n`);
  if (containers) {
    const images = Object.values(containerImages).join(', ');
    process.stderr.write(`test stack (testcontainers: ${images}) up in ${Date.now() - startedAt} ms: ${JSON.stringify(containers.endpoints)}\n`);
  }
  if (secure) process.stderr.write(`secure test stack up in ${secure.report.timings['total']} ms: kafka ${secure.state.endpoints.kafkaBrokers.join(',')}, registry ${secure.state.endpoints.schemaRegistryUrl}\n`);
  project.provide('stack', fromEnv ?? containers?.endpoints ?? plain!.state.endpoints);
  project.provide('secureStack', secure?.state.endpoints);
  project.provide('secureCredentials', secure ? await readStackCredentials(secure.state.dir) : undefined);
  project.provide('secureStateDir', secure?.state.dir);
  return async () => {
    await Promise.all([
      plain ? stopStack(plain.state, { timeoutMs: 10_000 }) : undefined,
      containers?.stop(),
      secure ? stopStack(secure.state, { timeoutMs: 10_000 }) : undefined,
    ]);
  };
}
