import type { Command } from 'commander';
import { InvalidArgumentError } from 'commander';
import type { Logger } from '../../log/logger.ts';
import { resolveEndpoints } from '../../stack/index.ts';
import { applyTopics, defaultTopicPrefix, loadTopicDefinitions, topicName } from '../../topics/index.ts';
import { connect } from '../connect.ts';
import { out, progress, table } from '../output.ts';

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError(`expected a whole number of at least 1, got "${value}"`);
  return n;
}

export function registerTopicCommands(program: Command, logger: () => Logger): void {
  const topics = program.command('topics').description('the declared topics (topics/*.json)');

  topics
    .command('apply')
    .description('create missing topics and bring configs and partitions in line with the definitions (idempotent)')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--replication-factor <n>', 'use this replication factor instead of the definitions\' (capped at the broker count)', positiveInt)
    .option('--json', 'print the changes and warnings as one JSON object')
    .action(async (opts: { prefix: string; replicationFactor?: number; json?: boolean }) => {
      const c = await connect(await resolveEndpoints(program.opts()['stack'] as string), logger());
      try {
        const report = await applyTopics(c.admin, c.definitions, { prefix: opts.prefix, ...(opts.replicationFactor ? { replicationFactor: opts.replicationFactor } : {}) });
        if (opts.json) {
          out(JSON.stringify(report));
          return;
        }
        out(
          table(
            report.changes.map((ch) => {
              if (ch.kind === 'created') return [ch.topic, 'created', `${ch.partitions} partitions, rf ${ch.replicationFactor}`];
              if (ch.kind === 'updated') {
                const what = Object.entries(ch.configs).map(([k, v]) => `${k}: ${v.from ?? 'default'} -> ${v.to}`);
                if (ch.partitions) what.push(`partitions ${ch.partitions.from} -> ${ch.partitions.to}`);
                return [ch.topic, 'updated', what.join(', ')];
              }
              return [ch.topic, 'unchanged', ''];
            }),
          ),
        );
        for (const w of report.warnings) progress(`note: ${w}`);
      } finally {
        await c.close();
      }
    });

  topics
    .command('list')
    .description('list the declared topics and what each holds')
    .option('--prefix <prefix>', 'topic name prefix', defaultTopicPrefix)
    .option('--json', 'print the definitions as JSON, each with its prefixed topic name')
    .action(async (opts: { prefix: string; json?: boolean }) => {
      const definitions = await loadTopicDefinitions();
      if (opts.json) {
        out(JSON.stringify(definitions.map((d) => ({ topic: topicName(opts.prefix, d.name), ...d }))));
        return;
      }
      out(table(definitions.map((d) => [topicName(opts.prefix, d.name), `key ${d.key}`, `${d.partitions}p`, d.config['cleanup.policy'] ?? 'delete', d.purpose])));
    });
}
