import { readFileSync } from 'node:fs';
import { MabeamError, describeError } from '../errors.ts';
import { isRunningState, readStackState } from './state.ts';
import { resolveStackOptions } from './options.ts';
import type { BasicAuth, KafkaSasl, StackEndpoints } from './types.ts';

type Env = Record<string, string | undefined>;

const mechanisms: ReadonlySet<KafkaSasl['mechanism']> = new Set(['scram-sha-512', 'scram-sha-256', 'plain']);

/**
 * A secret from `NAME` or from the file `NAME_FILE` names (its content,
 * trailing newline removed). Files keep passwords off command lines and out
 * of shell history; a process's environment is readable by its user only.
 */
export function secretFromEnvironment(env: Env, name: string): string | undefined {
  const direct = env[name];
  if (direct) return direct;
  const file = env[`${name}_FILE`];
  if (!file) return undefined;
  try {
    return readFileSync(file, 'utf8').replace(/\r?\n$/, '');
  } catch (error) {
    throw new MabeamError('INVALID_CREDENTIALS', `${name}_FILE names ${file}, which cannot be read: ${describeError(error)}`, { cause: error });
  }
}

/**
 * The Kafka login the environment names: KAFKA_SASL_USERNAME with
 * KAFKA_SASL_PASSWORD or KAFKA_SASL_PASSWORD_FILE, and KAFKA_SASL_MECHANISM
 * (scram-sha-512 by default). Undefined when no user is named.
 */
export function kafkaSaslFromEnvironment(env: Env = process.env): KafkaSasl | undefined {
  const username = env['KAFKA_SASL_USERNAME'];
  if (!username) return undefined;
  const mechanism = (env['KAFKA_SASL_MECHANISM'] ?? 'scram-sha-512').toLowerCase() as KafkaSasl['mechanism'];
  if (!mechanisms.has(mechanism)) {
    throw new MabeamError('INVALID_CREDENTIALS', `KAFKA_SASL_MECHANISM=${env['KAFKA_SASL_MECHANISM']} is not one of ${[...mechanisms].join(', ')}.`);
  }
  const password = secretFromEnvironment(env, 'KAFKA_SASL_PASSWORD');
  if (password === undefined) {
    throw new MabeamError('INVALID_CREDENTIALS', `KAFKA_SASL_USERNAME=${username} is set but neither KAFKA_SASL_PASSWORD nor KAFKA_SASL_PASSWORD_FILE is.`);
  }
  return { mechanism, username, password };
}

/** The registry login the environment names: SCHEMA_REGISTRY_USERNAME with SCHEMA_REGISTRY_PASSWORD(_FILE). */
export function registryAuthFromEnvironment(env: Env = process.env): BasicAuth | undefined {
  const username = env['SCHEMA_REGISTRY_USERNAME'];
  if (!username) return undefined;
  const password = secretFromEnvironment(env, 'SCHEMA_REGISTRY_PASSWORD');
  if (password === undefined) {
    throw new MabeamError('INVALID_CREDENTIALS', `SCHEMA_REGISTRY_USERNAME=${username} is set but neither SCHEMA_REGISTRY_PASSWORD nor SCHEMA_REGISTRY_PASSWORD_FILE is.`);
  }
  return { username, password };
}

/** REDIS_URL with REDIS_PASSWORD(_FILE) put into it when the URL carries none. */
export function redisUrlWithPassword(url: string, env: Env = process.env): string {
  const password = secretFromEnvironment(env, 'REDIS_PASSWORD');
  if (password === undefined) return url;
  const parsed = new URL(url);
  if (parsed.password) return url;
  parsed.password = password;
  return parsed.toString().replace(/\/$/, '');
}

const truthy = (value: string | undefined): boolean => value !== undefined && /^(1|true|yes|on)$/i.test(value);

/** Credentials from the environment layered over `base` (each one set wins; none set keeps the base's). */
function withCredentials(base: StackEndpoints, env: Env): StackEndpoints {
  const kafkaSasl = kafkaSaslFromEnvironment(env) ?? base.kafkaSasl;
  const registryAuth = registryAuthFromEnvironment(env) ?? base.registryAuth;
  const kafkaSsl = env['KAFKA_SSL'] !== undefined ? truthy(env['KAFKA_SSL']) : base.kafkaSsl;
  const { kafkaSasl: _s, registryAuth: _r, kafkaSsl: _t, ...addresses } = base;
  return {
    ...addresses,
    redisUrl: redisUrlWithPassword(base.redisUrl, env),
    ...(kafkaSasl ? { kafkaSasl } : {}),
    ...(registryAuth ? { registryAuth } : {}),
    ...(kafkaSsl ? { kafkaSsl } : {}),
  };
}

const brokerList = (value: string): string[] =>
  value
    .split(',')
    .map((b) => b.trim())
    .filter(Boolean);

/**
 * All three addresses from KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL,
 * or undefined if any is missing; with them the logins the environment names
 * (KAFKA_SASL_*, KAFKA_SSL, SCHEMA_REGISTRY_USERNAME / _PASSWORD(_FILE),
 * REDIS_PASSWORD(_FILE)).
 */
export function endpointsFromEnvironment(env: Env = process.env): StackEndpoints | undefined {
  const brokers = env['KAFKA_BROKERS'];
  const registry = env['SCHEMA_REGISTRY_URL'];
  const redis = env['REDIS_URL'];
  if (!brokers || !registry || !redis) return undefined;
  return withCredentials({ kafkaBrokers: brokerList(brokers), schemaRegistryUrl: registry.replace(/\/+$/, ''), redisUrl: redis }, env);
}

/**
 * Where commands find the services: the environment when it names all three,
 * else the running local stack of that name (each variable that is set still
 * wins over the stack's own address or login).
 */
export async function resolveEndpoints(stackName = 'dev', env: Env = process.env): Promise<StackEndpoints> {
  const fromEnv = endpointsFromEnvironment(env);
  if (fromEnv) return fromEnv;
  const state = await readStackState(resolveStackOptions({ name: stackName, env }).stateDir);
  if (!isRunningState(state)) {
    throw new MabeamError(
      'STACK_NOT_RUNNING',
      `No running local stack "${stackName}"${state ? ` (stopped ${state.stoppedAt})` : ''} and KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL are not all set. Start one with \`mabeam dev up\`.`,
    );
  }
  return withCredentials(
    {
      ...state.endpoints,
      kafkaBrokers: env['KAFKA_BROKERS'] ? brokerList(env['KAFKA_BROKERS']) : state.endpoints.kafkaBrokers,
      schemaRegistryUrl: env['SCHEMA_REGISTRY_URL'] ?? state.endpoints.schemaRegistryUrl,
      redisUrl: env['REDIS_URL'] ?? state.endpoints.redisUrl,
    },
    env,
  );
}

/**
 * The environment a child process needs to reach the same services with the
 * same logins (a supervisor's agents, a deployment's members). Passwords go
 * by environment, never on a command line.
 */
export function environmentFor(endpoints: StackEndpoints): Record<string, string> {
  const env: Record<string, string> = {
    KAFKA_BROKERS: endpoints.kafkaBrokers.join(','),
    SCHEMA_REGISTRY_URL: endpoints.schemaRegistryUrl,
    REDIS_URL: endpoints.redisUrl,
  };
  if (endpoints.kafkaSasl) {
    env['KAFKA_SASL_MECHANISM'] = endpoints.kafkaSasl.mechanism;
    env['KAFKA_SASL_USERNAME'] = endpoints.kafkaSasl.username;
    env['KAFKA_SASL_PASSWORD'] = endpoints.kafkaSasl.password;
  }
  if (endpoints.kafkaSsl) env['KAFKA_SSL'] = '1';
  if (endpoints.registryAuth) {
    env['SCHEMA_REGISTRY_USERNAME'] = endpoints.registryAuth.username;
    env['SCHEMA_REGISTRY_PASSWORD'] = endpoints.registryAuth.password;
  }
  return env;
}

/** The variables environmentFor sets, so a child that should not inherit a login can be given none. */
export const credentialVariables = [
  'KAFKA_SASL_MECHANISM', 'KAFKA_SASL_USERNAME', 'KAFKA_SASL_PASSWORD', 'KAFKA_SASL_PASSWORD_FILE', 'KAFKA_SSL',
  'SCHEMA_REGISTRY_USERNAME', 'SCHEMA_REGISTRY_PASSWORD', 'SCHEMA_REGISTRY_PASSWORD_FILE', 'REDIS_PASSWORD', 'REDIS_PASSWORD_FILE',
] as const;
