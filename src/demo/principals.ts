import { connect, type Connections } from '../cli/connect.ts';
import { MabeamError } from '../errors.ts';
import { applyAcls } from '../security/acl.ts';
import { loadRoles, type Binding, type RoleName } from '../security/roles.ts';
import { newPassword } from '../stack/credentials.ts';
import { upsertScramUser } from '../stack/scram.ts';
import type { StackEndpoints } from '../stack/types.ts';

/** The roles the demo's parts run as on a secure cluster. */
export type DemoRole = 'coordinator' | 'owner' | 'agents' | 'client';

const roleOf: Record<DemoRole, RoleName> = { coordinator: 'coordinator', owner: 'owner', agents: 'agent', client: 'client' };

export interface DemoPrincipals {
  /** Each part's connections, logged in as its own user. */
  as: Record<DemoRole, Connections>;
  /** Each part's endpoints (its login), for clients beyond `as`. */
  endpoints: Record<DemoRole, StackEndpoints>;
  users: Record<DemoRole, string>;
  /** The ACLs the roles were given. */
  acls: number;
  close(): Promise<void>;
}

/** The agent pool the demo's agents belong to. */
export const demoPool = 'demo';

/**
 * A user per part of the demo, bound to its role under the prefix: SCRAM
 * credentials with new passwords (kept in memory only: a rerun gives new
 * ones), the role's ACLs from security/roles.json, and connections logged
 * in as each. The registry is read as `registryReader` (its read-only user);
 * only the admin (`c`) registers schemas.
 */
export async function demoPrincipals(c: Connections, prefix: string, registryReader?: { username: string; password: string }): Promise<DemoPrincipals> {
  const admin = c.endpoints.kafkaSasl;
  if (!admin) throw new MabeamError('INVALID_CREDENTIALS', 'The secure demo runs as an admin of a secured cluster: start it with `mabeam demo --secure` on a secure local stack, or set KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD(_FILE) to an admin.');
  const parts = Object.keys(roleOf) as DemoRole[];
  const users = Object.fromEntries(parts.map((p) => [p, `${prefix}-${p}`])) as Record<DemoRole, string>;
  const endpoints = {} as Record<DemoRole, StackEndpoints>;
  await Promise.all(
    parts.map(async (part) => {
      const password = newPassword();
      await upsertScramUser({ bootstrap: c.endpoints.kafkaBrokers, admin, username: users[part], password });
      endpoints[part] = {
        ...c.endpoints,
        kafkaSasl: { mechanism: 'scram-sha-512', username: users[part], password },
        ...(registryReader ? { registryAuth: registryReader } : {}),
      };
    }),
  );
  const bindings: Binding[] = parts.map((part) => ({ user: users[part], role: roleOf[part], ...(part === 'agents' ? { pools: [demoPool] } : {}) }));
  const changes = await applyAcls(c.admin, await loadRoles(), bindings, prefix);
  const acls = changes.reduce((n, ch) => n + ch.created.length + ch.unchanged, 0);
  const as = {} as Record<DemoRole, Connections>;
  const opened: Connections[] = [];
  try {
    for (const part of parts) {
      as[part] = await connect(endpoints[part], c.logger, `mabeam-demo-${part}`, { redis: part === 'owner' || part === 'client' });
      opened.push(as[part]);
    }
  } catch (error) {
    await Promise.allSettled(opened.map((o) => o.close()));
    throw error;
  }
  return { as, endpoints, users, acls, close: async () => void (await Promise.allSettled(opened.map((o) => o.close()))) };
}
