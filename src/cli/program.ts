import { Command } from 'commander';
import { MabeamError, describeError } from '../errors.ts';
import { silenceKafkajsTimerWarnings } from '../kafka/client.ts';
import { explainKafkaError, loginHint } from '../security/kafkaErrors.ts';
import { createLogger, type Logger } from '../log/logger.ts';
import { startSpanExport } from '../tracing/export.ts';
import { registerAgentCommands } from './commands/agents.ts';
import { registerAsyncApiCommand } from './commands/asyncapi.ts';
import { registerAuditCommands } from './commands/audit.ts';
import { registerCoordinatorCommand } from './commands/coordinator.ts';
import { registerDemoCommand } from './commands/demo.ts';
import { registerDevCommands } from './commands/dev.ts';
import { registerOptimizeCommands } from './commands/optimize.ts';
import { registerOrchestratorCommands } from './commands/orchestrator.ts';
import { registerPlanCommands } from './commands/plan.ts';
import { registerRoundCommands } from './commands/round.ts';
import { registerReplayCommand } from './commands/replay.ts';
import { registerSchemaCommands } from './commands/schemas.ts';
import { registerSecurityCommands } from './commands/security.ts';
import { registerSuperviseCommand } from './commands/supervise.ts';
import { registerTopicCommands } from './commands/topics.ts';
import { registerVariableCommands } from './commands/variables.ts';
import { registerViewCommand } from './commands/view.ts';

silenceKafkajsTimerWarnings();
// Output piped into a reader that stops early (`| head`): stop quietly, as other command-line tools do.
process.stdout.on('error', (error: NodeJS.ErrnoException) => {
  if (error.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw error;
});

const program = new Command()
  .name('mabeam')
  .description('Multi-agent coordination over Apache Kafka')
  .option('--stack <name>', 'name of the local stack to use', 'dev')
  .option('--log-level <level>', 'log level on stderr (silent, error, warn, info, debug)', process.env['MABEAM_LOG_LEVEL'] ?? 'error')
  .showHelpAfterError();

let logger: Logger | undefined;
const getLogger = (): Logger => (logger ??= createLogger({ level: program.opts()['logLevel'] as string }));

registerDevCommands(program, getLogger);
registerTopicCommands(program, getLogger);
registerSchemaCommands(program, getLogger);
registerSecurityCommands(program, getLogger);
registerAgentCommands(program, getLogger);
registerSuperviseCommand(program, getLogger);
registerCoordinatorCommand(program, getLogger);
registerVariableCommands(program, getLogger);
registerOrchestratorCommands(program, getLogger);
registerRoundCommands(program, getLogger);
registerReplayCommand(program, getLogger);
registerAuditCommands(program, getLogger);
registerOptimizeCommands(program, getLogger);
registerPlanCommands(program, getLogger);
registerViewCommand(program, getLogger);
registerDemoCommand(program, getLogger);
registerAsyncApiCommand(program);

// Spans are exported only where OTEL_EXPORTER_OTLP_ENDPOINT asks for it.
const spans = await startSpanExport();
try {
  await program.parseAsync(process.argv);
} catch (caught) {
  // A login or a right Kafka refused is said as such, not as kafkajs's protocol error.
  const error = explainKafkaError(caught, loginHint()) ?? caught;
  const code = error instanceof MabeamError ? ` [${error.code}]` : '';
  process.stderr.write(`mabeam: ${describeError(error)}${code}\n`);
  process.exitCode = 1;
}
await spans?.shutdown().catch((error: unknown) => process.stderr.write(`mabeam: exporting spans failed: ${describeError(error)}\n`));
// The command has finished. If a client library still holds a handle open (a
// reconnect timer), do not let it keep the process alive.
// What is still on its way to stdout (a large report into a slow pipe) is let out first.
setTimeout(() => {
  if (process.stdout.writableLength > 0) process.stdout.once('drain', () => process.exit());
  else process.exit();
}, 2_000).unref();
