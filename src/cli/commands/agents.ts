import type { Command } from 'commander';
import { AgentHost } from '../../agents/host.ts';
import { loadAgentModule } from '../../agents/loadModule.ts';
import { AgentRegistry } from '../../agents/registry.ts';
import { lifecycleStates } from '../../agents/lifecycle.ts';
import { MabeamError } from '../../errors.ts';
import type { LifecycleState } from '../../events/types.ts';
import { createKey, keysDir, readKey } from '../../security/keys.ts';
import type { Logger } from '../../log/logger.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../../stack/index.ts';
import type { ChildMessage } from '../../supervisor/messages.ts';
import { defaultTopicPrefix, topicName } from '../../topics/index.ts';
import { connect } from '../connect.ts';
import { untilSignalOrStopped } from '../lifetime.ts';
import { metricsPort, metricsPortHelp, startMetricsServer } from '../metrics.ts';
import { out, progress, table } from '../output.ts';
import { positiveInt } from './topics.ts';

export function registerAgentCommands(program: Command, logger: () => Logger): void {
  const endpoints = async () => endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));

  program
    .command('agent')
    .description('run agents')
    .command('run <module>')
    .description('run the agents a module defines, as members of their consumer group, until stopped (SIGTERM / SIGINT / a stop or migrate directive)')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--pool <name>', 'consumer group the agents share (default: the module\'s pool, or the agent id)')
    .option('--instance <id>', 'instance id (default: host-pid-random)')
    .option('--heartbeat-ms <ms>', 'heartbeat interval', positiveInt)
    .option('--session-timeout-ms <ms>', 'how soon a dead replica\'s partitions move to the others', positiveInt)
    .option('--concurrent-partitions <n>', 'how many of the pool\'s partitions this instance works on at once (default 8; 1: one message at a time)', positiveInt)
    .option('--starting-reported', 'set by a supervisor that already reported the agents starting')
    .option('--metrics-port <port>', metricsPortHelp, metricsPort)
    .option('--no-sign', 'do not sign what the agents write (also MABEAM_SIGNING=off); default: signed with each agent\'s key')
    .action(async (modulePath: string, opts: { prefix: string; pool?: string; instance?: string; heartbeatMs?: number; sessionTimeoutMs?: number; concurrentPartitions?: number; startingReported?: boolean; metricsPort?: number; sign: boolean }) => {
      const module = await loadAgentModule(modulePath);
      // The client id names the process, so a group's members can be told apart (kafka-consumer-groups --describe).
      const c = await connect(await endpoints(), logger(), `mabeam-agent-${process.pid}`, { defaultMetrics: opts.metricsPort !== undefined });
      const closeMetrics = await startMetricsServer(c.metrics, opts.metricsPort, c.logger);
      const pool = opts.pool ?? module.pool;
      const host = new AgentHost({
        kafka: c.kafka,
        codec: c.codec,
        logger: c.logger,
        prefix: opts.prefix,
        definitions: c.definitions,
        agents: module.agents,
        metrics: c.metrics,
        ...(pool ? { pool } : {}),
        ...(opts.instance ? { instanceId: opts.instance } : {}),
        ...(opts.heartbeatMs ? { heartbeatIntervalMs: opts.heartbeatMs } : {}),
        ...(opts.sessionTimeoutMs ? { sessionTimeoutMs: opts.sessionTimeoutMs } : {}),
        ...(opts.concurrentPartitions ? { concurrentPartitions: opts.concurrentPartitions } : {}),
        ...(opts.startingReported ? { startingReported: true } : {}),
        ...(opts.sign === false ? { sign: false } : {}),
      });
      // Ends when the host stops: asked to by a signal, by its supervisor going away (under a
      // supervisor it must not run unsupervised), or by a stop or migrate directive. If it stops for
      // good instead, untilSignalOrStopped says why on stderr and exits with code 1.
      const supervisorGone = new Promise<string>((resolve) => {
        if (process.send) process.once('disconnect', () => resolve('supervisor gone'));
      });
      const lifetime = untilSignalOrStopped([host], async () => {
        await c.close();
        await closeMetrics();
      });
      const finished = new Promise<string>((resolve, reject) => {
        host.once('stopped', resolve);
        void Promise.race([lifetime.then((signal) => `signal ${signal}`), supervisorGone])
          .then((reason) => host.stop(reason))
          .catch(reject);
      });
      await host.start();
      const ids = module.agents.map((a) => a.id);
      progress(`agents ${ids.join(', ')} running in pool ${host.pool} (group ${host.groupId}) as instance ${host.instanceId}`);
      const ready: ChildMessage = { type: 'ready', agents: ids, pool: host.pool, instanceId: host.instanceId, groupId: host.groupId };
      process.send?.(ready);
      const reason = await finished;
      await c.close();
      await closeMetrics();
      progress(`agents ${ids.join(', ')} stopped: ${reason}`);
      if (process.connected) process.disconnect?.();
    });

  const agents = program.command('agents').description('look agents up in the registry');
  const withRegistry = async <T>(prefix: string, use: (registry: AgentRegistry) => Promise<T>): Promise<T> => {
    const c = await connect(await endpoints(), logger(), 'mabeam-registry');
    const registry = new AgentRegistry({ kafka: c.kafka, redis: c.redis, codec: c.codec, producer: c.producer, logger: c.logger, prefix, definitions: c.definitions, viewName: 'registry-cli' });
    try {
      await registry.start();
      await registry.caughtUp();
      return await use(registry);
    } finally {
      await registry.stop();
      await c.close();
    }
  };

  agents
    .command('list')
    .description('every registered agent with its state')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--capability <name...>', 'only agents with these capabilities')
    .option('--state <state>', `only agents in this state (${lifecycleStates.join(', ')})`)
    .option('--json', 'print the agents as JSON')
    .action(async (opts: { prefix: string; capability?: string[]; state?: string; json?: boolean }) => {
      if (opts.state && !lifecycleStates.includes(opts.state as LifecycleState)) {
        throw new MabeamError('INVALID_OPTIONS', `--state: unknown state "${opts.state}"; use one of ${lifecycleStates.join(', ')}`);
      }
      await withRegistry(opts.prefix, async (registry) => {
        const ids = await registry.find({ ...(opts.capability ? { capabilities: opts.capability } : {}), ...(opts.state ? { state: opts.state as LifecycleState } : {}) });
        const rows = await Promise.all(ids.map(async (id) => registry.get(id)));
        if (opts.json) {
          out(JSON.stringify(rows.filter((a) => a !== undefined)));
          return;
        }
        out(table(rows.filter((a) => a !== undefined).map((a) => [a.agentId, a.role, a.lifecycle?.state ?? '-', a.capabilities.join(','), a.consumerGroup, a.keyId ? `key ${a.keyId}` : 'unsigned'])));
      });
    });

  agents
    .command('key <agentId>')
    .description(`an agent's signing key (in ${keysDir()}): its id and notAfter; --new makes one, keeping the old as the previous key that vouches for it`)
    .option('--new', 'make a new key (the current one becomes the previous key)')
    .option('--not-after <time>', 'with --new: the ISO time after which the new key signs nothing')
    .action((agentId: string, opts: { new?: boolean; notAfter?: string }) => {
      const key = opts.new ? createKey(agentId, { rotate: true, notAfter: opts.notAfter ?? null }) : readKey(agentId);
      if (!key) throw new MabeamError('KEY_INVALID', `Agent ${agentId} has no key in ${keysDir()} yet; it gets one on its first run (or make one with --new).`);
      out(table([['AGENT', 'KEY ID', 'NOT AFTER', 'PUBLIC KEY'], [agentId, key.keyId, key.notAfter === null ? '-' : new Date(key.notAfter).toISOString(), key.publicKeyBase64]]));
    });

  agents
    .command('forget <agentId>')
    .description('remove an agent from the registry (a tombstone on the agents topic): deciders forget its pinned key, and its next registration is trusted on first use')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .action(async (agentId: string, opts: { prefix: string }) => {
      const c = await connect(await endpoints(), logger(), 'mabeam-registry', { redis: false });
      try {
        await c.producer.send({ topic: topicName(opts.prefix, 'agents'), messages: [{ key: agentId, value: null }] });
        progress(`agent ${agentId} removed from the registry of ${opts.prefix}`);
      } finally {
        await c.close();
      }
    });

  agents
    .command('health')
    .description('health of every registered agent: alive, lagging, unresponsive or dead, with memory and lag')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--json', 'print the health of each agent as JSON')
    .action(async (opts: { prefix: string; json?: boolean }) => {
      await withRegistry(opts.prefix, async (registry) => {
        const health = await registry.health();
        if (opts.json) {
          out(JSON.stringify(health));
          return;
        }
        out(
          table(
            health.map((h) => [
              h.agentId,
              h.health,
              h.resources ? `${Math.round(h.resources.memoryRssBytes / 1048576)} MB rss` : '-',
              h.resources ? `lag ${h.resources.consumerLag}` : '-',
              `${h.groupMembers} member(s)`,
              h.reason,
            ]),
          ),
        );
      });
    });
}
