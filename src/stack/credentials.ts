import { randomBytes } from 'node:crypto';
import { chmod, mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { MabeamError } from '../errors.ts';

/**
 * The passwords of a secure local stack, `credentials.json` in its state
 * folder (mode 0600). They are drawn once, on the stack's first start, and
 * kept: the Kafka data folder holds the admin's SCRAM credential from that
 * first format, so a restart must log in with the same password.
 */
export interface StackCredentials {
  kafka: { admin: string };
  registry: { admin: string; developer: string; reader: string };
  redis: string;
}

export const credentialsFileName = 'credentials.json';

/** Where the password files `dev env` points clients at live (mode 0700). */
export const passwordFolderName = 'credentials';

export function credentialsFile(stateDir: string): string {
  return join(stateDir, credentialsFileName);
}

/** 24 random bytes as base64url: 32 characters with nothing a properties, JAAS or URL syntax would read. */
export function newPassword(): string {
  return randomBytes(24).toString('base64url');
}

/** Written aside with mode 0600 and renamed, so the file is never readable by others, not even half written. */
export async function writePrivateFile(path: string, text: string): Promise<void> {
  const temporary = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  await writeFile(temporary, text, { mode: 0o600 });
  await chmod(temporary, 0o600);
  await rename(temporary, path);
}

function isCredentials(value: unknown): value is StackCredentials {
  const v = value as StackCredentials | undefined;
  const text = (x: unknown): boolean => typeof x === 'string' && x.length > 0;
  return text(v?.kafka?.admin) && text(v?.registry?.admin) && text(v?.registry?.developer) && text(v?.registry?.reader) && text(v?.redis);
}

/** The stack's credentials, or undefined when it has none (a plain stack, or one never started). */
export async function readStackCredentials(stateDir: string): Promise<StackCredentials | undefined> {
  let text: string;
  try {
    text = await readFile(credentialsFile(stateDir), 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  if (!isCredentials(parsed)) {
    throw new MabeamError('INVALID_OPTIONS', `${credentialsFile(stateDir)} is not a credentials file of a secure stack (kafka.admin, registry.admin/developer/reader, redis).`);
  }
  return parsed;
}

/** The stack's credentials: those kept from its first start, else new ones, written before any service uses them. */
export async function ensureStackCredentials(stateDir: string): Promise<StackCredentials> {
  const kept = await readStackCredentials(stateDir);
  if (kept) return kept;
  const credentials: StackCredentials = {
    kafka: { admin: newPassword() },
    registry: { admin: newPassword(), developer: newPassword(), reader: newPassword() },
    redis: newPassword(),
  };
  await mkdir(stateDir, { recursive: true, mode: 0o700 });
  await writePrivateFile(credentialsFile(stateDir), `${JSON.stringify(credentials, null, 2)}\n`);
  return credentials;
}

export interface PasswordFiles {
  kafka: string;
  registry: string;
}

/**
 * The admin passwords alone, one file each under `<stateDir>/credentials/`:
 * what KAFKA_SASL_PASSWORD_FILE and SCHEMA_REGISTRY_PASSWORD_FILE name, so a
 * password never has to be in an environment variable or a command line.
 */
export async function writePasswordFiles(stateDir: string, credentials: StackCredentials): Promise<PasswordFiles> {
  const folder = join(stateDir, passwordFolderName);
  await mkdir(folder, { recursive: true, mode: 0o700 });
  await chmod(folder, 0o700);
  const files: PasswordFiles = { kafka: join(folder, 'kafka-admin.password'), registry: join(folder, 'registry-admin.password') };
  await writePrivateFile(files.kafka, credentials.kafka.admin);
  await writePrivateFile(files.registry, credentials.registry.admin);
  return files;
}
