import { homedir, tmpdir } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { MabeamError } from '../errors.ts';

export const stackDefaults = Object.freeze({
  name: 'dev',
  kafkaVersion: '3.9.2',
  registryVersion: '3.3.3',
  kafkaHeap: '512m',
  registryHeap: '384m',
  startTimeoutMs: 120_000,
  stopTimeoutMs: 15_000,
});

const port = z.number().int().min(1).max(65_535);

const optionsSchema = z
  .object({
    name: z.string().regex(/^[a-zA-Z0-9_.-]+$/, 'letters, digits, ".", "_" or "-"').default(stackDefaults.name),
    /** Temporary data, deleted on stop; services die with the process that started them. */
    ephemeral: z.boolean().default(false),
    /**
     * Kafka with SASL/SCRAM-SHA-512 and ACLs, the registry with basic auth and roles, Redis with a
     * password. Fixed at a stack's first start: a plain stack is never turned secure, nor back.
     */
    secure: z.boolean().default(false),
    /**
     * Kafka nodes: 1 (default), or a replicated KRaft cluster of 3 (or 5) nodes, each broker and
     * controller, so topics get their declared replication. Undefined: what the stack's record has
     * (1 for a new stack). Fixed at a stack's first start, like `secure`.
     */
    brokers: z.union([z.literal(1), z.literal(3), z.literal(5)]).optional(),
    /**
     * The address Kafka, the registry and Redis listen on and give clients (default 127.0.0.1):
     * one other hosts reach — a bridge's address that network namespaces route to, a LAN address.
     * Kafka's controllers stay on 127.0.0.1.
     */
    host: z.ipv4().default('127.0.0.1'),
    /** Where downloaded artifacts are kept between runs (outside the repository). */
    cacheDir: z.string().min(1).optional(),
    /** Where data, logs and the state file of this stack live. */
    stateDir: z.string().min(1).optional(),
    /** Maven's local repository (default: Maven's own, ~/.m2/repository). */
    mavenRepository: z.string().min(1).optional(),
    kafkaVersion: z.string().default(stackDefaults.kafkaVersion),
    registryVersion: z.string().default(stackDefaults.registryVersion),
    kafkaPort: port.optional(),
    kafkaControllerPort: port.optional(),
    registryPort: port.optional(),
    redisPort: port.optional(),
    kafkaHeap: z.string().regex(/^\d+[mg]$/).default(stackDefaults.kafkaHeap),
    registryHeap: z.string().regex(/^\d+[mg]$/).default(stackDefaults.registryHeap),
    /** Java for the broker (17+); defaults to JAVA_HOME or `java` on PATH. */
    javaHome: z.string().optional(),
    /** Java for the registry (21+); searched for when not given. */
    registryJavaHome: z.string().optional(),
    startTimeoutMs: z.number().int().positive().default(stackDefaults.startTimeoutMs),
    stopTimeoutMs: z.number().int().positive().default(stackDefaults.stopTimeoutMs),
    /**
     * Environment read for JAVA_HOME, MABEAM_REGISTRY_JAVA_HOME and the default folders. Never for
     * KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL: those point clients somewhere, they are not the stack.
     */
    env: z.record(z.string(), z.string().optional()).default(() => ({ ...process.env })),
  })
  .strict()
  .superRefine((o, ctx) => {
    const ports = [o.kafkaPort, o.kafkaControllerPort, o.registryPort, o.redisPort].filter((p) => p !== undefined);
    if (new Set(ports).size !== ports.length) {
      ctx.addIssue({ code: 'custom', message: 'kafkaPort, kafkaControllerPort, registryPort and redisPort must differ' });
    }
  });

export type LocalStackOptions = z.input<typeof optionsSchema>;

export type ResolvedStackOptions = Omit<z.output<typeof optionsSchema>, 'cacheDir' | 'stateDir'> & {
  cacheDir: string;
  stateDir: string;
};

export function defaultCacheDir(env: Record<string, string | undefined> = process.env): string {
  return env['MABEAM_CACHE_DIR'] ?? join(env['XDG_CACHE_HOME'] ?? join(homedir(), '.cache'), 'mabeam');
}

export function defaultStateDir(name: string, ephemeral: boolean, env: Record<string, string | undefined> = process.env): string {
  if (ephemeral) return join(tmpdir(), `mabeam-stack-${name}-${process.pid}-${Date.now().toString(36)}`);
  return join(env['MABEAM_STATE_DIR'] ?? join(env['XDG_STATE_HOME'] ?? join(homedir(), '.local', 'state'), 'mabeam'), 'stacks', name);
}

export function resolveStackOptions(input: LocalStackOptions = {}): ResolvedStackOptions {
  // process.env is not a plain object; validate a copy.
  const parsed = optionsSchema.safeParse(input.env ? { ...input, env: { ...input.env } } : input);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || 'options'}: ${i.message}`).join('; ');
    throw new MabeamError('INVALID_OPTIONS', `Invalid local stack options: ${problems}`);
  }
  const o = parsed.data;
  return {
    ...o,
    cacheDir: o.cacheDir ?? defaultCacheDir(o.env),
    stateDir: o.stateDir ?? defaultStateDir(o.name, o.ephemeral, o.env),
  };
}
