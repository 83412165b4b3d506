import { resolve as resolvePath } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { Command } from 'commander';
import { AgentRegistry } from '../../agents/registry.ts';
import type { Logger } from '../../log/logger.ts';
import { adaptSystem, coordinateSystem, readRecentEvents, systemStatus } from '../../orchestrator/index.ts';
import { signaturesRequired, signingEnabled } from '../../security/signing.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../../stack/index.ts';
import { VariablesClient } from '../../variables/client.ts';
import { VariableOwner } from '../../variables/owner.ts';
import { untilSignalOrStopped } from '../lifetime.ts';
import { connect } from '../connect.ts';
import { metricsPort, metricsPortHelp, startMetricsServer } from '../metrics.ts';
import { out, progress, table } from '../output.ts';
import { prefixOption, withClient } from './variables.ts';

/** `mabeam orchestrator run|coordinate` and `mabeam status`. */
export function registerOrchestratorCommands(program: Command, logger: () => Logger): void {
  const orchestrator = program.command('orchestrator').description('variables and orchestration');
  const functionsOption = ['--functions <module...>', 'modules that register coordination and adaptation functions (registerCoordination / registerAdaptation)'] as const;
  const loadFunctions = async (modules: string[] = []) => {
    for (const m of modules) await import(pathToFileURL(resolvePath(m)).href);
  };

  orchestrator
    .command('run')
    .description('run a variable owner (deciding variable changes) and the adaptation loop (metrics → adaptation functions) until SIGTERM / SIGINT')
    .option(...prefixOption)
    .option(...functionsOption)
    .option('--metrics-port <port>', metricsPortHelp, metricsPort)
    .action(async (opts: { prefix: string; functions?: string[]; metricsPort?: number }) => {
      await loadFunctions(opts.functions);
      const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));
      const c = await connect(endpoints, logger(), 'mabeam-orchestrator', { defaultMetrics: opts.metricsPort !== undefined });
      const closeMetrics = await startMetricsServer(c.metrics, opts.metricsPort, c.logger);
      const owner = new VariableOwner({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, metrics: c.metrics });
      const variables = new VariablesClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger: c.logger, prefix: opts.prefix });
      const adapter = adaptSystem({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, variables, metrics: c.metrics });
      // The agents-by-state gauge of /metrics, kept current from the registry.
      const registry = new AgentRegistry({ kafka: c.kafka, redis: c.redis, codec: c.codec, producer: c.producer, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, viewName: `orchestrator-${process.pid}`, disposable: true });
      await owner.start();
      await variables.start();
      await adapter.start();
      await registry.start();
      const gauges = setInterval(() => void systemStatus({ agents: registry, variables, recent: 0, metrics: c.metrics }).catch((error: unknown) => c.logger.warn({ error: String(error) }, 'agent states not counted')), 5_000);
      progress(`variable owner ${owner.instanceId} running in group ${owner.groupId} (${owner.variables.all().length} variables); adapting from the metrics topic in group ${adapter.groupId}`);
      process.send?.({ type: 'ready', agents: [], pool: 'variable-owners', instanceId: owner.instanceId, groupId: owner.groupId });
      const shutDown = async () => {
        clearInterval(gauges);
        await registry.stop();
        await adapter.stop();
        await variables.stop();
        await owner.stop();
        await c.close();
        await closeMetrics();
      };
      // An owner or adaptation loop that has stopped for good exits non-zero, so whatever runs it starts it again.
      await untilSignalOrStopped([owner, adapter], shutDown);
      await shutDown();
    });

  orchestrator
    .command('coordinate [id...]')
    .description('turn variables (all, or those named) into directives to their agents, by their coordination functions or their type\'s default strategy')
    .option(...prefixOption)
    .option(...functionsOption)
    .action(async (ids: string[], opts: { prefix: string; functions?: string[] }) => {
      await loadFunctions(opts.functions);
      await withClient(program, logger, opts.prefix, async (client, c) => {
        const registry = new AgentRegistry({ kafka: c.kafka, redis: c.redis, codec: c.codec, producer: c.producer, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, viewName: 'registry-cli' });
        await registry.start();
        try {
          await registry.caughtUp();
          const report = await coordinateSystem({ variables: client, agents: registry, producer: c.producer, codec: c.codec, prefix: opts.prefix, ...(ids.length > 0 ? { ids } : {}), logger: c.logger });
          out(table([['AGENT', 'ACTION', 'VARIABLE', 'PARAMETERS'], ...report.directives.map((d) => [d.agentId, d.action, d.variableId, JSON.stringify(d.parameters)])]));
          for (const f of report.failures) progress(`mabeam: ${f.variableId}: ${f.reason}`);
          if (report.failures.length > 0) process.exitCode = 1;
        } finally {
          await registry.stop();
        }
      });
    });

  program
    .command('status')
    .description('agents by state, variables, recent coordination rounds and the latest performance metrics')
    .option(...prefixOption)
    .option('--recent <n>', 'how many recent rounds to show', (v: string) => Number(v), 10)
    .option('--json', 'print the status as JSON')
    .action(async (opts: { prefix: string; recent: number; json?: boolean }) => {
      await withClient(program, logger, opts.prefix, async (client, c) => {
        const registry = new AgentRegistry({ kafka: c.kafka, redis: c.redis, codec: c.codec, producer: c.producer, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, viewName: 'registry-cli' });
        await registry.start();
        try {
          await registry.caughtUp();
          const recent = await readRecentEvents(c.kafka, c.codec, opts.prefix, { last: opts.recent });
          const status = await systemStatus({ agents: registry, variables: client, ...recent, recent: opts.recent });
          const signing = await signingStatus(registry);
          if (opts.json) return out(JSON.stringify({ ...status, signing }, null, 2));
          out(`agents: ${status.agents.total} (${Object.entries(status.agents.byState).filter(([, ids]) => ids.length > 0).map(([state, ids]) => `${state} ${ids.length}`).join(', ') || 'none'})`);
          out(`signing: ${signing.signingAgents} of ${signing.agents} agents publish a key${signing.unsigned.length > 0 ? ` (unsigned: ${signing.unsigned.slice(0, 5).join(', ')}${signing.unsigned.length > 5 ? ', …' : ''})` : ''}; hosts started here ${signing.hostsSignHere ? 'sign' : 'do not sign (MABEAM_SIGNING=off)'}`);
          out(`verification: coordinators started here ${signing.verificationRequiredHere ? 'require signatures (MABEAM_REQUIRE_SIGNATURES=1)' : 'do not verify signatures (--require-signatures or MABEAM_REQUIRE_SIGNATURES=1 turns it on)'}`);
          out('');
          out(table([['VARIABLE', 'TYPE', 'VERSION', 'VALUE'], ...status.variables.map((r) => [r.id, r.definition.type, String(r.version), JSON.stringify(r.value)])]));
          out('');
          out(table([['ROUND', 'PROTOCOL', 'STATUS', 'WINNERS', 'REASON'], ...status.recentCoordination.map((o) => [o.roundId, o.protocol, o.status, o.winners.join(','), o.reason])]));
          out('');
          out(table([['METRIC', 'VALUE', 'SOURCE'], ...Object.entries(status.performance).map(([name, p]) => [name, String(p.value), p.source])]));
        } finally {
          await registry.stop();
        }
      });
    });
}

/**
 * What the registry says of signing, and what this environment makes of it.
 * Each coordinator decides for itself whether it verifies (its own flag or
 * environment); this says what one started with this environment would do.
 */
async function signingStatus(registry: AgentRegistry): Promise<{ agents: number; signingAgents: number; unsigned: string[]; hostsSignHere: boolean; verificationRequiredHere: boolean }> {
  const agents = await registry.list();
  const unsigned = agents.filter((a) => !a.keyId).map((a) => a.agentId);
  return { agents: agents.length, signingAgents: agents.length - unsigned.length, unsigned, hostsSignHere: signingEnabled(undefined), verificationRequiredHere: signaturesRequired(undefined) };
}
