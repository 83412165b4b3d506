import { mkdir, readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { dirname, join } from 'node:path';
import { z } from 'zod';
import { MabeamError } from '../errors.ts';
import { writePrivateFile } from '../stack/credentials.ts';
import { roleNames, type Binding } from './roles.ts';

/**
 * Which principal has which role under which prefix: what `mabeam users add`
 * recorded, and what `mabeam acl apply` makes the ACLs say again (after the
 * roles file changed, or on a new prefix). Kafka keeps the credentials and
 * the ACLs; this file only remembers the bindings, so ACLs can be rebuilt
 * from it. A local stack keeps it in its state folder.
 */
export interface PrincipalBinding extends Binding {
  prefix: string;
}

const bindingSchema = z.object({ user: z.string().min(1), role: z.enum(roleNames), pools: z.array(z.string().min(1)).optional(), prefix: z.string() }).strict();
const fileSchema = z.object({ bindings: z.array(bindingSchema) }).strict();

export function defaultBindingsFile(stateDir: string | undefined, env: Record<string, string | undefined> = process.env): string {
  return env['MABEAM_BINDINGS_FILE'] ?? (stateDir ? join(stateDir, 'principals.json') : join(env['XDG_CONFIG_HOME'] ?? join(homedir(), '.config'), 'mabeam', 'principals.json'));
}

export async function readBindings(file: string): Promise<PrincipalBinding[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  }
  const parsed = fileSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new MabeamError('INVALID_OPTIONS', `${file}: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data.bindings.map((b) => ({ user: b.user, role: b.role, prefix: b.prefix, ...(b.pools ? { pools: b.pools } : {}) }));
}

async function writeBindings(file: string, bindings: readonly PrincipalBinding[]): Promise<void> {
  await mkdir(dirname(file), { recursive: true, mode: 0o700 });
  const sorted = [...bindings].sort((a, b) => a.prefix.localeCompare(b.prefix) || a.user.localeCompare(b.user));
  await writePrivateFile(file, `${JSON.stringify({ bindings: sorted }, null, 2)}\n`);
}

/** Records (or replaces) a user's binding under its prefix. */
export async function recordBinding(file: string, binding: PrincipalBinding): Promise<void> {
  const others = (await readBindings(file)).filter((b) => !(b.user === binding.user && b.prefix === binding.prefix));
  await writeBindings(file, [...others, binding]);
}

/** Forgets a user's binding under a prefix; false when there was none. */
export async function forgetBinding(file: string, user: string, prefix: string): Promise<boolean> {
  const all = await readBindings(file);
  const kept = all.filter((b) => !(b.user === user && b.prefix === prefix));
  if (kept.length === all.length) return false;
  await writeBindings(file, kept);
  return true;
}

/** `NAME:ROLE` or `NAME:ROLE:POOL,POOL` of the command line. */
export function parseBinding(text: string, prefix: string): PrincipalBinding {
  const [user, role, pools] = text.split(':');
  if (!user || !role || !(roleNames as readonly string[]).includes(role)) {
    throw new MabeamError('INVALID_OPTIONS', `"${text}" is not NAME:ROLE[:POOL,…] with ROLE one of ${roleNames.join(', ')}.`);
  }
  return { user, role: role as Binding['role'], prefix, ...(pools ? { pools: pools.split(',').filter(Boolean) } : {}) };
}
