import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MabeamError, describeError } from '../errors.ts';
import { silentLogger, type Logger } from '../log/logger.ts';
import { ensureKafka } from './artifacts.ts';
import { writePrivateFile } from './credentials.ts';
import { findJava } from './java.ts';
import { defaultCacheDir, stackDefaults } from './options.ts';
import type { KafkaSasl } from './types.ts';

const run = promisify(execFile);

/**
 * Kafka SCRAM users, added and removed at runtime. kafkajs has no
 * AlterUserScramCredentials, so Kafka's own ConfigCommand runs from the
 * stack's cached Kafka jars. No password is ever on its command line (which
 * `ps` shows every user): the admin's login goes in a `--command-config`
 * file and the new user's credential in an `--add-config-file`, both mode
 * 0600 in a private temporary folder that is removed afterwards.
 */

export interface ScramAdminOptions {
  /** Brokers of the cluster, `host:port`. */
  bootstrap: string[];
  /** A login with the right to alter users (the stack's admin, a super user). */
  admin: KafkaSasl;
  /** Where the Kafka jars are cached (default: the stack's cache). */
  cacheDir?: string;
  kafkaVersion?: string;
  mavenRepository?: string;
  /** A Java 17+ executable; found as the stack finds it when not given. */
  java?: string;
  /** How long the command may take, connecting included (default 60 s). */
  timeoutMs?: number;
  log?: Logger;
}

export interface ScramUserOptions extends ScramAdminOptions {
  username: string;
  password: string;
  /** Which SCRAM mechanism the credential is for (default SCRAM-SHA-512, the one the local stack enables). */
  mechanism?: 'scram-sha-512' | 'scram-sha-256';
}

/** Creates the user's SCRAM credential, or replaces its password when the user exists. */
export async function upsertScramUser(o: ScramUserOptions): Promise<void> {
  checkName(o.username);
  if (o.password.length === 0 || /[\r\n]/.test(o.password)) {
    throw new MabeamError('INVALID_CREDENTIALS', `The password for SCRAM user "${o.username}" must be non-empty and on one line.`);
  }
  const mechanism = (o.mechanism ?? 'scram-sha-512').toUpperCase();
  await configCommand(o, `adding SCRAM user "${o.username}"`, async (dir) => {
    // A properties file: ConfigCommand takes the value without the brackets --add-config needs.
    const file = join(dir, 'add.properties');
    await writePrivateFile(file, `${mechanism}=password=${propertiesEscape(o.password)}\n`);
    return ['--alter', '--add-config-file', file, '--entity-type', 'users', '--entity-name', o.username];
  });
}

/** Removes the user's SCRAM credential; false when it had none. */
export async function deleteScramUser(o: ScramAdminOptions & { username: string; mechanism?: 'scram-sha-512' | 'scram-sha-256' }): Promise<boolean> {
  checkName(o.username);
  const mechanism = (o.mechanism ?? 'scram-sha-512').toUpperCase();
  try {
    await configCommand(o, `deleting SCRAM user "${o.username}"`, async () => [
      '--alter',
      '--delete-config',
      mechanism,
      '--entity-type',
      'users',
      '--entity-name',
      o.username,
    ]);
    return true;
  } catch (error) {
    if (error instanceof MabeamError && error.details['notFound'] === true) return false;
    throw error;
  }
}

/** The SCRAM mechanisms a user has credentials for (empty when none). */
export async function describeScramUser(o: ScramAdminOptions & { username: string }): Promise<string[]> {
  checkName(o.username);
  const output = await configCommand(o, `describing SCRAM user "${o.username}"`, async () => ['--describe', '--entity-type', 'users', '--entity-name', o.username]);
  return [...output.matchAll(/(SCRAM-SHA-(?:256|512))=iterations=\d+/g)].map((m) => m[1] as string);
}

function checkName(username: string): void {
  // A name starting with "-" would be read as an option; whitespace cannot be a SASL user name.
  if (!/^[^\s-]\S*$/.test(username)) {
    throw new MabeamError('INVALID_CREDENTIALS', `"${username}" is not a usable SCRAM user name (non-empty, no whitespace, not starting with "-").`);
  }
}

/** A value as java.util.Properties reads it back: backslashes doubled, anything outside ASCII as \uXXXX (the file is read as ISO-8859-1). */
export function propertiesEscape(value: string): string {
  let escaped = '';
  for (const ch of value.replaceAll('\\', '\\\\')) {
    for (let i = 0; i < ch.length; i++) {
      const code = ch.charCodeAt(i);
      escaped += code < 0x20 || code > 0x7e ? `\\u${code.toString(16).padStart(4, '0')}` : ch[i];
    }
  }
  return escaped;
}

/** A string inside a JAAS option's double quotes. */
function jaasQuote(value: string): string {
  return value.replaceAll('\\', '\\\\').replaceAll('"', '\\"');
}

const jaasModules: Record<KafkaSasl['mechanism'], string> = {
  'scram-sha-512': 'org.apache.kafka.common.security.scram.ScramLoginModule',
  'scram-sha-256': 'org.apache.kafka.common.security.scram.ScramLoginModule',
  plain: 'org.apache.kafka.common.security.plain.PlainLoginModule',
};

/** The admin client settings of ConfigCommand: SASL as the admin, and bounded waits so an absent broker fails instead of hanging. */
function commandConfig(admin: KafkaSasl, timeoutMs: number): string {
  const jaas = `${jaasModules[admin.mechanism]} required username="${jaasQuote(admin.username)}" password="${jaasQuote(admin.password)}";`;
  return [
    'security.protocol=SASL_PLAINTEXT',
    `sasl.mechanism=${admin.mechanism.toUpperCase()}`,
    `sasl.jaas.config=${propertiesEscape(jaas)}`,
    `default.api.timeout.ms=${timeoutMs}`,
    `request.timeout.ms=${Math.min(timeoutMs, 15_000)}`,
    '',
  ].join('\n');
}

const toolsLog4j = [
  'log4j.rootLogger=WARN, stderr',
  'log4j.appender.stderr=org.apache.log4j.ConsoleAppender',
  'log4j.appender.stderr.Target=System.err',
  'log4j.appender.stderr.layout=org.apache.log4j.PatternLayout',
  'log4j.appender.stderr.layout.ConversionPattern=%p %m (%c)%n',
  '',
].join('\n');

/** Runs ConfigCommand with the admin's login in a private file; returns its output, or throws a MabeamError saying what went wrong. */
async function configCommand(o: ScramAdminOptions, what: string, args: (dir: string) => Promise<string[]>): Promise<string> {
  if (o.bootstrap.length === 0) throw new MabeamError('INVALID_OPTIONS', `No Kafka brokers given for ${what}.`);
  const log = o.log ?? silentLogger();
  const timeoutMs = o.timeoutMs ?? 60_000;
  const [artifact, java] = await Promise.all([
    ensureKafka(o.cacheDir ?? defaultCacheDir(), o.kafkaVersion ?? stackDefaults.kafkaVersion, log, o.mavenRepository),
    o.java ? Promise.resolve(o.java) : findJava({ minMajor: 17, purpose: 'Kafka ConfigCommand' }).then((j) => j.executable),
  ]);
  // mkdtemp makes the folder 0700: nobody else can even list it.
  const dir = await mkdtemp(join(tmpdir(), 'mabeam-scram-'));
  try {
    const config = join(dir, 'admin.properties');
    const log4j = join(dir, 'log4j.properties');
    await writePrivateFile(config, commandConfig(o.admin, timeoutMs));
    await writePrivateFile(log4j, toolsLog4j);
    const commandArgs = [
      '-Xmx256m',
      '-XX:TieredStopAtLevel=1',
      `-Dlog4j.configuration=file:${log4j}`,
      '-cp',
      `${join(artifact.dir, 'libs')}/*`,
      'kafka.admin.ConfigCommand',
      '--bootstrap-server',
      o.bootstrap.join(','),
      '--command-config',
      config,
      ...(await args(dir)),
    ];
    try {
      const { stdout } = await run(java, commandArgs, { timeout: timeoutMs + 15_000, maxBuffer: 4 * 1024 * 1024 });
      return stdout;
    } catch (error) {
      throw translate(error, what, o);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function translate(error: unknown, what: string, o: ScramAdminOptions): MabeamError {
  const e = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string; killed?: boolean };
  const output = `${e.stdout ?? ''}\n${e.stderr ?? ''}`;
  const where = o.bootstrap.join(',');
  if (e.code === 'ENOENT') return new MabeamError('STACK_DEPENDENCY_MISSING', `Java was not found for ${what} (${describeError(error)}).`, { cause: error });
  if (/SaslAuthenticationException|failed authentication/.test(output)) {
    return new MabeamError(
      'KAFKA_AUTHENTICATION_FAILED',
      `Kafka at ${where} refused the login of "${o.admin.username}" (${o.admin.mechanism}) while ${what}: wrong user name or password.`,
      { cause: error },
    );
  }
  if (/ClusterAuthorizationException|AuthorizationException/.test(output)) {
    return new MabeamError('KAFKA_NOT_AUTHORIZED', `"${o.admin.username}" may not alter users on Kafka at ${where} (${what}): it must be a super user.`, { cause: error });
  }
  if (/ResourceNotFoundException/.test(output)) {
    return new MabeamError('SCRAM_USER_FAILED', `Nothing to do while ${what}: the user has no such credential.`, { cause: error, details: { notFound: true } });
  }
  if (e.killed || /TimeoutException|could not be established/.test(output)) {
    return new MabeamError('SCRAM_USER_FAILED', `Kafka at ${where} did not answer while ${what}.`, { cause: error, retriable: true });
  }
  const lines = output
    .split('\n')
    .filter((l) => /Exception|Error/.test(l) && !/^\s+at /.test(l))
    .slice(0, 3)
    .join(' ');
  return new MabeamError('SCRAM_USER_FAILED', `Kafka's ConfigCommand failed while ${what}: ${lines || describeError(error)}`, { cause: error });
}
