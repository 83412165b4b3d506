/**
 * A benchmark's topics and consumer groups, dropped when it is done. Each
 * run writes under a prefix of its own, and a long-lived broker (the `dev`
 * stack) keeps them all: after a day of runs it holds thousands of
 * partitions, its log cleaner scans every compacted one each second
 * (`log.cleaner.backoff.ms`), and idle round latency measured on it was
 * several times what a fresh broker gives. So the benchmarks that measure
 * latency and throughput drop what they created (`--keep-topics` keeps it
 * for a look), and this file also runs on its own to drop what earlier
 * runs left:
 *
 *   node_modules/.bin/node bench/dropPrefix.ts [--start bench-] [--dry-run]
 *
 * drops every topic and consumer group whose name starts with `--start`
 * (default `bench-`) on the broker in KAFKA_BROKERS (or the `dev` stack).
 */
import type { Admin } from 'kafkajs';

/** Deletes the topics and consumer groups whose names start with `start` (with `dryRun`, only lists them); returns their names. */
export async function dropByStart(admin: Admin, start: string, dryRun = false): Promise<{ topics: string[]; groups: string[] }> {
  if (start.length === 0) throw new Error('an empty start would name every topic');
  const topics = (await admin.listTopics()).filter((t) => t.startsWith(start));
  const groups = (await admin.listGroups()).groups.map((g) => g.groupId).filter((g) => g.startsWith(start));
  if (dryRun) return { topics, groups };
  // Groups first: a group with committed offsets for a deleted topic would keep them until it expires.
  // A group that still has members cannot be deleted; it is left, and expires with its offsets.
  for (let i = 0; i < groups.length; i += 100) await admin.deleteGroups(groups.slice(i, i + 100)).catch(() => undefined);
  for (let i = 0; i < topics.length; i += 100) await admin.deleteTopics({ topics: topics.slice(i, i + 100), timeout: 30_000 });
  return { topics, groups };
}

/** What one run under `prefix` created: its topics `<prefix>.…` and its groups `<prefix>.…`. */
export const dropPrefix = (admin: Admin, prefix: string): Promise<{ topics: string[]; groups: string[] }> => dropByStart(admin, `${prefix}.`);

if (import.meta.url === `file://${process.argv[1]}`) {
  const { parseArgs } = await import('node:util');
  const { connect } = await import('../src/cli/connect.ts');
  const { endpointsFromEnvironment, resolveEndpoints } = await import('../src/stack/index.ts');
  const { createLogger } = await import('../src/log/logger.ts');
  const { silenceKafkajsTimerWarnings } = await import('../src/kafka/client.ts');
  silenceKafkajsTimerWarnings();
  const { values } = parseArgs({ options: { start: { type: 'string', default: 'bench-' }, 'dry-run': { type: 'boolean', default: false } } });
  if (!values.start) {
    process.stderr.write('--start must name the beginning of the topics to drop (an empty one would name every topic)\n');
    process.exit(2);
  }
  const c = await connect(endpointsFromEnvironment() ?? (await resolveEndpoints('dev')), createLogger({ level: 'error' }), 'bench-drop', { redis: false });
  try {
    const dropped = await dropByStart(c.admin, values.start!, values['dry-run']);
    process.stderr.write(`${values['dry-run'] ? 'would drop' : 'dropped'} ${dropped.topics.length} topics and ${dropped.groups.length} consumer groups starting with "${values.start}"\n`);
    process.stdout.write(`${JSON.stringify({ start: values.start, dryRun: values['dry-run'], topics: dropped.topics.length, groups: dropped.groups.length })}\n`);
  } finally {
    await c.close();
  }
}
