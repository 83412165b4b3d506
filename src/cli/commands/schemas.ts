import type { Command } from 'commander';
import type { Logger } from '../../log/logger.ts';
import { loadCatalog } from '../../schemas/catalog.ts';
import { createRegistryClient, registerCatalog, registryTargetFor } from '../../schemas/registry.ts';
import { resolveEndpoints } from '../../stack/index.ts';
import { out, table } from '../output.ts';

export function registerSchemaCommands(program: Command, _logger: () => Logger): void {
  const schemas = program.command('schemas').description('the Avro event schemas (schemas/)');

  schemas
    .command('register')
    .description('register every event schema with BACKWARD compatibility (subject = record name); idempotent')
    .option('--json', 'print each subject with its schema id, as JSON')
    .action(async (opts: { json?: boolean }) => {
      const endpoints = await resolveEndpoints(program.opts()['stack'] as string);
      const results = await registerCatalog(createRegistryClient(registryTargetFor(endpoints)), registryTargetFor(endpoints), await loadCatalog());
      if (opts.json) {
        out(JSON.stringify(results));
        return;
      }
      out(table(results.map((r) => [r.subject, `id ${r.id}`])));
    });

  schemas
    .command('list')
    .description('list the event types and their fields')
    .option('--json', 'print each event type with its full Avro schema, as JSON')
    .action(async (opts: { json?: boolean }) => {
      const catalog = await loadCatalog();
      if (opts.json) {
        out(JSON.stringify([...catalog.events.values()].map((e) => ({ name: e.name, fullName: e.fullName, schema: e.schema }))));
        return;
      }
      out(
        table(
          [...catalog.events.values()].map((e) => [
            e.fullName,
            (e.schema['fields'] as Array<{ name: string }>)
              .slice(1)
              .map((f) => f.name)
              .join(', '),
          ]),
        ),
      );
    });
}
