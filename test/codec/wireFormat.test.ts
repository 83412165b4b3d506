import { describe, expect, it } from 'vitest';
import avro from 'avsc';
import { encodeFramed, frame, unframe } from '../../src/codec/wireFormat.ts';
import { MabeamError } from '../../src/errors.ts';

function codeOf(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (error) {
    return error instanceof MabeamError ? error.code : 'not a MabeamError';
  }
  return undefined;
}

describe('Confluent wire format', () => {
  it('frames magic byte 0, a big-endian schema id and the body', () => {
    const framed = frame(258, Buffer.from([0xaa, 0xbb]));
    expect([...framed]).toEqual([0, 0, 0, 1, 2, 0xaa, 0xbb]);
    expect(unframe(framed)).toEqual({ schemaId: 258, body: Buffer.from([0xaa, 0xbb]) });
  });

  it('names what is wrong with a message that is not in the wire format', () => {
    expect(codeOf(() => unframe(null))).toBe('EMPTY_MESSAGE');
    expect(codeOf(() => unframe(Buffer.alloc(0)))).toBe('EMPTY_MESSAGE');
    expect(codeOf(() => unframe(Buffer.from('{"json":true}')))).toBe('BAD_MAGIC_BYTE');
    expect(codeOf(() => unframe(Buffer.from([0, 0, 1])))).toBe('TRUNCATED_MESSAGE');
  });

  it('encodes into the same bytes as framing the Avro body, small or larger than its scratch buffer, each record its own', () => {
    const type = avro.Type.forSchema({ type: 'record', name: 'T', fields: [{ name: 's', type: 'string' }, { name: 'n', type: 'long' }] });
    const small = { s: 'hello', n: 42 };
    const large = { s: 'x'.repeat(200_000), n: -7 };
    const first = encodeFramed(7, type, small);
    expect(first.equals(frame(7, type.toBuffer(small)))).toBe(true);
    const big = encodeFramed(9, type, large);
    expect(big.equals(frame(9, type.toBuffer(large)))).toBe(true);
    expect(encodeFramed(7, type, { s: 'other', n: 1 }).equals(frame(7, type.toBuffer({ s: 'other', n: 1 })))).toBe(true);
    // Earlier results are copies: later encodings do not change them.
    expect(first.equals(frame(7, type.toBuffer(small)))).toBe(true);
    expect(type.fromBuffer(unframe(big).body)).toEqual(large);
  });
});
