import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readStackState, stopStack, type ServiceName, type StackState } from '../../src/stack/index.ts';
import { isAlive } from '../../src/stack/processes.ts';
import { writeStackState } from '../../src/stack/state.ts';

/**
 * `mabeam dev …` as a person runs it: the real CLI in a child process, on a
 * lasting (non-ephemeral) stack of real Kafka, registry and Redis processes.
 * The stack has a name of its own and its state in a temporary folder
 * (MABEAM_STATE_DIR), so no other stack on the machine is seen or touched.
 * The tests run in order on that one stack: each leaves it running.
 */

const root = fileURLToPath(new URL('../..', import.meta.url));
const node = join(root, 'node_modules', '.bin', 'node');
const cli = join(root, 'src', 'cli', 'main.ts');
const name = `t-honesty-${randomBytes(3).toString('hex')}`;
const addressVariables = ['KAFKA_BROKERS', 'SCHEMA_REGISTRY_URL', 'REDIS_URL'] as const;

let stateRoot = '';
let stateDir = '';

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `mabeam --stack <name> …` with the given address variables (and no others) in its environment. */
function mabeam(args: string[], addresses: Partial<Record<(typeof addressVariables)[number], string>> = {}): Promise<CliResult> {
  const env: NodeJS.ProcessEnv = { ...process.env, MABEAM_STATE_DIR: stateRoot, ...addresses };
  for (const variable of addressVariables) if (addresses[variable] === undefined) delete env[variable];
  return new Promise((resolve) => {
    execFile(node, [cli, '--stack', name, ...args], { env, cwd: root, timeout: 300_000 }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : 1) : 0;
      resolve({ code, stdout, stderr });
    });
  });
}

async function record(): Promise<StackState> {
  const state = await readStackState(stateDir);
  if (!state) throw new Error(`no stack record in ${stateDir}`);
  return state;
}

const service = (state: StackState, which: ServiceName) => {
  const s = state.services.find((x) => x.name === which);
  if (!s) throw new Error(`the record has no ${which}`);
  return s;
};
const pidOf = (state: StackState, which: ServiceName): number => service(state, which).pid ?? 0;

/** The environment `eval $(mabeam dev env)` leaves behind. */
function exported(stdout: string): Record<(typeof addressVariables)[number], string> {
  const lines = Object.fromEntries([...stdout.matchAll(/^export (\w+)=(.*)$/gm)].map((m) => [m[1], m[2]]));
  return { KAFKA_BROKERS: lines['KAFKA_BROKERS'] ?? '', SCHEMA_REGISTRY_URL: lines['SCHEMA_REGISTRY_URL'] ?? '', REDIS_URL: lines['REDIS_URL'] ?? '' };
}

/** Waits until a killed process is gone; fails instead of waiting forever. */
async function gone(pid: number): Promise<void> {
  for (let i = 0; i < 200 && isAlive(pid); i++) await sleep(50);
  expect(isAlive(pid)).toBe(false);
}

/** One `dev status` line per service: name, health (two words for NOT ANSWERING), … */
function healthOf(stdout: string, which: ServiceName): string {
  const line = stdout.split('\n').find((l) => l.startsWith(`${which} `)) ?? '';
  return /^\S+\s+(running|STOPPED|NOT ANSWERING)\s/.exec(line)?.[1] ?? `no line for ${which} in:\n${stdout}`;
}

function listen(port: number): Promise<Server> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen({ port, host: '127.0.0.1', exclusive: true }, () => resolve(server));
  });
}

describe('mabeam dev: the local stack is what its record says', { timeout: 300_000 }, () => {
  beforeAll(async () => {
    stateRoot = await mkdtemp(join(tmpdir(), 'mabeam-honesty-'));
    stateDir = join(stateRoot, 'stacks', name);
    const up = await mabeam(['dev', 'up']);
    expect(up.stderr).not.toMatch(/mabeam: /);
    expect(up.code).toBe(0);
  }, 300_000);

  afterAll(async () => {
    const state = await readStackState(stateDir);
    if (state) await stopStack(state, { timeoutMs: 10_000 });
    await rm(stateRoot, { recursive: true, force: true });
  }, 60_000);

  it('dev up in a shell that exports addresses reuses the stack, stops nothing and records no foreign address', async () => {
    const before = await record();
    const env = exported((await mabeam(['dev', 'env'])).stdout);
    expect(env.KAFKA_BROKERS).toBe(before.endpoints.kafkaBrokers.join(','));

    // As `eval $(mabeam dev env)` leaves the shell: the stack's own addresses.
    const same = await mabeam(['dev', 'up'], env);
    expect(same.code).toBe(0);
    expect(same.stderr).toMatch(/KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL are set in this shell; `dev up` does not manage them/);
    expect(same.stderr).toMatch(/already running, reused/);
    expect(exported(same.stdout)).toEqual(env);

    // Addresses of services that do not exist: still the stack's own, and the user is told where commands here would go.
    const elsewhere = { KAFKA_BROKERS: '127.0.0.1:1', SCHEMA_REGISTRY_URL: 'http://127.0.0.1:2/apis/ccompat/v7', REDIS_URL: 'redis://127.0.0.1:3' };
    const other = await mabeam(['dev', 'up'], elsewhere);
    expect(other.code).toBe(0);
    expect(other.stderr).toContain(`KAFKA_BROKERS=127.0.0.1:1 is not this stack's ${env.KAFKA_BROKERS}`);
    expect(exported(other.stdout)).toEqual(env);

    const after = await record();
    expect(after).toEqual(before);
    expect(after.services.map((s) => s.origin)).toEqual(['started', 'started', 'started']);
    expect(after.services.every((s) => s.pid !== undefined && isAlive(s.pid))).toBe(true);
    const status = await mabeam(['dev', 'status'], elsewhere);
    expect(status.code).toBe(0);
    expect((['kafka', 'registry', 'redis'] as const).map((s) => healthOf(status.stdout, s))).toEqual(['running', 'running', 'running']);
  });

  it('dev up with the addresses exported and the broker dead restarts only the broker, on its port, and records it as started', async () => {
    const before = await record();
    const env = exported((await mabeam(['dev', 'env'])).stdout);
    const kafka = pidOf(before, 'kafka');
    process.kill(kafka, 'SIGKILL');
    await gone(kafka);

    const up = await mabeam(['dev', 'up'], env);
    expect(up.code).toBe(0);
    const after = await record();
    // The registry and Redis ran on: a start never stops a live service of its own.
    expect([pidOf(after, 'registry'), pidOf(after, 'redis')]).toEqual([pidOf(before, 'registry'), pidOf(before, 'redis')]);
    expect(isAlive(pidOf(after, 'registry')) && isAlive(pidOf(after, 'redis'))).toBe(true);
    expect(pidOf(after, 'kafka')).not.toBe(kafka);
    expect(after.endpoints).toEqual(before.endpoints);
    expect(service(after, 'kafka').ports).toEqual(service(before, 'kafka').ports);
    expect(after.services.map((s) => s.origin)).toEqual(['started', 'started', 'started']);
    expect(up.stderr).toMatch(/registry and redis still ran, kafka started again/);
    expect((await mabeam(['dev', 'status'], env)).code).toBe(0);
  });

  it('dev status tells a silent service and a dead one from running ones, and exits 1', async () => {
    const state = await record();
    const redis = pidOf(state, 'redis');

    // Stopped with SIGSTOP the process is alive and its port accepts connections, yet nothing answers.
    process.kill(redis, 'SIGSTOP');
    let status: CliResult;
    try {
      status = await mabeam(['dev', 'status']);
    } finally {
      process.kill(redis, 'SIGCONT');
    }
    expect(status.code).toBe(1);
    expect(healthOf(status.stdout, 'redis')).toBe('NOT ANSWERING');
    expect(healthOf(status.stdout, 'kafka')).toBe('running');

    process.kill(redis, 'SIGKILL');
    await gone(redis);
    status = await mabeam(['dev', 'status']);
    expect(status.code).toBe(1);
    expect((['kafka', 'registry', 'redis'] as const).map((s) => healthOf(status.stdout, s))).toEqual(['running', 'running', 'STOPPED']);
  });

  it('dev up starts a dead service again on its recorded port and leaves the live ones be', async () => {
    const before = await record();
    expect(isAlive(pidOf(before, 'redis'))).toBe(false); // left so by the test before

    const up = await mabeam(['dev', 'up']);
    expect(up.code).toBe(0);
    expect(up.stderr).toMatch(/kafka and registry still ran, redis started again/);
    const after = await record();
    expect(after.endpoints).toEqual(before.endpoints);
    expect(service(after, 'redis').ports).toEqual(service(before, 'redis').ports);
    expect(pidOf(after, 'redis')).not.toBe(pidOf(before, 'redis'));
    expect([pidOf(after, 'kafka'), pidOf(after, 'registry')]).toEqual([pidOf(before, 'kafka'), pidOf(before, 'registry')]);
    expect((await mabeam(['dev', 'status'])).code).toBe(0);
  });

  it('a stack stopped with dev down starts again on every port it had', async () => {
    const before = await record();
    const down = await mabeam(['dev', 'down']);
    expect(down.stdout).toContain(`local stack "${name}" stopped`);
    for (const s of before.services) await gone(s.pid ?? 0);

    const stopped = await mabeam(['dev', 'status']);
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toMatch(/stopped at .*starts it again on the same ports/);
    const env = await mabeam(['dev', 'env']);
    expect(env.code).toBe(1);
    expect(env.stderr).toContain('[STACK_NOT_RUNNING]');

    const up = await mabeam(['dev', 'up']);
    expect(up.code).toBe(0);
    expect(up.stderr).not.toMatch(/taken by another process/);
    const after = await record();
    expect(after.endpoints).toEqual(before.endpoints);
    expect(after.services.map((s) => [s.name, s.ports])).toEqual(before.services.map((s) => [s.name, s.ports]));
    expect(after.services.map((s) => s.pid)).not.toContain(before.services[0]?.pid);
    expect((await mabeam(['dev', 'status'])).code).toBe(0);
  });

  it('a recorded port held by another process is replaced, the others kept, and dev up says so', async () => {
    const before = await record();
    const redisPort = service(before, 'redis').ports?.client ?? 0;
    expect((await mabeam(['dev', 'down'])).code).toBe(0);
    for (const s of before.services) await gone(s.pid ?? 0);

    const squatter = await listen(redisPort);
    try {
      const up = await mabeam(['dev', 'up']);
      expect(up.code).toBe(0);
      const after = await record();
      const moved = service(after, 'redis').ports?.client ?? 0;
      expect(moved).not.toBe(redisPort);
      expect(up.stderr).toContain(`redis client port ${redisPort} is taken by another process; moved to ${moved}`);
      expect(after.endpoints.redisUrl).toBe(`redis://127.0.0.1:${moved}`);
      expect([after.endpoints.kafkaBrokers, after.endpoints.schemaRegistryUrl]).toEqual([before.endpoints.kafkaBrokers, before.endpoints.schemaRegistryUrl]);
      expect((await mabeam(['dev', 'status'])).code).toBe(0);
    } finally {
      await new Promise((resolve) => squatter.close(resolve));
    }
  });

  it('a record older versions left, with the environment\'s addresses as the services, is reported dead and brought back on those ports', async () => {
    const before = await record();
    expect((await mabeam(['dev', 'down'])).code).toBe(0);
    for (const s of before.services) await gone(s.pid ?? 0);
    // What `dev up` used to write in a shell with the three variables exported: addresses, no processes.
    const { stoppedAt: _stoppedAt, ...rest } = await record();
    await writeStackState({ ...rest, services: rest.services.map((s) => ({ name: s.name, origin: 'environment' as const, address: s.address })) });

    const status = await mabeam(['dev', 'status']);
    expect(status.code).toBe(1);
    expect((['kafka', 'registry', 'redis'] as const).map((s) => healthOf(status.stdout, s))).toEqual(['STOPPED', 'STOPPED', 'STOPPED']);

    const up = await mabeam(['dev', 'up']);
    expect(up.code).toBe(0);
    const after = await record();
    expect(after.endpoints).toEqual(before.endpoints);
    expect(after.services.map((s) => s.origin)).toEqual(['started', 'started', 'started']);
    expect((await mabeam(['dev', 'status'])).code).toBe(0);
  });
});
