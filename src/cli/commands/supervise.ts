import { readFile } from 'node:fs/promises';
import { dirname, isAbsolute, resolve } from 'node:path';
import type { Command } from 'commander';
import { MabeamError } from '../../errors.ts';
import type { Logger } from '../../log/logger.ts';
import { endpointsFromEnvironment, environmentFor, resolveEndpoints } from '../../stack/index.ts';
import { parseSupervisorSpec, Supervisor, type SupervisorEvent } from '../../supervisor/supervisor.ts';
import { connect } from '../connect.ts';
import { metricsPort, metricsPortHelp, startMetricsServer } from '../metrics.ts';
import { StoppedLatch } from '../../runtime/stopped.ts';
import { untilSignalOrStopped } from '../lifetime.ts';
import { progress } from '../output.ts';

export function registerSuperviseCommand(program: Command, logger: () => Logger): void {
  program
    .command('supervise <file>')
    .description(
      'run the agents (and coordinators, owners, …) a JSON spec lists as child processes, restarting them by policy, until SIGTERM / SIGINT; ' +
        'if a child fails past its restart budget, the others are stopped and the supervisor exits with code 1',
    )
    .option('--metrics-port <port>', `${metricsPortHelp} (the supervisor's own; children get theirs from "args" in the spec)`, metricsPort)
    .action(async (file: string, opts: { metricsPort?: number }) => {
      const spec = parseSupervisorSpec(JSON.parse(await readFile(file, 'utf8')), file);
      // Module paths are relative to the spec file.
      for (const child of spec.children) if (child.module !== undefined && !isAbsolute(child.module)) child.module = resolve(dirname(file), child.module);
      const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));
      const c = await connect(endpoints, logger(), 'mabeam-supervisor', { defaultMetrics: opts.metricsPort !== undefined });
      const closeMetrics = await startMetricsServer(c.metrics, opts.metricsPort, c.logger);
      const supervisor = new Supervisor({
        spec,
        producer: c.producer,
        codec: c.codec,
        logger: c.logger,
        env: { ...process.env, ...environmentFor(endpoints) },
      });
      // As an Erlang supervisor does past its restart intensity, one that gives up on a child stops
      // the others and fails itself, so whatever runs it (systemd, Kubernetes, a supervisor above)
      // sees the failure and can start the whole group again.
      const gaveUp = new StoppedLatch();
      supervisor.on('event', (e: SupervisorEvent) => {
        if (e.type === 'exit') progress(`${e.id}: pid ${e.pid} ${e.signal ? `killed by ${e.signal}` : `exited (${e.code})`} → ${e.decision}${e.delayMs !== undefined ? ` in ${e.delayMs} ms` : ''}`);
        else if (e.type === 'ready') progress(`${e.id}: pid ${e.pid} running (${e.message.agents.join(', ')})`);
        if (e.type === 'exit' && e.decision === 'gave-up') {
          const child = spec.children.find((c) => c.id === e.id);
          const how = e.signal ? `was killed by ${e.signal}` : `exited with code ${e.code}`;
          gaveUp.stop(new MabeamError('CHILD_FAILED', `${e.id} ${how} and its restart budget (${child?.maxRestarts} restarts in ${child?.periodMs} ms) is spent.`));
        }
      });
      supervisor.on('error', (error: unknown) => gaveUp.stop(error));
      const shutDown = async () => {
        progress('stopping supervised agents…');
        await supervisor.stop();
        await c.close();
        await closeMetrics();
      };
      const lifetime = untilSignalOrStopped([gaveUp], shutDown);
      supervisor.start();
      await lifetime;
      await shutDown();
    });
}
