import { isOurProcess } from './processes.ts';
import { waitForKafka } from './kafka.ts';
import { waitForRedis } from './redis.ts';
import { waitForRegistry } from './registry.ts';
import { isKafkaService, type ServiceHealth, type ServiceState, type StackEndpoints, type StackState } from './types.ts';

/** How a probe logs in: the record's endpoints (the admin's logins on a secure stack). */
export type ServiceLogin = Pick<StackEndpoints, 'kafkaSasl' | 'registryAuth' | 'redisUrl'>;

/**
 * Whether a recorded service really runs. A pid alone is not enough (a hung
 * or SIGSTOPped JVM still has one) and an answering port alone is not
 * either (another process may have taken it): a started service is running
 * only when its own process is alive AND a real client call to its address
 * answers.
 */

/**
 * Waits up to `timeoutMs` for the service at its recorded address to answer a real client call,
 * logged in as `login` says: a secure service refuses an anonymous probe, which is not an answer.
 */
export async function waitForService(service: ServiceState, timeoutMs: number, login?: ServiceLogin): Promise<void> {
  const pid = service.origin === 'started' ? service.pid : undefined;
  const logFile = service.logFile;
  // A service that runs: a node answering with an error (a cluster that lost another node) counts.
  if (isKafkaService(service.name)) return waitForKafka(service.address.split(','), timeoutMs, pid, logFile, login?.kafkaSasl, true);
  switch (service.name) {
    case 'registry':
      return waitForRegistry(service.address, timeoutMs, pid, logFile, login?.registryAuth);
    case 'redis':
      return waitForRedis(redisProbeUrl(service.address, login?.redisUrl), timeoutMs, pid, logFile);
  }
}

/** The service's own address with the password the endpoints' Redis URL carries, if any. */
function redisProbeUrl(address: string, endpointUrl: string | undefined): string {
  const password = endpointUrl ? new URL(endpointUrl).password : '';
  if (!password) return address;
  const url = new URL(address);
  url.password = password;
  return url.toString().replace(/\/$/, '');
}

export async function answers(service: ServiceState, timeoutMs: number, login?: ServiceLogin): Promise<boolean> {
  try {
    await waitForService(service, timeoutMs, login);
    return true;
  } catch {
    return false;
  }
}

/** The process of a started service is alive and is the one the stack started (not a reused pid). */
export async function processAlive(state: Pick<StackState, 'dir'>, service: ServiceState): Promise<boolean> {
  return service.pid !== undefined && (await isOurProcess(service.pid, service.marker ?? state.dir));
}

export async function serviceHealth(state: StackState, service: ServiceState, timeoutMs: number): Promise<ServiceHealth> {
  if (service.origin === 'started' && !(await processAlive(state, service))) return 'stopped';
  if (await answers(service, timeoutMs, state.endpoints)) return 'running';
  // A service the stack does not own has no process to look at: silence is all we can tell.
  return service.origin === 'started' ? 'not-answering' : 'stopped';
}
