import { readFileSync } from 'node:fs';
import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { loadCatalog } from '../../src/schemas/catalog.ts';

/**
 * The Avro bodies of events are a contract with every other producer and
 * consumer (any language, any tool): these bytes were captured from the
 * schemas and must keep decoding to exactly these objects.
 */
const fixture = (name: string): Buffer => Buffer.from(readFileSync(new URL(`../fixtures/${name}`, import.meta.url), 'utf8').trim(), 'hex');

describe('Avro fixtures', () => {
  it('decodes captured Bid bytes to the exact event, and encodes it to the same bytes', async () => {
    const type = (await loadCatalog()).get('Bid')!.type;
    const bid = {
      envelope: {
        eventId: '3f1c2a9e-7b1d-4c55-9a43-1f7e2c8d0b6a',
        eventType: 'Bid',
        correlationId: 'round-42',
        causationId: 'req-7',
        producerId: 'agent-7',
        eventTime: 1767225600000,
      },
      roundId: 'round-42',
      agentId: 'agent-7',
      amount: 12.5,
      bundle: ['cpu', 'gpu'],
      attributes: '{"note":"fixture"}',
    };
    expect({ ...type.fromBuffer(fixture('bid.avro.hex')) }).toEqual(bid);
    expect(type.toBuffer(bid).equals(fixture('bid.avro.hex'))).toBe(true);
  });

  it('decodes captured DeadLetter bytes, original bytes and headers included', async () => {
    const type = (await loadCatalog()).get('DeadLetter')!.type;
    const decoded = type.fromBuffer(fixture('dead-letter.avro.hex')) as Record<string, unknown>;
    expect(decoded['reasonCode']).toBe('BAD_MAGIC_BYTE');
    expect(decoded['sourceTopic']).toBe('mabeam.bids');
    expect(decoded['sourcePartition']).toBe(3);
    expect(decoded['sourceOffset']).toBe(17);
    expect(decoded['sourceTimestamp']).toBe(1767225599000);
    expect(decoded['schemaId']).toBeNull();
    expect((decoded['key'] as Buffer).toString()).toBe('round-42');
    expect((decoded['value'] as Buffer).toString()).toBe('{"amount":1}');
    expect((decoded['headers'] as Array<{ key: string; value: Buffer }>).map((h) => [h.key, h.value.toString()])).toEqual([
      ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
    ]);
  });

  it('decodes RoundOutcome bytes written before outcomes said the round\'s kind and electorate: they read as unknown kind, no named voters', async () => {
    // The writer's schema as the registry holds it for those bytes (self-contained, envelope inlined).
    const writer = avro.Type.forSchema(JSON.parse(readFileSync(new URL('../fixtures/round-outcome.v2.avsc', import.meta.url), 'utf8')) as avro.Schema);
    const reader = (await loadCatalog()).get('RoundOutcome')!.type;
    const captured = fixture('round-outcome.v2.avro.hex');
    const written = {
      envelope: {
        eventId: '8d0c4b1e-2f6a-4e8b-b1d3-5a7c9e0f2b46',
        eventType: 'RoundOutcome',
        correlationId: 'round-43',
        causationId: 'vote-v3',
        producerId: 'coordinator-1',
        eventTime: 1767225601000,
      },
      roundId: 'round-43',
      protocol: 'majority',
      status: 'decided',
      winners: [],
      price: null,
      value: '"yes"',
      reason: '"yes" has 2 of 3 votes',
      details: '{"cast":3}',
      subject: '{"variableId":"active-team","value":["v1","v2"],"version":1}',
    };
    expect({ ...writer.fromBuffer(captured) }).toEqual(written);
    expect({ ...reader.fromBuffer(captured, reader.createResolver(writer)) }).toEqual({ ...written, kind: null, eligible: [] });
    // And the current schema writes the new fields after the old ones, so the old bytes are a prefix of the new.
    const now = reader.toBuffer({ ...written, kind: 'consensus', eligible: ['v1', 'v2', 'v3'] });
    expect(now.subarray(0, captured.length).equals(captured)).toBe(true);
    expect({ ...reader.fromBuffer(now) }).toEqual({ ...written, kind: 'consensus', eligible: ['v1', 'v2', 'v3'] });
  });
});
