import { mkdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import type { Command } from 'commander';
import type { Admin } from 'kafkajs';
import { MabeamError, describeError } from '../../errors.ts';
import { kafkaFor } from '../../kafka/client.ts';
import type { Logger } from '../../log/logger.ts';
import { aclsOf, applyAcls, removeAcls, type AclChange } from '../../security/acl.ts';
import { defaultBindingsFile, forgetBinding, parseBinding, readBindings, recordBinding, type PrincipalBinding } from '../../security/principals.ts';
import { describeAcl, isRoleName, loadRoles, roleNames } from '../../security/roles.ts';
import { newPassword, passwordFolderName, readStackCredentials, writePrivateFile } from '../../stack/credentials.ts';
import { isRunningState, readStackState } from '../../stack/state.ts';
import { resolveEndpoints, resolveStackOptions, type StackEndpoints } from '../../stack/index.ts';
import { deleteScramUser, upsertScramUser } from '../../stack/scram.ts';
import { defaultTopicPrefix } from '../../topics/index.ts';
import { out, progress, table } from '../output.ts';

/** Where a command finds the services, the local stack's folder (when one runs) and the bindings. */
async function target(program: Command, bindingsOption?: string): Promise<{ endpoints: StackEndpoints; stateDir?: string; bindingsFile: string }> {
  const name = program.opts()['stack'] as string;
  const endpoints = await resolveEndpoints(name);
  const { stateDir } = resolveStackOptions({ name });
  const state = await readStackState(stateDir);
  const local = isRunningState(state) && state.endpoints.kafkaBrokers.join(',') === endpoints.kafkaBrokers.join(',') ? stateDir : undefined;
  return { endpoints, ...(local ? { stateDir: local } : {}), bindingsFile: bindingsOption ?? defaultBindingsFile(local) };
}

function requireLogin(endpoints: StackEndpoints): NonNullable<StackEndpoints['kafkaSasl']> {
  if (!endpoints.kafkaSasl) {
    throw new MabeamError(
      'INVALID_CREDENTIALS',
      'This cluster is reached without a login, so it has no users or ACLs to manage: start a secure local stack (`mabeam --stack secure dev up --secure`) or set KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD(_FILE) to an admin of a secured cluster.',
    );
  }
  return endpoints.kafkaSasl;
}

async function withAdmin<T>(endpoints: StackEndpoints, logger: Logger, work: (admin: Admin) => Promise<T>): Promise<T> {
  const admin = kafkaFor(endpoints, 'mabeam-security', logger).admin();
  await admin.connect();
  try {
    return await work(admin);
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

const collect = (value: string, previous: string[] = []): string[] => [...previous, value];

function printChanges(changes: AclChange[]): void {
  out(table([['user', 'role', 'created', 'deleted', 'unchanged'], ...changes.map((c) => [c.user, c.role, String(c.created.length), String(c.deleted.length), String(c.unchanged)])]));
  for (const c of changes) {
    for (const e of c.created) progress(`  + ${c.user}: ${describeAcl(e)}`);
    for (const e of c.deleted) progress(`  - ${c.user}: ${describeAcl(e)}`);
  }
}

export function registerSecurityCommands(program: Command, logger: () => Logger): void {
  const users = program.command('users').description('Kafka users (SCRAM-SHA-512) bound to roles; their rights are the role\'s ACLs (security/roles.json)');

  users
    .command('add <name>')
    .description('create or update a user with a role: its SCRAM credential, its ACLs under the prefix, and the binding that `acl apply` keeps')
    .requiredOption('--role <role>', `one of ${roleNames.join(', ')}`)
    .option('--pool <pool>', 'an agent pool the user runs (role agent; repeatable; default the user name)', collect)
    .option('--password-file <file>', 'the password, from a file (default: a new random one, written to a file of mode 0600)')
    .option('--prefix <prefix>', 'topic name prefix the ACLs are for', defaultTopicPrefix)
    .option('--bindings <file>', 'where bindings are kept (default: the local stack\'s folder, or ~/.config/mabeam/principals.json)')
    .option('--json', 'print the result as one JSON object')
    .action(async (name: string, opts: { role: string; pool?: string[]; passwordFile?: string; prefix: string; bindings?: string; json?: boolean }) => {
      if (!isRoleName(opts.role)) throw new MabeamError('INVALID_OPTIONS', `--role ${opts.role} is not one of ${roleNames.join(', ')}.`);
      if (!/^[A-Za-z0-9._-]+$/.test(name)) throw new MabeamError('INVALID_OPTIONS', `A user name is letters, digits, ".", "_" or "-"; got "${name}".`);
      if (opts.pool && opts.role !== 'agent') throw new MabeamError('INVALID_OPTIONS', '--pool is for users of role agent.');
      const { endpoints, stateDir, bindingsFile } = await target(program, opts.bindings);
      const admin = requireLogin(endpoints);
      const roles = await loadRoles();
      let password: string;
      let passwordFile: string | undefined;
      if (opts.passwordFile) {
        password = (await readFile(opts.passwordFile, 'utf8')).replace(/\r?\n$/, '');
        if (!password) throw new MabeamError('INVALID_CREDENTIALS', `${opts.passwordFile} is empty.`);
      } else {
        password = newPassword();
        passwordFile = join(stateDir ?? dirname(bindingsFile), passwordFolderName, `kafka-${name}.password`);
        await mkdir(dirname(passwordFile), { recursive: true, mode: 0o700 });
        await writePrivateFile(passwordFile, password);
      }
      progress(`user ${name}: writing its SCRAM-SHA-512 credential…`);
      await upsertScramUser({ bootstrap: endpoints.kafkaBrokers, admin, username: name, password });
      const binding: PrincipalBinding = { user: name, role: opts.role, prefix: opts.prefix, ...(opts.pool ? { pools: opts.pool } : {}) };
      const [change] = await withAdmin(endpoints, logger(), (a) => applyAcls(a, roles, [binding], opts.prefix));
      await recordBinding(bindingsFile, binding);
      const registryUser = opts.role === 'admin' ? 'admin' : 'reader';
      const registryPasswordFile = stateDir ? await registryPasswordFileOf(stateDir, registryUser) : undefined;
      const env = [
        `export KAFKA_SASL_MECHANISM=scram-sha-512`,
        `export KAFKA_SASL_USERNAME=${name}`,
        passwordFile ? `export KAFKA_SASL_PASSWORD_FILE=${passwordFile}` : `export KAFKA_SASL_PASSWORD_FILE=${opts.passwordFile}`,
        ...(registryPasswordFile ? [`export SCHEMA_REGISTRY_USERNAME=${registryUser}`, `export SCHEMA_REGISTRY_PASSWORD_FILE=${registryPasswordFile}`] : []),
      ];
      if (opts.json) {
        out(JSON.stringify({ user: name, role: opts.role, prefix: opts.prefix, pools: binding.pools ?? (opts.role === 'agent' ? [name] : []), acls: change?.created.length ?? 0, aclsUnchanged: change?.unchanged ?? 0, passwordFile: passwordFile ?? opts.passwordFile, bindingsFile, env }));
        return;
      }
      out(`user ${name}: role ${opts.role} under "${opts.prefix}", ${change?.created.length ?? 0} ACLs created, ${change?.unchanged ?? 0} already there`);
      if (passwordFile) out(`  password in ${passwordFile} (mode 0600)`);
      out(`  binding kept in ${bindingsFile}`);
      out(`  to run as ${name}:`);
      for (const line of env) out(`    ${line}`);
    });

  users
    .command('remove <name>')
    .description('delete a user\'s SCRAM credential, its ACLs under the prefix and its binding')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--bindings <file>', 'where bindings are kept')
    .action(async (name: string, opts: { prefix: string; bindings?: string }) => {
      const { endpoints, bindingsFile } = await target(program, opts.bindings);
      const admin = requireLogin(endpoints);
      if (name === admin.username) throw new MabeamError('INVALID_OPTIONS', `${name} is the login this command runs as; remove it as another admin.`);
      const gone = await withAdmin(endpoints, logger(), (a) => removeAcls(a, name, opts.prefix));
      await deleteScramUser({ bootstrap: endpoints.kafkaBrokers, admin, username: name });
      const forgotten = await forgetBinding(bindingsFile, name, opts.prefix);
      out(`user ${name}: credential deleted, ${gone.length} ACLs deleted${forgotten ? ', binding forgotten' : ''}`);
    });

  users
    .command('list')
    .description('the recorded bindings: user, role, prefix, pools')
    .option('--bindings <file>', 'where bindings are kept')
    .option('--json', 'print the bindings as JSON')
    .action(async (opts: { bindings?: string; json?: boolean }) => {
      const { bindingsFile } = await target(program, opts.bindings);
      const bindings = await readBindings(bindingsFile);
      if (opts.json) {
        out(JSON.stringify({ bindingsFile, bindings }));
        return;
      }
      if (bindings.length === 0) {
        out(`no users recorded in ${bindingsFile}`);
        return;
      }
      out(table([['user', 'role', 'prefix', 'pools'], ...bindings.map((b) => [b.user, b.role, b.prefix, (b.pools ?? []).join(',')])]));
    });

  const acl = program.command('acl').description('Kafka ACLs of each role, from security/roles.json');

  acl
    .command('apply')
    .description('make the ACLs of the recorded users (or those given) exactly what their roles declare: missing ones created, others under the prefix deleted (idempotent)')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--user <name:role[:pools]>', 'a binding to apply (repeatable; default: the recorded ones of the prefix)', collect)
    .option('--bindings <file>', 'where bindings are kept')
    .option('--roles <file>', 'the roles file (default security/roles.json)')
    .option('--json', 'print the changes as JSON')
    .action(async (opts: { prefix: string; user?: string[]; bindings?: string; roles?: string; json?: boolean }) => {
      const { endpoints, bindingsFile } = await target(program, opts.bindings);
      requireLogin(endpoints);
      const roles = await loadRoles(opts.roles);
      const bindings = opts.user ? opts.user.map((u) => parseBinding(u, opts.prefix)) : (await readBindings(bindingsFile)).filter((b) => b.prefix === opts.prefix);
      if (bindings.length === 0) {
        throw new MabeamError('INVALID_OPTIONS', `No users are recorded for prefix "${opts.prefix}" in ${bindingsFile}: add them with \`mabeam users add NAME --role ROLE\`, or name them with --user NAME:ROLE.`);
      }
      const changes = await withAdmin(endpoints, logger(), (a) => applyAcls(a, roles, bindings, opts.prefix));
      if (opts.user) for (const b of bindings) await recordBinding(bindingsFile, b);
      if (opts.json) {
        out(JSON.stringify({ prefix: opts.prefix, changes: changes.map((c) => ({ user: c.user, role: c.role, created: c.created.map(describeAcl), deleted: c.deleted.map(describeAcl), unchanged: c.unchanged })) }));
        return;
      }
      printChanges(changes);
    });

  acl
    .command('list')
    .description('the ACLs Kafka holds, for one user or all')
    .option('--user <name>', 'only this user')
    .option('--json', 'print the ACLs as JSON')
    .action(async (opts: { user?: string; json?: boolean }) => {
      const { endpoints } = await target(program);
      requireLogin(endpoints);
      const entries = await withAdmin(endpoints, logger(), (a) => aclsOf(a, opts.user));
      if (opts.json) {
        out(JSON.stringify({ acls: entries.map((e) => ({ principal: e.principal, acl: describeAcl(e) })) }));
        return;
      }
      if (entries.length === 0) out(opts.user ? `no ACLs for ${opts.user}: it may do nothing` : 'no ACLs');
      else out(table(entries.map((e) => [e.principal, describeAcl(e)]).sort((a, b) => a.join().localeCompare(b.join()))));
    });
}

/** The password file of a registry user of the local stack, written from its credentials on first need. */
async function registryPasswordFileOf(stateDir: string, user: 'admin' | 'reader'): Promise<string | undefined> {
  try {
    const credentials = await readStackCredentials(stateDir);
    if (!credentials) return undefined;
    const file = join(stateDir, passwordFolderName, `registry-${user}.password`);
    await writePrivateFile(file, credentials.registry[user]);
    return file;
  } catch (error) {
    progress(`note: the registry login could not be written to a file: ${describeError(error)}`);
    return undefined;
  }
}
