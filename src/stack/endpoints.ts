import { MabeamError } from '../errors.ts';
import { isRunningState, readStackState } from './state.ts';
import { resolveStackOptions } from './options.ts';
import type { StackEndpoints } from './types.ts';

/** All three addresses from KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL, or undefined if any is missing. */
export function endpointsFromEnvironment(env: Record<string, string | undefined> = process.env): StackEndpoints | undefined {
  const brokers = env['KAFKA_BROKERS'];
  const registry = env['SCHEMA_REGISTRY_URL'];
  const redis = env['REDIS_URL'];
  if (!brokers || !registry || !redis) return undefined;
  return {
    kafkaBrokers: brokers.split(',').map((b) => b.trim()).filter(Boolean),
    schemaRegistryUrl: registry.replace(/\/+$/, ''),
    redisUrl: redis,
  };
}

/**
 * Where commands find the services: the environment when it names all three,
 * else the running local stack of that name (each variable that is set still
 * wins over the stack's own address).
 */
export async function resolveEndpoints(stackName = 'dev', env: Record<string, string | undefined> = process.env): Promise<StackEndpoints> {
  const fromEnv = endpointsFromEnvironment(env);
  if (fromEnv) return fromEnv;
  const state = await readStackState(resolveStackOptions({ name: stackName, env }).stateDir);
  if (!isRunningState(state)) {
    throw new MabeamError(
      'STACK_NOT_RUNNING',
      `No running local stack "${stackName}"${state ? ` (stopped ${state.stoppedAt})` : ''} and KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL are not all set. Start one with \`mabeam dev up\`.`,
    );
  }
  return {
    kafkaBrokers: env['KAFKA_BROKERS'] ? env['KAFKA_BROKERS'].split(',').map((b) => b.trim()) : state.endpoints.kafkaBrokers,
    schemaRegistryUrl: env['SCHEMA_REGISTRY_URL'] ?? state.endpoints.schemaRegistryUrl,
    redisUrl: env['REDIS_URL'] ?? state.endpoints.redisUrl,
  };
}
