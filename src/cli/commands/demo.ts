import type { Command } from 'commander';
import { runDemo } from '../../demo/demo.ts';
import type { Logger } from '../../log/logger.ts';
import { endpointsFromEnvironment } from '../../stack/index.ts';
import { connect } from '../connect.ts';
import { out, progress } from '../output.ts';
import { bringUp } from './dev.ts';

export function registerDemoCommand(program: Command, logger: () => Logger): void {
  program
    .command('demo')
    .description('run the demo on the local stack (started if needed, left running) or on the services in the environment')
    .option('--prefix <prefix>', 'topic name prefix', 'mabeam')
    .action(async (opts: { prefix: string }) => {
      const name = program.opts()['stack'] as string;
      const endpoints = endpointsFromEnvironment() ?? (await bringUp(name, logger())).state.endpoints;
      const c = await connect(endpoints, logger(), 'mabeam-demo');
      try {
        let step = 0;
        const result = await runDemo(c, { prefix: opts.prefix, say: (line) => out(`[${++step}] ${line}`) });
        out(`demo complete: round ${result.roundId}`);
      } finally {
        await c.close();
      }
      if (!endpointsFromEnvironment()) progress(`the local stack keeps running for the next command; \`bin/mabeam dev down\` stops it`);
    });
}
