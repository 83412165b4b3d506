import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { AvroSchemaParser } from '@asyncapi/avro-schema-parser';
import { Parser } from '@asyncapi/parser';
import { parse, stringify } from 'yaml';
import { describe, expect, it } from 'vitest';
import { asyncApiDocument } from '../../src/asyncapi/document.ts';
import { generateAsyncApi } from '../../src/asyncapi/generate.ts';
import { loadCatalog } from '../../src/schemas/catalog.ts';
import { loadRoles } from '../../src/security/roles.ts';
import { loadTopicDefinitions } from '../../src/topics/index.ts';

const committed = fileURLToPath(new URL('../../asyncapi.yaml', import.meta.url));
const parser = new Parser();
parser.registerSchemaParser(AvroSchemaParser());

/** What the AsyncAPI parser finds wrong (severity 0 is an error). */
async function errorsOf(text: string): Promise<string[]> {
  const { diagnostics } = await parser.parse(text);
  return diagnostics.filter((d) => d.severity === 0).map((d) => `${d.path.join('.')}: ${d.message}`);
}

describe('asyncapi.yaml', () => {
  it('is what topics/, schemas/ and security/roles.json give (`mabeam asyncapi --out asyncapi.yaml` regenerates it)', async () => {
    expect(await generateAsyncApi()).toBe(await readFile(committed, 'utf8'));
  });

  it('is a valid AsyncAPI 3 document with Avro payloads, a channel per topic and who sends and receives on it', async () => {
    const text = await generateAsyncApi();
    expect(await errorsOf(text)).toEqual([]);
    const { document } = await parser.parse(text);
    const topics = (await loadTopicDefinitions()).map((d) => d.name).sort();
    expect(document!.channels().all().map((c) => c.id()).sort()).toEqual(topics);
    const bids = document!.channels().get('bids')!;
    expect(bids.address()).toBe('{prefix}.bids');
    expect(bids.messages().all().map((m) => m.id())).toEqual(['Bid']);
    expect((bids.bindings().get('kafka')!.value() as { partitions: number }).partitions).toBe(12);
    const on = (channel: string) => document!.operations().all().filter((o) => o.channels().all().some((c) => c.id() === channel)).map((o) => o.id() ?? '').sort();
    expect(on('outcomes').filter((id) => id.includes('.send.'))).toEqual(['coordinator.send.outcomes']);
    expect(on('round-state').filter((id) => id.includes('.receive.'))).toEqual(['coordinator.receive.round-state']);
    expect(on('bids')).toContain('agent.send.bids');
  });

  it('a broken document fails the parser: a message that is not there, an Avro payload that is not Avro', async () => {
    const doc = parse(await generateAsyncApi()) as { components: { messages: Record<string, { payload: { schema: unknown } }> } };
    const missing = structuredClone(doc);
    delete missing.components.messages['Bid'];
    expect((await errorsOf(stringify(missing))).join('\n')).toMatch(/Bid/);
    const notAvro = structuredClone(doc);
    notAvro.components.messages['Vote']!.payload.schema = { type: 'record', name: 'Vote', fields: [{ name: 'x', type: 'no-such-type' }] };
    expect(await errorsOf(stringify(notAvro))).not.toEqual([]);
  });

  it('a topic naming an event type schemas/ does not define is refused with INVALID_TOPIC_DEFINITION', async () => {
    const [definitions, catalog, roles] = await Promise.all([loadTopicDefinitions(), loadCatalog(), loadRoles()]);
    const bids = definitions.find((d) => d.name === 'bids')!;
    const broken = definitions.map((d) => (d === bids ? { ...d, eventTypes: [...d.eventTypes, 'io.mabeam.NoSuchEvent'] } : d));
    expect(() => asyncApiDocument({ version: '0.0.0', definitions: broken, catalog, roles })).toThrow(
      expect.objectContaining({ code: 'INVALID_TOPIC_DEFINITION', message: expect.stringContaining('topics/bids.json names the event type io.mabeam.NoSuchEvent') }),
    );
  });
});
