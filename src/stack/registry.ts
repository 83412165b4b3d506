import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { spawnService, waitUntilReady, type SpawnedService } from './processes.ts';

export interface RegistryNodeOptions {
  java: string;
  appDir: string;
  dataDir: string;
  port: number;
  /** Quarkus's management interface is always on (build-time); it gets its own loopback port. */
  managementPort: number;
  heap: string;
  /** In-memory storage (ephemeral stacks) instead of a file database. */
  inMemory: boolean;
  /** Appears on the command line so a pid can be told apart from a reused one. */
  marker: string;
  ownerPid?: number;
  startTimeoutMs: number;
}

/** The Confluent-compatible API of Apicurio Registry lives under this path. */
export const ccompatPath = '/apis/ccompat/v7';

export async function startRegistryNode(o: RegistryNodeOptions): Promise<SpawnedService & { logFile: string; url: string }> {
  await mkdir(o.dataDir, { recursive: true });
  const logFile = join(o.dataDir, 'registry.log');
  const storage = o.inMemory ? [] : [`-Dapicurio.datasource.url=jdbc:h2:file:${join(o.dataDir, 'registry')}`];
  const service = await spawnService({
    command: o.java,
    args: [
      `-Xmx${o.heap}`,
      `-Dmabeam.stack=${o.marker}`,
      // A lightly loaded registry: start fast rather than peak throughput.
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      '-Dquarkus.http.host=127.0.0.1',
      `-Dquarkus.http.port=${o.port}`,
      '-Dquarkus.management.host=127.0.0.1',
      `-Dquarkus.management.port=${o.managementPort}`,
      // Every subject answers BACKWARD by default, as a Confluent registry configured so would.
      '-Dapicurio.rules.global.compatibility=BACKWARD',
      '-Dapicurio.datasource.jdbc.initial-size=2',
      '-Dquarkus.log.console.format=%d{HH:mm:ss} %-5p [%c{2.}] %s%e%n',
      ...storage,
      '-jar',
      join(o.appDir, 'quarkus-run.jar'),
    ],
    cwd: o.dataDir,
    logFile,
    ...(o.ownerPid === undefined ? {} : { ownerPid: o.ownerPid }),
  });
  const url = `http://127.0.0.1:${o.port}${ccompatPath}`;
  await waitForRegistry(url, o.startTimeoutMs, service.pid, logFile);
  return { ...service, logFile, url };
}

/** Ready means `GET /subjects` answers 200. */
export async function waitForRegistry(url: string, timeoutMs: number, pid?: number, logFile?: string): Promise<void> {
  await waitUntilReady({
    what: `The schema registry at ${url}`,
    timeoutMs,
    ...(pid === undefined ? {} : { pid }),
    ...(logFile === undefined ? {} : { logFile }),
    probe: async () => (await fetch(`${url}/subjects`, { signal: AbortSignal.timeout(2_000) })).ok,
  });
}
