import { describe, expect, it } from 'vitest';
import { frame, unframe } from '../../src/codec/wireFormat.ts';
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
});
