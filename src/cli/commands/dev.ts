import type { Command } from 'commander';
import type { Logger } from '../../log/logger.ts';
import { stackStatus, startStack, stopNamedStack, type StackEndpoints, type StartedStack } from '../../stack/index.ts';
import { out, progress, table } from '../output.ts';

export function exportLines(endpoints: StackEndpoints): string[] {
  return [
    `export KAFKA_BROKERS=${endpoints.kafkaBrokers.join(',')}`,
    `export SCHEMA_REGISTRY_URL=${endpoints.schemaRegistryUrl}`,
    `export REDIS_URL=${endpoints.redisUrl}`,
  ];
}

/** Starts (or reuses) the named local stack, telling a person what is happening. */
export async function bringUp(name: string, logger: Logger): Promise<StartedStack> {
  progress(`local stack "${name}": starting (the first start fetches Kafka and the registry with Maven, about a minute)…`);
  const started = await startStack({ name }, logger);
  const { report, state } = started;
  const seconds = ((report.timings['total'] ?? 0) / 1000).toFixed(1);
  const fetched = [report.fetched.kafka && 'Kafka', report.fetched.registry && 'the registry'].filter(Boolean).join(' and ');
  progress(
    report.reused
      ? `local stack "${name}": already running, reused (${seconds} s)`
      : `local stack "${name}": up in ${seconds} s${fetched ? ` (fetched ${fetched} into the cache)` : ' (from the cache)'}`,
  );
  for (const s of state.services) progress(`  ${s.name.padEnd(8)} ${s.address}${s.origin === 'started' ? '' : `  (${s.origin})`}`);
  return started;
}

export function registerDevCommands(program: Command, logger: () => Logger): void {
  const dev = program.command('dev').description('the embedded local stack: Kafka (KRaft), Apicurio Registry and Redis on this machine');

  dev
    .command('up')
    .description('start the local stack, or reuse it if it runs; prints the addresses')
    .action(async () => {
      const { state } = await bringUp(program.opts()['stack'] as string, logger());
      out(exportLines(state.endpoints).join('\n'));
    });

  dev
    .command('down')
    .description('stop the local stack (its data stays for the next start)')
    .action(async () => {
      const name = program.opts()['stack'] as string;
      out((await stopNamedStack({ name })) ? `local stack "${name}" stopped` : `local stack "${name}" was not running`);
    });

  dev
    .command('status')
    .description('show whether the local stack and each of its services runs')
    .action(async () => {
      const name = program.opts()['stack'] as string;
      const status = await stackStatus({ name });
      if (!status.state) {
        out(`local stack "${name}": not running (state in ${status.options.stateDir})`);
        return;
      }
      out(`local stack "${name}" (started ${status.state.startedAt}, state in ${status.state.dir})`);
      out(table(status.services.map((s) => [s.name, s.running ? 'running' : 'STOPPED', s.origin, s.address, s.pid ? `pid ${s.pid}` : ''])));
      if (status.services.some((s) => !s.running)) process.exitCode = 1;
    });

  dev
    .command('env')
    .description('print export lines for KAFKA_BROKERS, SCHEMA_REGISTRY_URL and REDIS_URL of the running stack')
    .action(async () => {
      const name = program.opts()['stack'] as string;
      const status = await stackStatus({ name });
      if (!status.state) throw new Error(`local stack "${name}" is not running; start it with \`mabeam dev up\``);
      out(exportLines(status.state.endpoints).join('\n'));
    });
}
