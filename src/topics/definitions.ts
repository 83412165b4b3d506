import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { MabeamError } from '../errors.ts';
import type { TopicDefinition } from './types.ts';

/** The topics/ folder of this package. */
export const topicsDir = fileURLToPath(new URL('../../topics/', import.meta.url));

const avroName = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*$/;

const definitionSchema = z
  .object({
    name: z.string().regex(/^[a-z][a-z0-9-]*$/, 'lower-case letters, digits and "-"'),
    purpose: z.string().min(1),
    key: z.string().min(1),
    partitions: z.number().int().min(1).max(1000),
    coPartitionGroup: z.string().min(1).optional(),
    replicationFactor: z.number().int().min(1).max(7),
    eventTypes: z.array(z.string().regex(avroName, 'a fully qualified Avro record name')).min(1),
    config: z.record(z.string(), z.string()),
  })
  .strict();

/** Validates one definition; `source` names the file in error messages. */
export function parseTopicDefinition(raw: unknown, source: string): TopicDefinition {
  const parsed = definitionSchema.safeParse(raw);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    throw new MabeamError('INVALID_TOPIC_DEFINITION', `${source}: ${problems}`);
  }
  const d = parsed.data;
  const policy = d.config['cleanup.policy'];
  if (policy !== undefined && !['delete', 'compact', 'compact,delete', 'delete,compact'].includes(policy)) {
    throw new MabeamError('INVALID_TOPIC_DEFINITION', `${source}: cleanup.policy must be delete, compact or both, not "${policy}"`);
  }
  const { coPartitionGroup, ...rest } = d;
  return coPartitionGroup === undefined ? rest : { ...rest, coPartitionGroup };
}

/** Cross-topic rules: unique names, and one partition count and key per co-partition group. */
export function checkTopicSet(definitions: TopicDefinition[]): void {
  const names = new Set<string>();
  for (const d of definitions) {
    if (names.has(d.name)) throw new MabeamError('INVALID_TOPIC_DEFINITION', `Topic "${d.name}" is defined twice.`);
    names.add(d.name);
  }
  const groups = new Map<string, TopicDefinition[]>();
  for (const d of definitions) {
    if (d.coPartitionGroup) groups.set(d.coPartitionGroup, [...(groups.get(d.coPartitionGroup) ?? []), d]);
  }
  for (const [group, members] of groups) {
    const partitions = new Set(members.map((m) => m.partitions));
    const keys = new Set(members.map((m) => m.key));
    if (partitions.size > 1 || keys.size > 1) {
      const list = members.map((m) => `${m.name} (${m.partitions} partitions, key ${m.key})`).join(', ');
      throw new MabeamError(
        'INVALID_TOPIC_DEFINITION',
        `Co-partition group "${group}" must share one partition count and one key, but has: ${list}.`,
      );
    }
  }
}

export async function loadTopicDefinitions(dir: string = topicsDir): Promise<TopicDefinition[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith('.json')).sort();
  const definitions: TopicDefinition[] = [];
  for (const file of files) {
    const path = join(dir, file);
    let raw: unknown;
    try {
      raw = JSON.parse(await readFile(path, 'utf8'));
    } catch (error) {
      throw new MabeamError('INVALID_TOPIC_DEFINITION', `${path}: not valid JSON (${(error as Error).message})`);
    }
    const definition = parseTopicDefinition(raw, path);
    if (`${definition.name}.json` !== file) {
      throw new MabeamError('INVALID_TOPIC_DEFINITION', `${path}: the file must be named after its topic (${definition.name}.json).`);
    }
    definitions.push(definition);
  }
  checkTopicSet(definitions);
  return definitions;
}
