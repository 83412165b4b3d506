/** Where a client finds the three services the product runs on. */
export interface StackEndpoints {
  kafkaBrokers: string[];
  schemaRegistryUrl: string;
  redisUrl: string;
}

export type ServiceName = 'kafka' | 'registry' | 'redis';

/**
 * How a service came to be: started by this stack, given by an environment
 * variable (KAFKA_BROKERS, SCHEMA_REGISTRY_URL, REDIS_URL), or a default
 * address (Redis on 127.0.0.1:6379 when no redis-server binary is found).
 */
export type ServiceOrigin = 'started' | 'environment' | 'default';

export interface ServiceState {
  name: ServiceName;
  origin: ServiceOrigin;
  address: string;
  pid?: number;
  /** Text on the process's command line that tells it apart from a reused pid. */
  marker?: string;
  /** Supervising watchdog of an ephemeral stack's service. */
  watchdogPid?: number;
  logFile?: string;
}

export interface StackState {
  name: string;
  dir: string;
  ephemeral: boolean;
  startedAt: string;
  endpoints: StackEndpoints;
  services: ServiceState[];
}

export interface StackStartReport {
  /** The stack was already running and was reused as it was. */
  reused: boolean;
  /** Which artifacts had to be fetched into the cache during this start. */
  fetched: { kafka: boolean; registry: boolean };
  /** Wall-clock milliseconds, per phase. */
  timings: Record<string, number>;
}
