import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import avro from 'avsc';
import { MabeamError } from '../errors.ts';

/** The schemas/ folder of this package. */
export const schemasDir = fileURLToPath(new URL('../../schemas/', import.meta.url));

export const envelopeName = 'io.mabeam.Envelope';

/** One event type: its self-contained Avro schema and the parsed type. */
export interface EventSchema {
  /** Short name, also the envelope's eventType, e.g. `Bid`. */
  name: string;
  /** Fully qualified record name, e.g. `io.mabeam.events.Bid`; also the registry subject. */
  fullName: string;
  /** The schema as registered: the envelope is inlined, so it has no references. */
  schema: Record<string, unknown>;
  type: avro.Type;
}

export interface SchemaCatalog {
  events: ReadonlyMap<string, EventSchema>;
  /** Looks an event type up by short or full name. */
  get(name: string): EventSchema | undefined;
}

export function createCatalog(events: EventSchema[]): SchemaCatalog {
  const byFull = new Map(events.map((e) => [e.fullName, e]));
  const byShort = new Map(events.map((e) => [e.name, e]));
  return { events: byFull, get: (name) => byFull.get(name) ?? byShort.get(name) };
}

/**
 * Makes an event schema self-contained: the field typed `io.mabeam.Envelope`
 * gets the envelope's definition. Every event file can then say just
 * `"type": "io.mabeam.Envelope"` while the registry receives a schema without
 * references (which every Confluent-API registry handles the same way).
 */
export function inlineEnvelope(schema: Record<string, unknown>, envelope: Record<string, unknown>): Record<string, unknown> {
  const fields = schema['fields'];
  if (!Array.isArray(fields)) return schema;
  return {
    ...schema,
    fields: fields.map((f: Record<string, unknown>) => (f['type'] === envelopeName ? { ...f, type: envelope } : f)),
  };
}

export function parseEventSchema(raw: Record<string, unknown>, envelope: Record<string, unknown>, source: string): EventSchema {
  const schema = inlineEnvelope(raw, envelope);
  let type: avro.Type;
  try {
    type = avro.Type.forSchema(schema as avro.Schema);
  } catch (error) {
    throw new MabeamError('INVALID_SCHEMA', `${source}: not a valid Avro schema (${(error as Error).message})`);
  }
  const fullName = type.name;
  if (!fullName || type.typeName !== 'record') throw new MabeamError('INVALID_SCHEMA', `${source}: an event schema must be a named record.`);
  const first = (schema['fields'] as Array<Record<string, unknown>>)[0];
  if (first?.['name'] !== 'envelope') throw new MabeamError('INVALID_SCHEMA', `${source}: the first field of an event must be its envelope.`);
  const name = fullName.slice(fullName.lastIndexOf('.') + 1);
  return { name, fullName, schema, type };
}

export async function loadCatalog(dir: string = schemasDir): Promise<SchemaCatalog> {
  const envelope = JSON.parse(await readFile(join(dir, 'envelope.avsc'), 'utf8')) as Record<string, unknown>;
  const eventsDir = join(dir, 'events');
  const files = (await readdir(eventsDir)).filter((f) => f.endsWith('.avsc')).sort();
  const events: EventSchema[] = [];
  for (const file of files) {
    const path = join(eventsDir, file);
    const event = parseEventSchema(JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>, envelope, path);
    if (`${event.name}.avsc` !== file) throw new MabeamError('INVALID_SCHEMA', `${path}: the file must be named after its record (${event.name}.avsc).`);
    events.push(event);
  }
  return createCatalog(events);
}
