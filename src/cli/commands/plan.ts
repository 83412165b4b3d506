import { randomBytes } from 'node:crypto';
import type { Command } from 'commander';
import { RegistryAgents } from '../../agents/capableAgents.ts';
import { AgentRegistry } from '../../agents/registry.ts';
import type { Logger } from '../../log/logger.ts';
import { Planner } from '../../planner/planner.ts';
import { Templates, builtinTemplates, loadTemplates } from '../../planner/templates.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../../stack/index.ts';
import { defaultTopicPrefix } from '../../topics/index.ts';
import { connect } from '../connect.ts';
import { untilSignalOrStopped } from '../lifetime.ts';
import { metricsPort, metricsPortHelp, startMetricsServer } from '../metrics.ts';
import { progress } from '../output.ts';
import { positiveInt } from './topics.ts';

async function endpoints(program: Command) {
  return endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));
}

const collect = (value: string, previous: string[]) => [...previous, value];

export function registerPlanCommands(program: Command, logger: () => Logger): void {
  program
    .command('planner')
    .description('the planner')
    .command('run')
    .description('run a planner (a member of the planners group: it decides the plans of its partitions) until SIGTERM / SIGINT')
    .option('--templates <module>', 'a module of goal templates (export default or templates: { type, plan(goal) } or an array); repeatable', collect, [])
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--session-timeout-ms <ms>', 'how soon a dead planner\'s plans move to the others', positiveInt)
    .option('--metrics-port <port>', metricsPortHelp, metricsPort)
    .action(async (opts: { templates: string[]; prefix: string; sessionTimeoutMs?: number; metricsPort?: number }) => {
      const templates = new Templates(builtinTemplates);
      for (const path of opts.templates) for (const t of await loadTemplates(path)) templates.register(t);
      const c = await connect(await endpoints(program), logger(), 'mabeam-planner', { defaultMetrics: opts.metricsPort !== undefined });
      const closeMetrics = await startMetricsServer(c.metrics, opts.metricsPort, c.logger);
      const instanceId = `planner-${process.pid}-${randomBytes(3).toString('hex')}`;
      const registry = new AgentRegistry({ kafka: c.kafka, redis: c.redis, codec: c.codec, producer: c.producer, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, viewName: `planner:${instanceId}` });
      await registry.start();
      const planner = new Planner({
        kafka: c.kafka, codec: c.codec, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, metrics: c.metrics, instanceId, agents: new RegistryAgents(registry), templates,
        ...(opts.sessionTimeoutMs ? { sessionTimeoutMs: opts.sessionTimeoutMs } : {}),
      });
      await planner.start();
      progress(`planner ${planner.instanceId} running in group ${planner.groupId} (goal templates: ${templates.types().join(', ')})`);
      process.send?.({ type: 'ready', agents: [], pool: 'planners', instanceId: planner.instanceId, groupId: planner.groupId });
      const shutDown = async () => {
        await planner.stop();
        await registry.stop();
        await c.close();
        await closeMetrics();
      };
      await untilSignalOrStopped([planner], shutDown);
      await shutDown();
    });
}
