import { MabeamError } from '../errors.ts';
import type { Protocol } from './types.ts';

/**
 * The protocols a coordinator can run, by name. Built-ins are registered by
 * `builtins.ts`; `registerProtocol` adds one at runtime (user code). Names
 * are case-sensitive and unique.
 */
export class ProtocolRegistry {
  private readonly protocols = new Map<string, Protocol>();

  register(protocol: Protocol): this {
    if (!/^[a-z][a-z0-9-]*$/.test(protocol.name)) {
      throw new MabeamError('INVALID_OPTIONS', `A protocol name is lower-case letters, digits and "-", not "${protocol.name}".`);
    }
    if (this.protocols.has(protocol.name)) throw new MabeamError('INVALID_OPTIONS', `A protocol named "${protocol.name}" is already registered.`);
    if (typeof protocol.complete !== 'function' || typeof protocol.decide !== 'function') {
      throw new MabeamError('INVALID_OPTIONS', `Protocol "${protocol.name}" must have complete() and decide().`);
    }
    this.protocols.set(protocol.name, Object.freeze({ ...protocol }));
    return this;
  }

  get(name: string): Protocol | undefined {
    return this.protocols.get(name);
  }

  names(): string[] {
    return [...this.protocols.keys()].sort();
  }
}
