import { execFile } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { MabeamError } from '../errors.ts';

const run = promisify(execFile);

export interface JavaRuntime {
  executable: string;
  major: number;
  version: string;
}

/** Reads the version a `java` executable reports; undefined if it cannot run. */
export async function probeJava(executable: string): Promise<JavaRuntime | undefined> {
  try {
    const { stderr, stdout } = await run(executable, ['-version'], { timeout: 20_000 });
    const match = /version "([^"]+)"/.exec(stderr + stdout);
    if (!match?.[1]) return undefined;
    const version = match[1];
    const parts = version.split('.');
    const major = Number(parts[0] === '1' ? parts[1] : parts[0]);
    return Number.isFinite(major) ? { executable, major, version } : undefined;
  } catch {
    return undefined;
  }
}

async function candidates(explicitHome: string | undefined, env: Record<string, string | undefined>): Promise<string[]> {
  const list: string[] = [];
  if (explicitHome) list.push(join(explicitHome, 'bin', 'java'));
  if (env['JAVA_HOME']) list.push(join(env['JAVA_HOME'], 'bin', 'java'));
  list.push('java');
  for (const root of ['/usr/lib/jvm', '/opt/java', '/usr/local/lib/jvm']) {
    try {
      for (const entry of (await readdir(root)).sort().reverse()) list.push(join(root, entry, 'bin', 'java'));
    } catch {
      // no such folder on this machine
    }
  }
  return [...new Set(list)];
}

export interface FindJavaOptions {
  minMajor: number;
  /** Given explicitly by the user: must satisfy minMajor or it is an error. */
  explicitHome?: string | undefined;
  env?: Record<string, string | undefined>;
  purpose: string;
}

/**
 * Finds a Java runtime of at least `minMajor`. An explicit home is used as
 * given; otherwise JAVA_HOME, `java` on PATH and the usual JDK folders are
 * tried in that order, so the machine's default Java wins when it is new
 * enough.
 */
export async function findJava(options: FindJavaOptions): Promise<JavaRuntime> {
  const env = options.env ?? process.env;
  const seen: string[] = [];
  if (options.explicitHome) {
    const java = await probeJava(join(options.explicitHome, 'bin', 'java'));
    if (java && java.major >= options.minMajor) return java;
    throw new MabeamError(
      'STACK_DEPENDENCY_MISSING',
      `${options.purpose} needs Java ${options.minMajor}+, but ${options.explicitHome} ${java ? `is Java ${java.version}` : 'has no working bin/java'}.`,
    );
  }
  for (const executable of await candidates(undefined, env)) {
    const java = await probeJava(executable);
    if (!java) continue;
    if (java.major >= options.minMajor) return java;
    seen.push(`${executable} (${java.version})`);
  }
  throw new MabeamError(
    'STACK_DEPENDENCY_MISSING',
    `${options.purpose} needs Java ${options.minMajor} or newer; found ${seen.length ? seen.join(', ') : 'no Java at all'}. ` +
      `Install a JDK ${options.minMajor}+ (for example Temurin) and set its folder in JAVA_HOME or MABEAM_REGISTRY_JAVA_HOME, ` +
      'or point the environment variable of that service at one already running.',
  );
}
