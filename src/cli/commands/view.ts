import type { AddressInfo } from 'node:net';
import type { Command } from 'commander';
import { MabeamError } from '../../errors.ts';
import type { Logger } from '../../log/logger.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../../stack/index.ts';
import { defaultTopicPrefix } from '../../topics/index.ts';
import { createViewServer } from '../../view/server.ts';
import { connect } from '../connect.ts';
import { untilSignalOrStopped } from '../lifetime.ts';
import { metricsPort } from '../metrics.ts';
import { progress } from '../output.ts';

export function registerViewCommand(program: Command, logger: () => Logger): void {
  program
    .command('view')
    .description('serve the live view (rounds, agents, variables, studies, dead letters as they happen) over HTTP until SIGTERM / SIGINT')
    .option('--port <port>', 'port to listen on (0 = a free one)', metricsPort, 8080)
    .option('--host <address>', 'address to listen on', '127.0.0.1')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .action(async (opts: { port: number; host: string; prefix: string }) => {
      const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));
      const c = await connect(endpoints, logger(), 'mabeam-view');
      const server = createViewServer({ kafka: c.kafka, codec: c.codec, logger: c.logger, prefix: opts.prefix, definitions: c.definitions, redis: c.redis, producer: c.producer });
      const shutDown = async () => {
        await server.close();
        await c.close();
      };
      try {
        await server.listen({ port: opts.port, host: opts.host });
      } catch (error) {
        await shutDown();
        const code = (error as NodeJS.ErrnoException).code;
        if (code === 'EADDRINUSE') throw new MabeamError('PORT_IN_USE', `Cannot serve the view on ${opts.host}:${opts.port}: the port is already in use. Choose another with --port (0 picks a free one).`, { cause: error });
        if (code === 'EACCES' || code === 'EADDRNOTAVAIL' || code === 'ENOTFOUND') throw new MabeamError('INVALID_OPTIONS', `Cannot serve the view on ${opts.host}:${opts.port}: ${(error as Error).message}.`, { cause: error });
        throw error;
      }
      const address = server.server.address() as AddressInfo;
      const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
      const url = `http://${host}:${address.port}/`;
      progress(`view: ${url}`);
      process.send?.({ type: 'ready', agents: [], pool: 'view', instanceId: server.live.instanceId, groupId: server.live.groupId, url });
      // The view's reader stopping for good exits non-zero, so whatever runs it starts it again.
      await untilSignalOrStopped([server.live], shutDown);
      await shutDown();
    });
}
