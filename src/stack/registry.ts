import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { writePrivateFile } from './credentials.ts';
import { spawnService, waitUntilReady, type SpawnedService } from './processes.ts';
import type { BasicAuth } from './types.ts';

/** The registry's users of a secure stack and their Apicurio roles. */
export const registryRoles = { admin: 'sr-admin', developer: 'sr-developer', reader: 'sr-readonly' } as const;

export type RegistryUsers = Record<keyof typeof registryRoles, string>;

export interface RegistryNodeOptions {
  /** The address it listens on (default 127.0.0.1). */
  host?: string;
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
  /** A secure registry: HTTP basic auth with these users' passwords, and role-based authorization. */
  users?: RegistryUsers;
}

/** The Confluent-compatible API of Apicurio Registry lives under this path. */
export const ccompatPath = '/apis/ccompat/v7';

/**
 * Basic auth with Quarkus's embedded users and Apicurio's roles (sr-admin
 * may do everything, sr-developer register, sr-readonly only read). These
 * hold passwords, so they go into `config/application.properties` under the
 * registry's working folder (mode 0600), which Quarkus reads at start,
 * instead of onto a command line every user of the machine can read.
 */
export function securityProperties(users: RegistryUsers): string {
  const lines = [
    'quarkus.http.auth.basic=true',
    'quarkus.security.users.embedded.enabled=true',
    'quarkus.security.users.embedded.plain-text=true',
    'apicurio.auth.role-based-authorization=true',
  ];
  for (const [name, role] of Object.entries(registryRoles) as Array<[keyof RegistryUsers, string]>) {
    lines.push(`quarkus.security.users.embedded.users.${name}=${users[name]}`, `quarkus.security.users.embedded.roles.${name}=${role}`);
  }
  return `${lines.join('\n')}\n`;
}

/** The header of a basic-auth request. */
export function basicAuthHeader(auth: BasicAuth): string {
  return `Basic ${Buffer.from(`${auth.username}:${auth.password}`).toString('base64')}`;
}

export async function startRegistryNode(o: RegistryNodeOptions): Promise<SpawnedService & { logFile: string; url: string }> {
  await mkdir(o.dataDir, { recursive: true });
  const logFile = join(o.dataDir, 'registry.log');
  const storage = o.inMemory ? [] : [`-Dapicurio.datasource.url=jdbc:h2:file:${join(o.dataDir, 'registry')}`];
  const configDir = join(o.dataDir, 'config');
  if (o.users) {
    await mkdir(configDir, { recursive: true, mode: 0o700 });
    await writePrivateFile(join(configDir, 'application.properties'), securityProperties(o.users));
  } else {
    // Nothing of a secure configuration may linger into a plain start.
    await rm(join(configDir, 'application.properties'), { force: true });
  }
  const service = await spawnService({
    command: o.java,
    args: [
      `-Xmx${o.heap}`,
      `-Dmabeam.stack=${o.marker}`,
      // A lightly loaded registry: start fast rather than peak throughput.
      '-XX:+UseSerialGC',
      '-XX:TieredStopAtLevel=1',
      `-Dquarkus.http.host=${o.host ?? '127.0.0.1'}`,
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
  const url = `http://${o.host ?? '127.0.0.1'}:${o.port}${ccompatPath}`;
  const auth = o.users ? { username: 'admin', password: o.users.admin } : undefined;
  await waitForRegistry(url, o.startTimeoutMs, service.pid, logFile, auth);
  return { ...service, logFile, url };
}

/** Ready means `GET /subjects` answers 200 (to the admin, on a secure registry: a 401 is not ready). */
export async function waitForRegistry(url: string, timeoutMs: number, pid?: number, logFile?: string, auth?: BasicAuth): Promise<void> {
  const headers: Record<string, string> = auth ? { authorization: basicAuthHeader(auth) } : {};
  await waitUntilReady({
    what: `The schema registry at ${url}`,
    timeoutMs,
    ...(pid === undefined ? {} : { pid }),
    ...(logFile === undefined ? {} : { logFile }),
    probe: async () => (await fetch(`${url}/subjects`, { headers, signal: AbortSignal.timeout(2_000) })).ok,
  });
}
