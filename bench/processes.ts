/**
 * What benchmarks read of the processes they measure, from /proc (Linux):
 * memory, CPU time, and which JVMs are the broker and the registry of the
 * stack in use.
 */
import { readFileSync, readdirSync } from 'node:fs';

/** RSS of a process in MB. */
export const rssOf = (pid: number): number => {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
};

/** CPU seconds (user + system) a process has used. */
export const cpuOf = (pid: number): number => {
  const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(fields[11]) + Number(fields[12])) / 100;
};

/**
 * The local broker's and registry's JVMs ({ broker, registry }), found by
 * their command lines: those of the stack whose endpoints are given (their
 * ports), if several run.
 */
export function stackJvms(endpoints: { kafkaBrokers: string[]; schemaRegistryUrl: string }): Record<string, number> {
  const brokerPort = endpoints.kafkaBrokers[0]?.split(':').pop();
  const registryPort = new URL(endpoints.schemaRegistryUrl).port || undefined;
  const found: Record<string, number> = {};
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    let cmd = '';
    try {
      cmd = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
    } catch {
      continue;
    }
    const args = cmd.split('\0').filter(Boolean);
    if (!/(^|\/)java$/.test(args[0] ?? '')) continue;
    if (cmd.includes('kafka.Kafka')) {
      let props = '';
      try {
        props = readFileSync(args[args.length - 1]!, 'utf8');
      } catch {
        // Not readable: taken only if no other broker is.
      }
      const listens = brokerPort !== undefined && new RegExp(`^listeners=.*:${brokerPort}(,|$)`, 'm').test(props);
      if (brokerPort === undefined || listens || found['broker'] === undefined) found['broker'] = Number(entry);
    } else if (cmd.includes('apicurio') && (registryPort === undefined || cmd.includes(`quarkus.http.port=${registryPort}`) || found['registry'] === undefined)) found['registry'] = Number(entry);
  }
  return found;
}
