import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { createKafka, createProducer, kafkaFor } from '../../src/kafka/client.ts';
import { readToEnd } from '../../src/kafka/readToEnd.ts';
import { silentLogger } from '../../src/log/logger.ts';
import { readLog } from '../../src/replay/readLog.ts';
import { registerCatalog, registryTargetFor } from '../../src/schemas/registry.ts';
import { applyAcls } from '../../src/security/acl.ts';
import { explainKafkaError } from '../../src/security/kafkaErrors.ts';
import { loadRoles, type Binding } from '../../src/security/roles.ts';
import { upsertScramUser } from '../../src/stack/scram.ts';
import type { StackEndpoints } from '../../src/stack/types.ts';
import { runAgentProcess, runCli, runCliProcess, stopAgentProcess } from '../agentProcesses.ts';
import { secureStack, testContext, type TestContext } from '../helpers.ts';

/**
 * Least privilege on the secure stack: each role runs as its own principal
 * with only the ACLs security/roles.json gives it, and the real components
 * still coordinate — while what a role may not do is refused by the broker.
 */
const bidder = fileURLToPath(new URL('../fixtures/agents/bidder.ts', import.meta.url));

let ctx: TestContext;
let secure: ReturnType<typeof secureStack>;
/** Endpoints logged in as each user (the registry as its read-only user, except the admin). */
const as: Record<string, StackEndpoints> = {};
const passwords: Record<string, string> = {};

const bindings: Binding[] = [
  { user: 'coord', role: 'coordinator' },
  { user: 'owner1', role: 'owner' },
  // One principal for two pools: each pool is its own consumer group (its agents' replicas share it).
  { user: 'pool-a', role: 'agent', pools: ['pool-a', 'pool-a2'] },
  { user: 'client1', role: 'client' },
];

/** The environment of a process run as `user`. */
const envOf = (user: string): Record<string, string> => ({
  KAFKA_SASL_USERNAME: user,
  KAFKA_SASL_PASSWORD: passwords[user]!,
  SCHEMA_REGISTRY_USERNAME: 'reader',
  SCHEMA_REGISTRY_PASSWORD: secure.credentials.registry.reader,
});

beforeAll(async () => {
  secure = secureStack();
  let started = Date.now();
  ctx = await testContext('roles', { stack: secure.stack });
  process.stderr.write(`topics in ${Date.now() - started} ms\n`);
  started = Date.now();
  // Schemas are registered once, by the admin: every other role only reads the registry.
  await registerCatalog(ctx.registry, registryTargetFor(secure.stack), ctx.catalog);
  process.stderr.write(`schemas in ${Date.now() - started} ms\n`);
  const roles = await loadRoles();
  started = Date.now();
  await Promise.all(
    bindings.map(async (b) => {
      passwords[b.user] = `pw-${b.user}-${Math.random().toString(36).slice(2)}`;
      await upsertScramUser({ bootstrap: secure.stack.kafkaBrokers, admin: secure.stack.kafkaSasl!, username: b.user, password: passwords[b.user]! });
      as[b.user] = { ...secure.stack, kafkaSasl: { mechanism: 'scram-sha-512', username: b.user, password: passwords[b.user]! }, registryAuth: { username: 'reader', password: secure.credentials.registry.reader } };
    }),
  );
  process.stderr.write(`users created in ${Date.now() - started} ms\n`);
  await applyAcls(ctx.admin, roles, bindings, ctx.prefix);
}, 120_000);
afterAll(() => ctx?.close());

/** What a Kafka call failed with, as the product says it. */
async function refusal(work: () => Promise<unknown>, user?: string): Promise<string> {
  try {
    await work();
  } catch (error) {
    const explained = explainKafkaError(error, user ? { user } : {});
    return `${explained?.code ?? 'UNEXPLAINED'}: ${explained?.message ?? String(error)}`;
  }
  return 'ALLOWED';
}

describe('mabeam users and mabeam acl', () => {
  it('adds a user with a role (credential, ACLs, binding), applies again idempotently, lists, and removes it', { timeout: 120_000 }, async () => {
    const dir = await mkdtemp(join(tmpdir(), 'mabeam-users-'));
    const bindingsFile = join(dir, 'principals.json');
    const cli = (args: string[]) => runCli(secure.stack, [...args, '--bindings', bindingsFile], {}, 90_000);
    const added = await cli(['users', 'add', 'watcher', '--role', 'client', '--prefix', ctx.prefix, '--json']);
    expect(added.stderr).not.toMatch(/mabeam:/);
    expect(added.code).toBe(0);
    const result = JSON.parse(added.stdout) as { user: string; role: string; acls: number; passwordFile: string; env: string[] };
    expect(result).toMatchObject({ user: 'watcher', role: 'client', acls: expect.any(Number) });
    expect(result.acls).toBeGreaterThan(10);
    expect(result.env).toContain(`export KAFKA_SASL_PASSWORD_FILE=${result.passwordFile}`);
    // The new user logs in with the password file it was given and may read outcomes, not round state.
    const watcher = kafkaFor({ ...secure.stack, kafkaSasl: { mechanism: 'scram-sha-512', username: 'watcher', password: (await readFile(result.passwordFile, 'utf8')).trim() } }, 'watcher', silentLogger(), { retry: { retries: 1 } });
    await readToEnd(watcher, { topics: [ctx.topic('outcomes')], onRecord: () => undefined, timeoutMs: 15_000 });
    expect(await refusal(() => readToEnd(watcher, { topics: [ctx.topic('round-state')], onRecord: () => undefined, timeoutMs: 15_000 }), 'watcher')).toMatch(/^KAFKA_NOT_AUTHORIZED/);

    const again = await cli(['acl', 'apply', '--prefix', ctx.prefix, '--json']);
    expect(again.code).toBe(0);
    expect(JSON.parse(again.stdout).changes).toEqual([{ user: 'watcher', role: 'client', created: [], deleted: [], unchanged: result.acls }]);
    const listed = await cli(['users', 'list', '--json']);
    expect(JSON.parse(listed.stdout).bindings).toEqual([{ user: 'watcher', role: 'client', prefix: ctx.prefix }]);
    const acls = await runCli(secure.stack, ['acl', 'list', '--user', 'watcher']);
    expect(acls.stdout).toContain(`User:watcher  READ topic ${ctx.topic('outcomes')}`);
    expect(acls.stdout).not.toContain('round-state');

    const removed = await cli(['users', 'remove', 'watcher', '--prefix', ctx.prefix]);
    expect(removed.code).toBe(0);
    expect(removed.stdout).toMatch(new RegExp(`user watcher: credential deleted, ${result.acls} ACLs deleted, binding forgotten`));
    expect(await refusal(() => watcher.admin().connect(), 'watcher')).toMatch(/^KAFKA_AUTHENTICATION_FAILED/);
  });

  it('says plainly that a plain cluster has no users to manage', async () => {
    const r = await runCli(inject('stack'), ['users', 'add', 'x', '--role', 'agent', '--bindings', join(tmpdir(), 'mabeam-none.json')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/reached without a login, so it has no users or ACLs to manage.*\[INVALID_CREDENTIALS\]/);
  });
});

describe('who may say what (SASL/SCRAM, ACLs)', () => {
  it('refuses a client without a login and one with a wrong password', async () => {
    const anonymous = createKafka({ brokers: secure.stack.kafkaBrokers, clientId: 'anon', logger: silentLogger(), config: { retry: { retries: 0 }, connectionTimeout: 2_000 } }).admin();
    expect(await refusal(async () => { await anonymous.connect(); await anonymous.listTopics(); })).not.toBe('ALLOWED');
    await anonymous.disconnect().catch(() => undefined);
    const wrong = kafkaFor({ ...secure.stack, kafkaSasl: { mechanism: 'scram-sha-512', username: 'client1', password: 'not-the-password' } }, 'wrong', silentLogger(), { retry: { retries: 0 } }).admin();
    expect(await refusal(() => wrong.connect(), 'client1')).toMatch(/^KAFKA_AUTHENTICATION_FAILED: Kafka refused the login of "client1": unknown user or wrong password/);
    await wrong.disconnect().catch(() => undefined);
  });

  it('refuses an agent writing outcomes, a client reading round state, and an agent joining another pool\'s group', async () => {
    const agentKafka = kafkaFor(as['pool-a']!, 'pool-a', silentLogger(), { retry: { retries: 1 } });
    const producer = createProducer(agentKafka);
    await producer.connect();
    ctx.defer(() => producer.disconnect());
    expect(await refusal(() => producer.send({ topic: ctx.topic('outcomes'), messages: [{ key: 'r', value: 'forged outcome' }] }), 'pool-a')).toMatch(/^KAFKA_NOT_AUTHORIZED: Kafka denied "pool-a" a topic \(TOPIC_AUTHORIZATION_FAILED\)/);
    // What it may write, it writes.
    await producer.send({ topic: ctx.topic('heartbeats'), messages: [{ key: 'a', value: 'not avro, but allowed' }] });

    const clientKafka = kafkaFor(as['client1']!, 'client1', silentLogger(), { retry: { retries: 1 } });
    expect(await refusal(() => readToEnd(clientKafka, { topics: [ctx.topic('round-state')], onRecord: () => undefined, timeoutMs: 15_000 }), 'client1')).toMatch(/^KAFKA_NOT_AUTHORIZED: .*"client1"/);
    // It may read outcomes.
    await readToEnd(clientKafka, { topics: [ctx.topic('outcomes')], onRecord: () => undefined, timeoutMs: 15_000 });

    const other = agentKafka.consumer({ groupId: `${ctx.prefix}.agents.pool-b`, retry: { retries: 1 } });
    ctx.defer(() => other.disconnect());
    expect(
      await refusal(async () => {
        await other.connect();
        await other.subscribe({ topic: ctx.topic('bid-requests') });
        await new Promise<void>((resolve, reject) => {
          other.on(other.events.CRASH, ({ payload }) => reject(payload.error));
          other.on(other.events.GROUP_JOIN, () => resolve());
          void other.run({ eachMessage: async () => undefined }).catch(reject);
        });
      }, 'pool-a'),
    ).toMatch(/^KAFKA_NOT_AUTHORIZED: .*(GROUP_AUTHORIZATION_FAILED|a consumer group)/);
  }, 60_000);

  it('runs a round with each role as its own principal: coordinator, agent processes of one pool, a client from the command line', { timeout: 120_000 }, async () => {
    const coordinator = runCliProcess(secure.stack, ['coordinator', 'run', '--prefix', ctx.prefix], envOf('coord'));
    ctx.defer(() => stopAgentProcess(coordinator));
    const agents = [['alpha', '10', 'pool-a'], ['bravo', '30', 'pool-a2']].map(([id, price, pool]) => {
      const p = runAgentProcess(secure.stack, bidder, ['--prefix', ctx.prefix, '--pool', pool!], { ...envOf('pool-a'), FIXTURE_AGENT_ID: id!, BID_PRICE: price! });
      ctx.defer(() => stopAgentProcess(p));
      return p;
    });
    await Promise.all([coordinator.ready, ...agents.map((a) => a.ready)]);
    const r = await runCli(secure.stack, ['round', 'start', '--prefix', ctx.prefix, '--protocol', 'first-price', '--bidders', 'alpha,bravo', '--item', '"x"', '--deadline', '30s'], envOf('client1'), 90_000);
    expect(r.stderr).not.toMatch(/AUTHORIZATION|denied/);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^winners\s+bravo$/m);
    const outcomes = await readLog(ctx.kafka, ctx.codec, [ctx.topic('outcomes')]);
    expect(outcomes.filter((o) => o.decoded.type === 'RoundOutcome')).toHaveLength(1);
  });

  it('changes a variable with the owner and the client as their own principals (Redis with its password)', { timeout: 120_000 }, async () => {
    const owner = runCliProcess(secure.stack, ['orchestrator', 'run', '--prefix', ctx.prefix], envOf('owner1'));
    ctx.defer(() => stopAgentProcess(owner));
    await owner.ready;
    const dir = await mkdtemp(join(tmpdir(), 'mabeam-roles-'));
    await writeFile(join(dir, 'v.json'), JSON.stringify({ id: 'replicas', type: 'custom', valueType: { kind: 'integer', min: 1, max: 64 }, initial: 2, constraints: {} }));
    const defined = await runCli(secure.stack, ['var', 'define', join(dir, 'v.json'), '--prefix', ctx.prefix], envOf('client1'));
    expect(defined.stderr).toBe('');
    expect(defined.code).toBe(0);
    const set = await runCli(secure.stack, ['var', 'set', 'replicas', '8', '--prefix', ctx.prefix], envOf('client1'));
    expect(set.code).toBe(0);
    expect(JSON.parse(set.stdout)).toMatchObject({ id: 'replicas', version: 2, value: 8 });
  });
});
