import type { Command } from 'commander';
import { Coordinator } from '../../coordinator/coordinator.ts';
import type { Logger } from '../../log/logger.ts';
import { loadProtocolModules } from '../../protocols/modules.ts';
import { signaturesRequired } from '../../security/signing.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../../stack/index.ts';
import { defaultTopicPrefix } from '../../topics/index.ts';
import { connect } from '../connect.ts';
import { untilSignalOrStopped } from '../lifetime.ts';
import { metricsPort, metricsPortHelp, startMetricsServer } from '../metrics.ts';
import { progress } from '../output.ts';
import { positiveInt } from './topics.ts';

export function registerCoordinatorCommand(program: Command, logger: () => Logger): void {
  program
    .command('coordinator')
    .description('coordination rounds')
    .command('run')
    .description('run a coordinator (a member of the coordinators group) until SIGTERM / SIGINT')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--session-timeout-ms <ms>', 'how soon a dead coordinator\'s rounds move to the others', positiveInt)
    .option('--closed-round-grace-ms <ms>', 'how long (log time) a closed round stays in memory, answering late answers with ROUND_CLOSED (default 60000)', positiveInt)
    .option('--metrics-port <port>', metricsPortHelp, metricsPort)
    .option('--protocols <module...>', 'modules that add protocols (default-export a protocol or call registerProtocol)', [])
    .option('--require-signatures', 'refuse bids and votes not signed by their agent\'s registered key (also MABEAM_REQUIRE_SIGNATURES=1)')
    .action(async (opts: { prefix: string; sessionTimeoutMs?: number; closedRoundGraceMs?: number; metricsPort?: number; protocols: string[]; requireSignatures?: boolean }) => {
      const { protocols } = await loadProtocolModules(opts.protocols);
      const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));
      // The client id names the process, so a group's members can be told apart (kafka-consumer-groups --describe).
      const c = await connect(endpoints, logger(), `mabeam-coordinator-${process.pid}`, { defaultMetrics: opts.metricsPort !== undefined });
      const closeMetrics = await startMetricsServer(c.metrics, opts.metricsPort, c.logger);
      const coordinator = new Coordinator({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, metrics: c.metrics, ...(opts.sessionTimeoutMs ? { sessionTimeoutMs: opts.sessionTimeoutMs } : {}), ...(opts.closedRoundGraceMs ? { closedRoundGraceMs: opts.closedRoundGraceMs } : {}), requireSignatures: signaturesRequired(opts.requireSignatures || undefined) });
      await coordinator.start();
      progress(`coordinator ${coordinator.instanceId} running in group ${coordinator.groupId} (protocols: ${protocols.names().join(', ')}; signatures ${coordinator.verifiesSignatures ? 'required' : 'not verified'})`);
      process.send?.({ type: 'ready', agents: [], pool: 'coordinators', instanceId: coordinator.instanceId, groupId: coordinator.groupId });
      const shutDown = async () => {
        await coordinator.stop();
        await c.close();
        await closeMetrics();
      };
      // A coordinator that has stopped for good exits non-zero, so whatever runs it starts it again.
      await untilSignalOrStopped([coordinator], shutDown);
      await shutDown();
    });
}
