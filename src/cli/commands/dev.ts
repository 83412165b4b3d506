import { InvalidArgumentError, type Command } from 'commander';
import { MabeamError } from '../../errors.ts';
import type { Logger } from '../../log/logger.ts';
import {
  readStackCredentials,
  readStackState,
  resolveStackOptions,
  stackStatus,
  startStack,
  stopNamedStack,
  writePasswordFiles,
  type PasswordFiles,
  type StackEndpoints,
  type StackState,
  type StartedStack,
} from '../../stack/index.ts';
import { dockerUnavailable, probeDocker, startContainerStack, type ContainerStack } from '../../stack/containers.ts';
import { untilSignalOrStopped } from '../lifetime.ts';
import { out, progress, table } from '../output.ts';

/** A value as a POSIX shell reads it back: bare when it is plain, else single-quoted. */
function shellValue(value: string): string {
  return /^[\w@%+=:,./-]*$/.test(value) ? value : `'${value.replaceAll("'", `'\\''`)}'`;
}

/**
 * The shell lines that point commands at a stack. A secure stack's admin
 * passwords go by file (KAFKA_SASL_PASSWORD_FILE, SCHEMA_REGISTRY_PASSWORD_FILE),
 * so they are in neither the environment nor shell history; Redis clients
 * take theirs only in the URL.
 */
export function exportLines(endpoints: StackEndpoints, passwordFiles?: PasswordFiles): string[] {
  const lines: Array<[string, string]> = [
    ['KAFKA_BROKERS', endpoints.kafkaBrokers.join(',')],
    ['SCHEMA_REGISTRY_URL', endpoints.schemaRegistryUrl],
    ['REDIS_URL', endpoints.redisUrl],
  ];
  if (endpoints.kafkaSasl && passwordFiles) {
    lines.push(['KAFKA_SASL_MECHANISM', endpoints.kafkaSasl.mechanism], ['KAFKA_SASL_USERNAME', endpoints.kafkaSasl.username], ['KAFKA_SASL_PASSWORD_FILE', passwordFiles.kafka]);
  }
  if (endpoints.registryAuth && passwordFiles) {
    lines.push(['SCHEMA_REGISTRY_USERNAME', endpoints.registryAuth.username], ['SCHEMA_REGISTRY_PASSWORD_FILE', passwordFiles.registry]);
  }
  return lines.map(([name, value]) => `export ${name}=${shellValue(value)}`);
}

/** The export lines of a stack's record; for a secure stack its admin password files are (re)written first. */
export async function stackExportLines(state: StackState): Promise<string[]> {
  if (!state.secure) return exportLines(state.endpoints);
  const credentials = await readStackCredentials(state.dir);
  if (!credentials) {
    throw new MabeamError('STACK_SECURITY_MISMATCH', `The local stack "${state.name}" is secure but its credentials file ${state.secure.credentialsFile} is missing.`);
  }
  return exportLines(state.endpoints, await writePasswordFiles(state.dir, credentials));
}

/** How `dev status` names what a stack guards. */
export function securityLabel(state: Pick<StackState, 'secure'>): string {
  return state.secure ? 'secure (SASL/SCRAM-SHA-512, ACLs, registry basic auth, Redis password)' : 'plain';
}

const addressVariables = (endpoints: StackEndpoints): Array<[string, string]> => [
  ['KAFKA_BROKERS', endpoints.kafkaBrokers.join(',')],
  ['SCHEMA_REGISTRY_URL', endpoints.schemaRegistryUrl],
  ['REDIS_URL', endpoints.redisUrl],
];

/**
 * `dev up` manages its own stack whatever the shell exports; this says so
 * when the variables are set, and warns when they point elsewhere, because
 * every other command in that shell follows the variables, not the stack.
 */
export function environmentNotes(endpoints: StackEndpoints, name: string, env: Record<string, string | undefined> = process.env): string[] {
  const set = addressVariables(endpoints).filter(([variable]) => env[variable]);
  if (set.length === 0) return [];
  const names = set.map(([variable]) => variable).join(', ');
  const differing = set.filter(([variable, own]) => env[variable]?.replace(/\/+$/, '') !== own);
  const notes = [`${names} ${set.length === 1 ? 'is' : 'are'} set in this shell; \`dev up\` does not manage them and left the stack "${name}" as its own record has it.`];
  for (const [variable, own] of differing) notes.push(`  ${variable}=${env[variable]} is not this stack's ${own}: commands in this shell go to the variable's address.`);
  if (differing.length > 0) notes.push(`  To use this stack here: eval "$(mabeam --stack ${name} dev env)"`);
  return notes;
}

/** Starts (or reuses) the named local stack, telling a person what is happening. */
export async function bringUp(name: string, logger: Logger, options: { secure?: boolean; brokers?: 1 | 3 | 5; host?: string } = {}): Promise<StartedStack> {
  const secure = options.secure ?? false;
  const cluster = options.brokers && options.brokers > 1 ? ` (${options.brokers} Kafka nodes)` : '';
  progress(`local stack "${name}"${secure ? ' (secure)' : ''}${cluster}: starting (the first start fetches Kafka and the registry with Maven, about a minute)…`);
  const started = await startStack({ name, secure, ...(options.brokers ? { brokers: options.brokers } : {}), ...(options.host ? { host: options.host } : {}) }, logger);
  const { report, state } = started;
  const seconds = ((report.timings['total'] ?? 0) / 1000).toFixed(1);
  const fetched = [report.fetched.kafka && 'Kafka', report.fetched.registry && 'the registry'].filter(Boolean).join(' and ');
  const kept = state.services.filter((s) => !report.started.includes(s.name)).map((s) => s.name);
  progress(
    report.reused
      ? `local stack "${name}": already running, reused (${seconds} s)`
      : `local stack "${name}": up in ${seconds} s${fetched ? ` (fetched ${fetched} into the cache)` : ' (from the cache)'}` +
          (kept.length > 0 ? `; ${kept.join(' and ')} still ran, ${report.started.join(' and ')} started again` : ''),
  );
  for (const s of state.services) progress(`  ${s.name.padEnd(8)} ${s.address}${s.origin === 'started' ? '' : `  (${s.origin})`}`);
  if (state.secure) progress(`  ${securityLabel(state)}; passwords in ${state.secure.credentialsFile}`);
  for (const c of report.portChanges) {
    progress(`  ${c.service} ${c.role} port ${c.from} is taken by another process; moved to ${c.to}. Clients given the old address must get the new one.`);
  }
  for (const note of environmentNotes(state.endpoints, name)) progress(note);
  return started;
}

/**
 * `dev up --containers`: Kafka, Confluent Schema Registry and Redis as
 * containers (testcontainers), for as long as the calling process runs. No
 * record is written: `dev down`, `dev status` and `dev env` concern the
 * embedded stack only. No engine: DOCKER_UNAVAILABLE, before anything starts.
 */
export async function bringUpContainers(logger: Logger): Promise<ContainerStack> {
  const probe = await probeDocker();
  if (!probe.available) throw dockerUnavailable(probe);
  progress(`containers stack: starting with testcontainers on the Docker engine at ${probe.endpoint} (the first start pulls the images)…`);
  const startedAt = Date.now();
  const stack = await startContainerStack({}, logger);
  progress(`containers stack: up in ${((Date.now() - startedAt) / 1000).toFixed(1)} s`);
  const e = stack.endpoints;
  progress(`  kafka    ${e.kafkaBrokers.join(',')}  (${stack.images.kafka})`);
  progress(`  registry ${e.schemaRegistryUrl}  (${stack.images.registry})`);
  progress(`  redis    ${e.redisUrl}  (${stack.images.redis})`);
  progress('  it lives as long as this command: Ctrl-C (SIGINT) or SIGTERM stops and removes it; `dev down` and `dev status` concern the embedded stack only');
  return stack;
}

export function registerDevCommands(program: Command, logger: () => Logger): void {
  const dev = program
    .command('dev')
    .description('the embedded local stack: Kafka (KRaft), Apicurio Registry and Redis on this machine (or, with `dev up --containers`, the same as Docker containers)');

  dev
    .command('up')
    .description(
      'start the local stack (again on its recorded ports), or reuse what still runs; prints the addresses. ' +
        'With --secure, a stack with SASL/SCRAM-SHA-512 and ACLs on Kafka, basic auth on the registry and a Redis password ' +
        '(fixed at its first start: a secure stack needs its own name, e.g. `mabeam --stack secure dev up --secure`). ' +
        'With --containers, Kafka, Confluent Schema Registry and Redis as Docker containers (the images of docker-compose.yml) instead: ' +
        'the command stays in the foreground and Ctrl-C (SIGINT) or SIGTERM removes them; such a stack has no record, so `dev down` / `dev status` / `dev env` do not see it',
    )
    .option('--secure', 'a secure stack: Kafka SASL/SCRAM-SHA-512 with ACLs, registry basic auth and roles, Redis password; passwords generated once into credentials.json')
    .option('--containers', 'start the stack as Docker containers with testcontainers (needs a Docker engine: DOCKER_UNAVAILABLE without one); runs until SIGINT')
    .option(
      '--brokers <n>',
      'Kafka nodes: 1 (default), or a replicated KRaft cluster of 3 or 5 (each node broker and controller), so topics get replication factor 3 and min.insync.replicas 2; fixed at a stack\'s first start (give a cluster its own name: `mabeam --stack cluster dev up --brokers 3`)',
      (value: string) => {
        const n = Number(value);
        if (n !== 1 && n !== 3 && n !== 5) throw new InvalidArgumentError('1, 3 or 5');
        return n as 1 | 3 | 5;
      },
    )
    .option('--host <address>', 'the IPv4 address Kafka, the registry and Redis listen on and give clients, for agents on other hosts or network namespaces (default 127.0.0.1; Kafka\'s controllers stay on loopback)')
    .action(async (options: { secure?: boolean; containers?: boolean; brokers?: 1 | 3 | 5; host?: string }) => {
      if (options.containers) {
        if (options.secure) throw new MabeamError('INVALID_OPTIONS', '--containers starts a plain stack; --secure is for the embedded one (`mabeam --stack secure dev up --secure`).');
        const stack = await bringUpContainers(logger());
        out(exportLines(stack.endpoints).join('\n'));
        const signal = await untilSignalOrStopped([], () => stack.stop());
        progress(`containers stack: ${signal}; removing its containers…`);
        await stack.stop();
        progress('containers stack: removed');
        return;
      }
      const { state } = await bringUp(program.opts()['stack'] as string, logger(), { secure: options.secure === true, ...(options.brokers ? { brokers: options.brokers } : {}), ...(options.host ? { host: options.host } : {}) });
      out((await stackExportLines(state)).join('\n'));
    });

  dev
    .command('down')
    .description('stop the local stack (its data and ports stay for the next start)')
    .action(async () => {
      const name = program.opts()['stack'] as string;
      out((await stopNamedStack({ name })) ? `local stack "${name}" stopped` : `local stack "${name}" was not running`);
    });

  dev
    .command('status')
    .description('show whether each service of the local stack runs and answers; exit code 1 unless all do')
    .option('--json', 'print the status as one JSON object (no passwords: they stay in the credentials file)')
    .action(async (opts: { json?: boolean }) => {
      const name = program.opts()['stack'] as string;
      const status = await stackStatus({ name });
      if (opts.json) {
        const s = status.state;
        out(JSON.stringify({
          name,
          state: !s ? 'not-running' : s.stoppedAt ? 'stopped' : 'started',
          dir: s?.dir ?? status.options.stateDir,
          ...(s ? { startedAt: s.startedAt, stoppedAt: s.stoppedAt ?? null, security: s.secure ? 'secure' : 'plain', credentialsFile: s.secure?.credentialsFile ?? null } : {}),
          services: status.services.map((x) => ({ name: x.name, health: x.health, running: x.running, origin: x.origin, address: x.address, pid: x.pid ?? null })),
        }));
        if (!s || status.services.some((x) => !x.running)) process.exitCode = 1;
        return;
      }
      if (!status.state) {
        out(`local stack "${name}": not running (state in ${status.options.stateDir})`);
        process.exitCode = 1;
        return;
      }
      if (status.state.stoppedAt) {
        out(`local stack "${name}": stopped at ${status.state.stoppedAt}; \`mabeam dev up\` starts it again on the same ports (state in ${status.state.dir})`);
      } else {
        out(`local stack "${name}" (started ${status.state.startedAt}, state in ${status.state.dir})`);
      }
      out(`security: ${securityLabel(status.state)}${status.state.secure ? `; passwords in ${status.state.secure.credentialsFile}` : ''}`);
      const label = { running: 'running', stopped: 'STOPPED', 'not-answering': 'NOT ANSWERING' } as const;
      out(table(status.services.map((s) => [s.name, label[s.health], s.origin, s.address, s.pid ? `pid ${s.pid}` : ''])));
      if (status.services.some((s) => !s.running)) process.exitCode = 1;
    });

  dev
    .command('env')
    .description(
      'print export lines for KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL of the running stack; on a secure stack also ' +
        'KAFKA_SASL_MECHANISM / _USERNAME / _PASSWORD_FILE and SCHEMA_REGISTRY_USERNAME / _PASSWORD_FILE (the admin), REDIS_URL with its password',
    )
    .action(async () => {
      const name = program.opts()['stack'] as string;
      const state = await readStackState(resolveStackOptions({ name }).stateDir);
      if (!state || state.stoppedAt) {
        throw new MabeamError('STACK_NOT_RUNNING', `local stack "${name}" is not running; start it with \`mabeam dev up\``);
      }
      out((await stackExportLines(state)).join('\n'));
    });
}
