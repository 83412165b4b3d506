import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { access, mkdir, readdir, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { MabeamError } from '../errors.ts';
import type { Logger } from '../log/logger.ts';

const run = promisify(execFile);

/** The pom that names the stack's JVM artifacts; see stack/pom.xml. */
export const stackPom = fileURLToPath(new URL('../../stack/pom.xml', import.meta.url));

const completeMarker = '.complete';

async function exists(path: string): Promise<boolean> {
  try {
    await access(path);
    return true;
  } catch {
    return false;
  }
}

async function mvn(args: string[], what: string, workDir: string, repository: string | undefined): Promise<void> {
  const repo = repository ? [`-Dmaven.repo.local=${repository}`] : [];
  try {
    await run('mvn', ['-q', '-B', '-f', stackPom, `-Dstack.work=${workDir}`, ...repo, ...args], { timeout: 15 * 60_000, maxBuffer: 16 * 1024 * 1024 });
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stdout?: string; stderr?: string };
    if (e.code === 'ENOENT') {
      throw new MabeamError('STACK_DEPENDENCY_MISSING', 'Maven (mvn) is not on PATH; it is needed once to fetch the local stack from Maven Central.');
    }
    const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.split('\n').filter((l) => l.includes('ERROR')).slice(0, 5).join('\n');
    throw new MabeamError('STACK_FETCH_FAILED', `Fetching ${what} with Maven failed:\n${output || e.message}`, { cause: error });
  }
}

/**
 * Fills `finalDir` once: the fetch writes into a fresh sibling folder that is
 * renamed into place when complete, so an interrupted or concurrent fetch
 * never leaves a half-filled cache entry behind.
 */
async function fetchOnce(finalDir: string, what: string, log: Logger, fill: (dir: string) => Promise<void>): Promise<boolean> {
  if (await exists(join(finalDir, completeMarker))) return false;
  const staging = `${finalDir}.partial-${randomBytes(4).toString('hex')}`;
  await mkdir(staging, { recursive: true });
  log.info({ what, dir: finalDir }, 'fetching into the cache (first start only)');
  try {
    await fill(staging);
    await writeFile(join(staging, completeMarker), new Date().toISOString());
    await rm(finalDir, { recursive: true, force: true });
    try {
      await rename(staging, finalDir);
    } catch (error) {
      // Another process finished the same fetch first: keep theirs.
      if (!(await exists(join(finalDir, completeMarker)))) throw error;
    }
  } finally {
    await rm(staging, { recursive: true, force: true });
  }
  return true;
}

export interface Artifact {
  dir: string;
  fetched: boolean;
}

/** The broker's runtime jars: `<cache>/kafka-<version>/libs/*.jar`. */
export async function ensureKafka(cacheDir: string, version: string, log: Logger, mavenRepository?: string): Promise<Artifact> {
  const dir = join(cacheDir, `kafka-${version}`);
  const fetched = await fetchOnce(dir, `Apache Kafka ${version}`, log, async (staging) => {
    await mvn(
      ['dependency:copy-dependencies', `-Dkafka.version=${version}`, '-DincludeScope=runtime', `-DoutputDirectory=${join(staging, 'libs')}`],
      `Apache Kafka ${version}`,
      join(staging, '.maven'),
      mavenRepository,
    );
    await rm(join(staging, '.maven'), { recursive: true, force: true });
    const jars = await readdir(join(staging, 'libs'));
    if (!jars.some((j) => j.startsWith('kafka_2.13-'))) {
      throw new MabeamError('STACK_FETCH_FAILED', `Maven finished but no kafka_2.13 jar was copied for version ${version}.`);
    }
  });
  return { dir, fetched };
}

/** The Apicurio Registry app (Quarkus fast-jar): `<cache>/apicurio-registry-<version>/quarkus-run.jar`. */
export async function ensureRegistry(cacheDir: string, version: string, log: Logger, mavenRepository?: string): Promise<Artifact> {
  const dir = join(cacheDir, `apicurio-registry-${version}`);
  const fetched = await fetchOnce(dir, `Apicurio Registry ${version}`, log, async (staging) => {
    await mvn(
      ['dependency:unpack', `-Dartifact=io.apicurio:apicurio-registry-app:${version}:tar.gz:all`, `-DoutputDirectory=${staging}`],
      `Apicurio Registry ${version}`,
      join(staging, '.maven'),
      mavenRepository,
    );
    await rm(join(staging, '.maven'), { recursive: true, force: true });
    if (!(await exists(join(staging, 'quarkus-run.jar')))) {
      throw new MabeamError('STACK_FETCH_FAILED', `The Apicurio Registry ${version} archive has no quarkus-run.jar at its root.`);
    }
  });
  return { dir, fetched };
}
