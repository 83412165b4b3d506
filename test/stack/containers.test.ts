import { readFile, mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { silentLogger } from '../../src/log/logger.ts';
import {
  chooseStackKind,
  containerImages,
  kafkaEnvironment,
  probeDocker,
  redisCommand,
  registryEnvironment,
  startContainerStack,
} from '../../src/stack/containers.ts';
import { runCli } from '../agentProcesses.ts';

interface ComposeService {
  image: string;
  environment?: Record<string, string | number>;
  command?: string[];
}

const compose = parse(await readFile(new URL('../../docker-compose.yml', import.meta.url), 'utf8')) as { services: Record<string, ComposeService> };
const service = (name: string): ComposeService => {
  const s = compose.services[name];
  if (!s) throw new Error(`docker-compose.yml has no service ${name}`);
  return s;
};
const asStrings = (env: Record<string, string | number> = {}): Record<string, string> => Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v)]));

// Addresses nothing listens on: `dev up --containers` must fail before it reaches for any of them.
const nowhere = { kafkaBrokers: ['127.0.0.1:9'], schemaRegistryUrl: 'http://127.0.0.1:9', redisUrl: 'redis://127.0.0.1:9' };

let dir: string;
let fakeEngine: Server;
let notDocker: Server;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'mabeam-containers-'));
  // A socket that answers /_ping as a Docker engine does, and an HTTP server that is not one.
  fakeEngine = createServer((req, res) => res.writeHead(req.url === '/_ping' ? 200 : 404).end('OK'));
  notDocker = createServer((_req, res) => res.writeHead(404).end());
  await new Promise<void>((resolve) => fakeEngine.listen(join(dir, 'docker.sock'), resolve));
  await new Promise<void>((resolve) => notDocker.listen(0, '127.0.0.1', resolve));
});

afterAll(async () => {
  await Promise.all([fakeEngine, notDocker].map((s) => new Promise((resolve) => s.close(resolve))));
  await rm(dir, { recursive: true, force: true });
});

describe('the containers stack', () => {
  it('runs the images docker-compose.yml runs, with its settings', () => {
    expect(containerImages).toEqual({ kafka: service('kafka').image, registry: service('schema-registry').image, redis: service('redis').image });
    // Only the address PLAINTEXT advertises differs: it is the mapped port, set once the container runs.
    const { KAFKA_ADVERTISED_LISTENERS: advertised, ...kafka } = asStrings(service('kafka').environment);
    expect(advertised).toContain('INTERNAL://kafka:29092');
    expect(kafkaEnvironment).toEqual(kafka);
    expect(registryEnvironment).toEqual(asStrings(service('schema-registry').environment));
    expect(redisCommand).toEqual(service('redis').command);
  });

  it('finds a Docker engine only where one answers /_ping', async () => {
    const socket = `unix://${join(dir, 'docker.sock')}`;
    expect(await probeDocker({ DOCKER_HOST: socket }, 1_000)).toEqual({ available: true, endpoint: socket });
    const port = (notDocker.address() as { port: number }).port;
    const other = await probeDocker({ DOCKER_HOST: `tcp://127.0.0.1:${port}` }, 1_000);
    expect(other).toMatchObject({ available: false, reason: expect.stringContaining('HTTP 404') });
    const missing = await probeDocker({ DOCKER_HOST: `unix://${join(dir, 'none.sock')}` }, 1_000);
    expect(missing).toMatchObject({ available: false, reason: expect.stringContaining('ENOENT') });
  });

  it('is chosen by MABEAM_TESTCONTAINERS, else by whether an engine answers', async () => {
    const none = `unix://${join(dir, 'none.sock')}`;
    const engine = `unix://${join(dir, 'docker.sock')}`;
    expect(await chooseStackKind({ DOCKER_HOST: none, MABEAM_TESTCONTAINERS: '1' })).toBe('containers');
    expect(await chooseStackKind({ DOCKER_HOST: engine, MABEAM_TESTCONTAINERS: '0' })).toBe('embedded');
    expect(await chooseStackKind({ DOCKER_HOST: none })).toBe('embedded');
    expect(await chooseStackKind({ DOCKER_HOST: engine })).toBe('containers');
  });

  it('refuses to start without an engine, before loading testcontainers', async () => {
    await expect(startContainerStack({ env: { DOCKER_HOST: `unix://${join(dir, 'none.sock')}` } }, silentLogger())).rejects.toMatchObject({ code: 'DOCKER_UNAVAILABLE' });
  });

  it('`dev up --containers` without an engine says so in one line and exits non-zero', async () => {
    const r = await runCli(nowhere, ['--stack', 'containers-test', 'dev', 'up', '--containers'], { DOCKER_HOST: `unix://${join(dir, 'none.sock')}` });
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    const lines = r.stderr.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^mabeam: No Docker engine answers .*ENOENT.*\[DOCKER_UNAVAILABLE\]$/);
  });

  it('`dev up --containers --secure` is refused: the containers stack is plain', async () => {
    const r = await runCli(nowhere, ['dev', 'up', '--containers', '--secure'], { DOCKER_HOST: `unix://${join(dir, 'none.sock')}` });
    expect(r.code).toBe(1);
    expect(r.stderr.trimEnd()).toMatch(/^mabeam: --containers starts a plain stack.*\[INVALID_OPTIONS\]$/);
  });
});
