import type { Command } from 'commander';
import { runLiveDemo } from '../../demo/live.ts';
import { runDemo, type DemoOptions } from '../../demo/walkthrough.ts';
import { MabeamError } from '../../errors.ts';
import type { Logger } from '../../log/logger.ts';
import { endpointsFromEnvironment, readStackCredentials, type StackEndpoints } from '../../stack/index.ts';
import { connect } from '../connect.ts';
import { out, progress } from '../output.ts';
import { untilSignalOrStopped } from '../lifetime.ts';
import { metricsPort } from '../metrics.ts';
import { bringUp } from './dev.ts';

/** The stack a secure demo starts when no --stack is given: a plain stack is never made secure. */
export const secureDemoStack = 'secure';

export function registerDemoCommand(program: Command, logger: () => Logger): void {
  program
    .command('demo')
    .description(
      'run a small real deployment (agent processes, two coordinators, a variable owner, an optimizer, a planner and the live view, under the supervisor) ' +
        'and a narrated scenario against it, on the local stack (started if needed, left running) or on the services in the environment',
    )
    .option('--prefix <prefix>', 'topic name prefix', 'mabeam')
    .option('--keep', 'leave the deployment and the view running after the scenario, until Ctrl-C')
    .option('--view-port <port>', 'the live view\'s port (default 8080, or a free one when 8080 is taken)', metricsPort)
    .option('--json', 'narrate on stderr, and print the ids and facts of each step as one JSON line on stdout')
    .option(
      '--secure',
      `on a secure stack (the local stack "${secureDemoStack}" unless --stack names one; started with --secure if needed), or on the secured cluster the environment logs in to as an admin: ` +
        'each part runs as its own user with its role\'s ACLs, agents sign their events, the coordinator requires signatures, and a forged bid and two writes or reads beyond a role are refused',
    )
    .action(async (opts: { prefix: string; secure?: boolean; keep?: boolean; viewPort?: number; json?: boolean }) => {
      const fromEnvironment = endpointsFromEnvironment();
      // A plain stack is never made secure: without --stack a secure demo runs on a stack of its own.
      const stackName = opts.secure && program.getOptionValueSource('stack') === 'default' ? secureDemoStack : (program.opts()['stack'] as string);
      let endpoints: StackEndpoints;
      let secure: DemoOptions['secure'];
      if (fromEnvironment) {
        endpoints = fromEnvironment;
        if (opts.secure) {
          if (!endpoints.kafkaSasl) throw new MabeamError('INVALID_CREDENTIALS', 'demo --secure on the services in the environment needs an admin login: set KAFKA_SASL_USERNAME and KAFKA_SASL_PASSWORD(_FILE), SCHEMA_REGISTRY_USERNAME and SCHEMA_REGISTRY_PASSWORD(_FILE) (or unset KAFKA_BROKERS to use the local secure stack).');
          secure = {};
        }
      } else {
        const { state } = await bringUp(stackName, logger(), { secure: opts.secure === true });
        endpoints = state.endpoints;
        if (opts.secure) {
          const credentials = await readStackCredentials(state.dir);
          secure = credentials ? { registryReader: { username: 'reader', password: credentials.registry.reader } } : {};
        }
      }
      const c = await connect(endpoints, logger(), 'mabeam-demo');
      try {
        if (opts.secure) {
          // The security walk-through: each part as its own user, signed events, a forgery refused.
          let step = 0;
          const result = await runDemo(c, { prefix: opts.prefix, say: (line) => out(`[${++step}] ${line}`), ...(secure ? { secure } : {}) });
          out(`demo complete: round ${result.roundId}`);
        } else {
          const say = opts.json ? progress : (line: string) => out(line);
          const result = await runLiveDemo(c, {
            prefix: opts.prefix,
            say,
            ...(opts.viewPort !== undefined ? { viewPort: opts.viewPort } : {}),
            ...(opts.keep ? { keepUntil: () => untilSignalOrStopped([], async () => undefined) } : {}),
          });
          if (opts.json) out(JSON.stringify(result));
          else say(`demo complete in ${result.seconds} s: every step's events are in the topics under "${opts.prefix}"`);
        }
      } finally {
        await c.close();
      }
      if (!fromEnvironment) progress(`the local stack keeps running for the next command; \`bin/mabeam ${program.getOptionValueSource('stack') === 'default' && !opts.secure ? '' : `--stack ${stackName} `}dev down\` stops it`);
    });
}
