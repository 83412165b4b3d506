import { mkdtemp, readFile, rm, stat } from 'node:fs/promises';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { Kafka, logLevel, type SASLOptions } from 'kafkajs';
import { beforeAll, describe, expect, inject, it } from 'vitest';
import { MabeamError } from '../../src/errors.ts';
import { credentialsFile, readStackCredentials, type StackCredentials } from '../../src/stack/credentials.ts';
import { readStackState, stackStatus, startStack, stopStack, type StackState } from '../../src/stack/index.ts';
import { basicAuthHeader } from '../../src/stack/registry.ts';
import { deleteScramUser, upsertScramUser } from '../../src/stack/scram.ts';
import { writeStackState } from '../../src/stack/state.ts';

/** A client of its own, logged in as given (or not at all): what an outsider would build. */
function kafka(state: StackState, sasl?: SASLOptions): Kafka {
  return new Kafka({
    brokers: state.endpoints.kafkaBrokers,
    clientId: 'secure-stack-test',
    logLevel: logLevel.NOTHING,
    retry: { retries: 0 },
    connectionTimeout: 3_000,
    ...(sasl ? { sasl } : {}),
  });
}

/** What an admin call ends in: its error's name and message, or "ok". */
async function adminCall(client: Kafka, call: (admin: ReturnType<Kafka['admin']>) => Promise<unknown>): Promise<{ name: string; message: string; types: string[] }> {
  const admin = client.admin();
  try {
    await admin.connect();
    await call(admin);
    return { name: 'ok', message: '', types: [] };
  } catch (error) {
    return { name: (error as Error).name, message: (error as Error).message, types: errorTypes(error) };
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/** The Kafka error codes (kafkajs's `type`) anywhere in an error, its causes and aggregated errors. */
function errorTypes(error: unknown): string[] {
  const e = error as { type?: string; cause?: unknown; errors?: unknown[] } | undefined;
  if (!e || typeof e !== 'object') return [];
  return [...(e.type ? [e.type] : []), ...errorTypes(e.cause), ...(e.errors ?? []).flatMap(errorTypes)];
}

/** Sends inline commands to Redis and returns one reply line per command. */
function redisReplies(port: number, commands: string[]): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let received = '';
    socket.setTimeout(5_000, () => socket.destroy(new Error(`Redis on ${port} did not answer: ${JSON.stringify(received)}`)));
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      received += chunk.toString('utf8');
      const lines = received.split('\r\n').filter(Boolean);
      if (lines.length >= commands.length) {
        socket.end();
        resolve(lines.slice(0, commands.length));
      }
    });
    socket.write(commands.map((c) => `${c}\r\n`).join(''));
  });
}

async function mode(path: string): Promise<string> {
  return ((await stat(path)).mode & 0o777).toString(8);
}

const schema = (name: string): string => JSON.stringify({ schema: JSON.stringify({ type: 'record', name, fields: [{ name: 'id', type: 'string' }] }) });

async function register(state: StackState, subject: string, name: string, login?: { username: string; password: string }): Promise<number> {
  const response = await fetch(`${state.endpoints.schemaRegistryUrl}/subjects/${subject}/versions`, {
    method: 'POST',
    headers: { 'content-type': 'application/vnd.schemaregistry.v1+json', ...(login ? { authorization: basicAuthHeader(login) } : {}) },
    body: schema(name),
  });
  await response.arrayBuffer();
  return response.status;
}

async function read(url: string, login?: { username: string; password: string }): Promise<number> {
  const response = await fetch(url, { headers: login ? { authorization: basicAuthHeader(login) } : {} });
  await response.arrayBuffer();
  return response.status;
}

describe('secure local stack', () => {
  let state: StackState;
  let credentials: StackCredentials;
  const admin = (): SASLOptions => ({ mechanism: 'scram-sha-512', username: 'admin', password: credentials.kafka.admin });

  // The run's shared secure stack (test/globalSetup.ts): it is started, and stopped, there.
  beforeAll(async () => {
    const dir = inject('secureStateDir');
    if (!dir) throw new Error('The secure test stack was not started (MABEAM_TEST_SECURE_STACK=0): these tests need it.');
    state = (await readStackState(dir))!;
    credentials = (await readStackCredentials(state.dir)) as StackCredentials;
  });

  it('records that it is secure, with the admin logins, and keeps every password in 0600 files and off command lines', async () => {
    expect(state.secure).toEqual({ credentialsFile: credentialsFile(state.dir) });
    expect(credentials.registry).toEqual({ admin: expect.any(String), developer: expect.any(String), reader: expect.any(String) });
    const redisPort = state.services.find((s) => s.name === 'redis')?.ports?.client;
    expect(state.endpoints).toMatchObject({
      kafkaSasl: { mechanism: 'scram-sha-512', username: 'admin', password: credentials.kafka.admin },
      registryAuth: { username: 'admin', password: credentials.registry.admin },
      redisUrl: `redis://:${credentials.redis}@127.0.0.1:${redisPort}`,
    });
    const privateFiles = ['credentials.json', 'stack.json', 'kafka/server.properties', 'registry/config/application.properties', 'redis/redis.conf'];
    expect(await Promise.all(privateFiles.map((f) => mode(join(state.dir, f))))).toEqual(privateFiles.map(() => '600'));
    const secrets = [credentials.kafka.admin, credentials.redis, ...Object.values(credentials.registry)];
    for (const service of state.services) {
      const cmdline = (await readFile(`/proc/${service.pid}/cmdline`, 'utf8')).replaceAll('\0', ' ');
      expect(secrets.filter((s) => cmdline.includes(s)), `${service.name}: ${cmdline}`).toEqual([]);
    }
  });

  it('answers its own authenticated probes: status says running, and a second start reuses it', async () => {
    const status = await stackStatus({ name: state.name, ephemeral: true, secure: true, stateDir: state.dir });
    expect(status.services.map((s) => [s.name, s.health])).toEqual([
      ['kafka', 'running'],
      ['registry', 'running'],
      ['redis', 'running'],
    ]);
    const again = await startStack({ name: state.name, ephemeral: true, secure: true, stateDir: state.dir });
    expect(again.report.reused).toBe(true);
  });

  it('refuses to start a secure stack plain, or a plain one secure', async () => {
    await expect(startStack({ name: state.name, ephemeral: true, stateDir: state.dir })).rejects.toMatchObject({
      code: 'STACK_SECURITY_MISMATCH',
      message: expect.stringMatching(/is secure; it cannot be started plain/),
    });
    const plainDir = await mkdtemp(join(tmpdir(), 'mabeam-plain-'));
    try {
      // The record a plain stack leaves after `dev down`.
      const { secure: _secure, ...plain } = state;
      await writeStackState({ ...plain, name: 'plain', dir: plainDir, stoppedAt: new Date().toISOString(), endpoints: { kafkaBrokers: ['127.0.0.1:1'], schemaRegistryUrl: 'http://127.0.0.1:2', redisUrl: 'redis://127.0.0.1:3' } });
      const refused = await startStack({ name: 'plain', stateDir: plainDir, secure: true }).catch((e: unknown) => e);
      expect(refused).toBeInstanceOf(MabeamError);
      expect(refused).toMatchObject({ code: 'STACK_SECURITY_MISMATCH', message: expect.stringContaining('mabeam --stack secure dev up --secure') });
    } finally {
      await rm(plainDir, { recursive: true, force: true });
    }
  });

  it('Kafka: refuses anonymous clients and wrong passwords; the admin creates a topic', async () => {
    const anonymous = await adminCall(kafka(state), (a) => a.listTopics());
    const wrong = await adminCall(kafka(state, { mechanism: 'scram-sha-512', username: 'admin', password: 'not-the-password' }), (a) => a.listTopics());
    process.stderr.write(`secure stack, kafkajs errors: anonymous ${JSON.stringify(anonymous)}; wrong password ${JSON.stringify(wrong)}\n`);
    // The SASL listener closes a connection that sends requests without authenticating.
    expect(anonymous.name).toBe('KafkaJSConnectionClosedError');
    expect(wrong).toMatchObject({ name: 'KafkaJSSASLAuthenticationError', message: expect.stringContaining('invalid credentials with SASL mechanism SCRAM-SHA-512') });

    const created = await adminCall(kafka(state, admin()), async (a) => {
      await a.createTopics({ topics: [{ topic: 'secure.admin-topic', numPartitions: 1 }], waitForLeaders: true });
      expect(await a.listTopics()).toContain('secure.admin-topic');
    });
    expect(created.name).toBe('ok');
  });

  it('Kafka: a SCRAM user added at runtime logs in but has no rights without ACLs; a deleted one cannot log in', { timeout: 120_000 }, async () => {
    const bootstrap = state.endpoints.kafkaBrokers;
    const kafkaAdmin = { mechanism: 'scram-sha-512' as const, username: 'admin', password: credentials.kafka.admin };
    const password = 'agent-pässword "quoted" \\ = ok';
    const begun = Date.now();
    await upsertScramUser({ bootstrap, admin: kafkaAdmin, username: 'agent-1', password });
    process.stderr.write(`secure stack: upsertScramUser took ${Date.now() - begun} ms\n`);
    const agent = kafka(state, { mechanism: 'scram-sha-512', username: 'agent-1', password });

    // Logged in: listing works, and shows nothing it may not describe.
    let topics: string[] = [];
    expect((await adminCall(agent, async (a) => (topics = await a.listTopics()))).name).toBe('ok');
    expect(topics).not.toContain('secure.admin-topic');
    const create = await adminCall(agent, (a) => a.createTopics({ topics: [{ topic: 'secure.agent-topic' }] }));
    expect(create.types).toContain('TOPIC_AUTHORIZATION_FAILED');

    const producer = agent.producer();
    await producer.connect();
    const produced = await producer.send({ topic: 'secure.admin-topic', messages: [{ value: 'x' }] }).catch((e: unknown) => e as Error);
    await producer.disconnect();
    process.stderr.write(`secure stack, kafkajs errors: create ${JSON.stringify(create)}; produce ${(produced as Error).name}: ${(produced as Error).message} ${JSON.stringify(errorTypes(produced))}\n`);
    expect(produced).toBeInstanceOf(Error);
    expect((produced as Error).message).toMatch(/Not authorized to access topics/);

    // Upsert again changes the password.
    await upsertScramUser({ bootstrap, admin: kafkaAdmin, username: 'agent-1', password: 'second' });
    expect((await adminCall(agent, (a) => a.listTopics())).name).toBe('KafkaJSSASLAuthenticationError');

    await expect(upsertScramUser({ bootstrap, admin: { ...kafkaAdmin, password: 'wrong' }, username: 'agent-2', password: 'p' })).rejects.toMatchObject({
      code: 'KAFKA_AUTHENTICATION_FAILED',
      message: expect.stringContaining('wrong user name or password'),
    });

    expect(await deleteScramUser({ bootstrap, admin: kafkaAdmin, username: 'agent-1' })).toBe(true);
    expect(await deleteScramUser({ bootstrap, admin: kafkaAdmin, username: 'agent-1' })).toBe(false);
    expect((await adminCall(kafka(state, { mechanism: 'scram-sha-512', username: 'agent-1', password: 'second' }), (a) => a.listTopics())).name).toBe(
      'KafkaJSSASLAuthenticationError',
    );
  });

  it('registry: anonymous 401, the reader reads but may not write (403), the developer and the admin register; health stays open', async () => {
    const url = state.endpoints.schemaRegistryUrl;
    const reader = { username: 'reader', password: credentials.registry.reader };
    const developer = { username: 'developer', password: credentials.registry.developer };
    const registryAdmin = { username: 'admin', password: credentials.registry.admin };
    expect(await register(state, 'secure-anonymous-value', 'A')).toBe(401);
    expect(await read(`${url}/subjects`)).toBe(401);
    expect(await register(state, 'secure-reader-value', 'R', reader)).toBe(403);
    expect(await register(state, 'secure-developer-value', 'D', developer)).toBe(200);
    expect(await register(state, 'secure-admin-value', 'M', registryAdmin)).toBe(200);
    expect(await read(`${url}/subjects`, reader)).toBe(200);
    expect(await read(`${url}/subjects/secure-developer-value/versions/latest`, reader)).toBe(200);
    expect(await register(state, 'secure-developer-value', 'D', { ...developer, password: 'wrong' })).toBe(401);
    const management = state.services.find((s) => s.name === 'registry')?.ports?.management;
    expect(await read(`http://127.0.0.1:${management}/health/ready`)).toBe(200);
  });

  it('Redis: refuses a command without the password and runs it with', async () => {
    const port = state.services.find((s) => s.name === 'redis')?.ports?.client as number;
    // Plain RESP over a socket: ioredis itself will not even connect unauthenticated (its HELLO is refused).
    expect(await redisReplies(port, ['SET secure-test 1'])).toEqual([expect.stringMatching(/^-NOAUTH/)]);
    expect(await redisReplies(port, ['AUTH wrong', 'GET secure-test'])).toEqual([expect.stringMatching(/^-WRONGPASS/), expect.stringMatching(/^-NOAUTH/)]);
    expect(await redisReplies(port, [`AUTH ${credentials.redis}`, 'SET secure-test 1'])).toEqual(['+OK', '+OK']);
    const client = new Redis(state.endpoints.redisUrl);
    try {
      expect(await client.get('secure-test')).toBe('1');
    } finally {
      client.disconnect();
    }
  });
});

describe('secure local stack, lasting', () => {
  it('keeps its passwords across a stop and a start: Kafka logs the admin in from its data, the registry and Redis take the same ones', { timeout: 300_000 }, async () => {
    const stateDir = await mkdtemp(join(tmpdir(), 'mabeam-secure-lasting-'));
    let running: StackState | undefined;
    try {
      running = (await startStack({ name: 'secure-lasting', stateDir, secure: true })).state;
      const first = await readStackCredentials(stateDir);
      await stopStack(running);
      running = undefined;
      const second = await startStack({ name: 'secure-lasting', stateDir, secure: true });
      running = second.state;
      expect(second.report.reused).toBe(false);
      expect(await readStackCredentials(stateDir)).toEqual(first);
      expect(second.state.endpoints.kafkaSasl?.password).toBe(first?.kafka.admin);
      const status = await stackStatus({ name: 'secure-lasting', stateDir, secure: true });
      expect(status.services.map((s) => s.health)).toEqual(['running', 'running', 'running']);
    } finally {
      if (running) await stopStack(running);
      await rm(stateDir, { recursive: true, force: true });
    }
  });
});
