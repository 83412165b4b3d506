import avro from 'avsc';
import { describe, expect, it } from 'vitest';
import { installAvroGuard } from '../../src/codec/avroGuard.ts';

installAvroGuard();
const type = avro.Type.forSchema({
  type: 'record', name: 'B',
  fields: [{ name: 'a', type: 'string' }, { name: 'bundle', type: { type: 'array', items: 'string' } }, { name: 'm', type: { type: 'map', values: 'double' } }],
});

describe('decoding hostile Avro (the array and map guard)', () => {
  it('decodes honest arrays and maps as before, and a "__proto__" key is data', () => {
    const value = { a: 'x', bundle: ['p', 'q'], m: { k: 1.5 } };
    expect(type.fromBuffer(type.toBuffer(value))).toEqual(value);
    const hostileKey = Buffer.concat([Buffer.from([2, 120, 0]), Buffer.from([2, 18]), Buffer.from('__proto__'), Buffer.alloc(8), Buffer.from([0])]);
    const decoded = type.fromBuffer(hostileKey) as { m: Record<string, number> };
    expect(Object.keys(decoded.m)).toEqual(['__proto__']);
    expect(Object.getPrototypeOf(decoded.m)).toBe(Object.prototype);
  });

  it('refuses at once a count of 2^28 items in a 9-byte body (a flipped bit), directly and through a resolver', () => {
    // a = "x", bundle count = varint 2^28, then the end of the bytes.
    const flipped = Buffer.concat([Buffer.from([2, 120]), Buffer.from([128, 128, 128, 128, 2]), Buffer.from([0, 0])]);
    expect(() => type.fromBuffer(flipped)).toThrow(/truncated/);
    expect(() => type.fromBuffer(flipped, type.createResolver(type))).toThrow(/truncated/);
    const map = Buffer.concat([Buffer.from([2, 120, 0]), Buffer.from([128, 128, 128, 128, 2])]);
    expect(() => type.fromBuffer(map)).toThrow(/truncated/);
  });
});
