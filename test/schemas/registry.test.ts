import { randomBytes } from 'node:crypto';
import { createServer, type AddressInfo, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventCodec } from '../../src/codec/codec.ts';
import { MabeamError } from '../../src/errors.ts';
import { newEnvelope } from '../../src/events/envelope.ts';
import { createCatalog, parseEventSchema } from '../../src/schemas/catalog.ts';
import { createRegistryClient, registerCatalog, registerSchema, setSubjectCompatibility } from '../../src/schemas/registry.ts';
import { testContext, type TestContext } from '../helpers.ts';

let ctx: TestContext;
beforeAll(async () => {
  ctx = await testContext('schemas', { applyTopics: false });
});
afterAll(() => ctx?.close());

describe('schema registration', () => {
  it('registers every event type under its record name, idempotently', async () => {
    const first = await registerCatalog(ctx.registry, ctx.stack.schemaRegistryUrl, ctx.catalog);
    expect(first.map((r) => r.subject).sort()).toEqual([...ctx.catalog.events.keys()].sort());
    const again = await registerCatalog(ctx.registry, ctx.stack.schemaRegistryUrl, ctx.catalog);
    expect(again).toEqual(first);
    const config = await fetch(`${ctx.stack.schemaRegistryUrl}/config/io.mabeam.events.Bid`).then((r) => r.json());
    expect(config).toMatchObject({ compatibilityLevel: 'BACKWARD' });
    // The deploy step puts back a rule someone loosened, though every schema is already registered.
    await setSubjectCompatibility(ctx.stack.schemaRegistryUrl, 'io.mabeam.events.Bid', 'NONE');
    await registerCatalog(ctx.registry, ctx.stack.schemaRegistryUrl, ctx.catalog);
    expect(await fetch(`${ctx.stack.schemaRegistryUrl}/config/io.mabeam.events.Bid`).then((r) => r.json())).toMatchObject({ compatibilityLevel: 'BACKWARD' });
  });

  it('accepts a BACKWARD-compatible change and refuses one that breaks it', async () => {
    const namespace = `io.mabeam.test.t${randomBytes(4).toString('hex')}`;
    const realEnvelope = JSON.parse(JSON.stringify(ctx.catalog.get('Bid')!.schema['fields'] as unknown[]))[0].type;
    const version = (extra: unknown[]) =>
      parseEventSchema({ type: 'record', name: 'Thing', namespace, fields: [{ name: 'envelope', type: 'io.mabeam.Envelope' }, { name: 'a', type: 'string' }, ...extra] }, realEnvelope, 'test');
    const v1 = version([]);
    const v2 = version([{ name: 'b', type: 'int', default: 7 }]);
    const v3 = version([{ name: 'b', type: 'int', default: 7 }, { name: 'c', type: 'string' }]);
    const id1 = await registerSchema(ctx.registry, ctx.stack.schemaRegistryUrl, v1);
    const id2 = await registerSchema(ctx.registry, ctx.stack.schemaRegistryUrl, v2);
    expect(id2).not.toBe(id1);
    const refused = await registerSchema(ctx.registry, ctx.stack.schemaRegistryUrl, v3).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(MabeamError);
    expect((refused as MabeamError).code).toBe('SCHEMA_INCOMPATIBLE');
    expect((refused as MabeamError).message).toMatch(new RegExp(`${namespace}.Thing.*BACKWARD`));

    // An event written with v1 reads as v2: the new field takes its default.
    const writer = new EventCodec({ registry: ctx.registry, registryUrl: ctx.stack.schemaRegistryUrl, catalog: createCatalog([v1]) });
    const reader = new EventCodec({ registry: createRegistryClient(ctx.stack.schemaRegistryUrl), registryUrl: ctx.stack.schemaRegistryUrl, catalog: createCatalog([v2]) });
    const env = { ...newEnvelope('Bid', 'p'), eventType: 'Thing' };
    const bytes = await writer.encode('Thing', { envelope: env, a: 'x' });
    expect(bytes.readInt32BE(1)).toBe(id1);
    const decoded = await reader.decode(bytes);
    expect(decoded.event).toEqual({ envelope: env, a: 'x', b: 7 });
  });

  it('lets several processes register the same new subject at the same moment', async () => {
    const namespace = `io.mabeam.test.c${randomBytes(4).toString('hex')}`;
    const realEnvelope = JSON.parse(JSON.stringify(ctx.catalog.get('Bid')!.schema['fields'] as unknown[]))[0].type;
    const schema = parseEventSchema({ type: 'record', name: 'Race', namespace, fields: [{ name: 'envelope', type: 'io.mabeam.Envelope' }] }, realEnvelope, 'test');
    const clients = Array.from({ length: 6 }, () => createRegistryClient(ctx.stack.schemaRegistryUrl));
    const ids = await Promise.all(clients.map((client) => registerSchema(client, ctx.stack.schemaRegistryUrl, schema)));
    expect(new Set(ids).size).toBe(1);
  });

  it('reports a registry that does not answer as retriable, not as bad data', async () => {
    const codec = new EventCodec({ registry: createRegistryClient('http://127.0.0.1:9/apis/ccompat/v7'), registryUrl: 'http://127.0.0.1:9', catalog: ctx.catalog });
    const error = await codec.decode(Buffer.from([0, 0, 0, 0, 5, 1, 2])).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(MabeamError);
    expect((error as MabeamError).code).toBe('REGISTRY_UNAVAILABLE');
    expect((error as MabeamError).retriable).toBe(true);
  });

  it('gives up on a registry that accepts the connection and never answers, as retriable', async () => {
    const sockets: Socket[] = [];
    const silent = createServer((socket) => void sockets.push(socket)); // reads nothing, answers nothing
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    const url = `http://127.0.0.1:${(silent.address() as AddressInfo).port}`;
    try {
      const registry = createRegistryClient(url, 200);
      const codec = new EventCodec({ registry, registryUrl: url, catalog: ctx.catalog });
      for (const attempt of [codec.decode(Buffer.from([0, 0, 0, 0, 5, 1, 2])), registerSchema(registry, url, ctx.catalog.events.values().next().value!)]) {
        const error = await attempt.catch((e: unknown) => e);
        expect(error).toBeInstanceOf(MabeamError);
        expect((error as MabeamError).code).toBe('REGISTRY_UNAVAILABLE');
        expect((error as MabeamError).retriable).toBe(true);
      }
    } finally {
      for (const socket of sockets) socket.destroy();
      await new Promise((resolve) => silent.close(resolve));
    }
  });
});
