/** A SASL login to Kafka (SCRAM-SHA-512 on a secure stack). */
export interface KafkaSasl {
  mechanism: 'scram-sha-512' | 'scram-sha-256' | 'plain';
  username: string;
  password: string;
}

/** HTTP basic credentials for the schema registry. */
export interface BasicAuth {
  username: string;
  password: string;
}

/**
 * Where a client finds the three services the product runs on, and how it
 * logs in to them. Without `kafkaSasl` / `registryAuth` the services are open
 * (the plain local stack); a Redis password travels in `redisUrl`
 * (`redis://:PASSWORD@host:port`), as Redis clients expect.
 */
export interface StackEndpoints {
  kafkaBrokers: string[];
  schemaRegistryUrl: string;
  redisUrl: string;
  kafkaSasl?: KafkaSasl;
  /** TLS to the brokers (SASL_SSL); the plain and the secure local stack use none. */
  kafkaSsl?: boolean;
  registryAuth?: BasicAuth;
}

/** `kafka` is the first (or only) Kafka node; a replicated cluster adds `kafka-2`, `kafka-3`, …. */
export type ServiceName = 'kafka' | `kafka-${number}` | 'registry' | 'redis';

/** Whether a service is a node of the stack's Kafka cluster. */
export const isKafkaService = (name: ServiceName): boolean => name === 'kafka' || name.startsWith('kafka-');

/** The Kafka nodes of an n-broker stack: kafka, kafka-2, …, kafka-n. */
export const kafkaServiceNames = (brokers: number): ServiceName[] => Array.from({ length: brokers }, (_, i) => (i === 0 ? 'kafka' : (`kafka-${i + 1}` as const)));

/**
 * How a service came to be: started by this stack, or a default address
 * (Redis on 127.0.0.1:6379 when no redis-server binary is found).
 * 'environment' is only read, never written: state files of older versions
 * recorded KAFKA_BROKERS / SCHEMA_REGISTRY_URL / REDIS_URL as the stack's
 * services, and a stack never manages what the environment names.
 */
export type ServiceOrigin = 'started' | 'default' | 'environment';

/** The loopback ports a started service listens on, by role ("client", "controller", "management"). */
export type ServicePorts = Partial<Record<'client' | 'controller' | 'management', number>>;

export interface ServiceState {
  name: ServiceName;
  origin: ServiceOrigin;
  address: string;
  /** Recorded so a restart binds the same ports and every client's address stays right. */
  ports?: ServicePorts;
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
  /** Set by a stop (`mabeam dev down`): the record stays so the next start keeps the ports. */
  stoppedAt?: string;
  endpoints: StackEndpoints;
  services: ServiceState[];
  /**
   * Set on a secure stack (SASL/SCRAM and ACLs, registry basic auth, a Redis password): where its
   * passwords are kept. Then `endpoints` carries the admin's logins and this record is mode 0600.
   */
  secure?: { credentialsFile: string };
}

/**
 * What `dev status` found: running = the process is alive and its port
 * answers a real client call; not-answering = alive but silent (hung,
 * stopped with SIGSTOP, or still starting); stopped = the process is gone.
 */
export type ServiceHealth = 'running' | 'not-answering' | 'stopped';

/** A port a restart could not have back because something else listens on it. */
export interface PortChange {
  service: ServiceName;
  role: keyof ServicePorts;
  from: number;
  to: number;
}

export interface StackStartReport {
  /** The stack was already running and was reused as it was. */
  reused: boolean;
  /** The services this start launched (empty when reused). */
  started: ServiceName[];
  /** Recorded ports that were taken, and the new ones chosen instead. */
  portChanges: PortChange[];
  /** Which artifacts had to be fetched into the cache during this start. */
  fetched: { kafka: boolean; registry: boolean };
  /** Wall-clock milliseconds, per phase. */
  timings: Record<string, number>;
}
