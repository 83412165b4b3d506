import { access } from 'node:fs/promises';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { MabeamError, describeError } from '../errors.ts';
import { registerProtocol, sharedProtocols } from './builtins.ts';
import type { ProtocolRegistry } from './registry.ts';
import type { Protocol } from './types.ts';

/**
 * Loads modules that add protocols, for every command that runs or re-runs
 * rounds (`coordinator run`, `round start`, `replay --with`). A module
 * either default-exports a protocol (or an array of them), which is
 * registered here, or calls `registerProtocol` itself when imported.
 * Returns the shared registry with the modules' protocols in it, and the
 * names each module added.
 */
export async function loadProtocolModules(paths: readonly string[]): Promise<{ protocols: ProtocolRegistry; added: string[] }> {
  const added: string[] = [];
  for (const path of paths) {
    const file = resolve(path);
    try {
      await access(file);
    } catch {
      throw new MabeamError('PROTOCOL_MODULE_INVALID', `No protocol module at ${file}.`);
    }
    const before = new Set(sharedProtocols().names());
    let loaded: { default?: unknown };
    try {
      loaded = (await import(pathToFileURL(file).href)) as { default?: unknown };
    } catch (error) {
      throw new MabeamError('PROTOCOL_MODULE_INVALID', `Loading ${file} failed: ${describeError(error)}`, { cause: error });
    }
    const exported = loaded.default === undefined ? [] : Array.isArray(loaded.default) ? (loaded.default as unknown[]) : [loaded.default];
    for (const candidate of exported) {
      if (!isProtocol(candidate)) throw new MabeamError('PROTOCOL_MODULE_INVALID', `${file} must export (as default) a protocol ({ name, kind, complete, decide }) or an array of them.`);
      // A module imported twice (or one that also registers what it exports) adds its protocol once.
      if (sharedProtocols().get(candidate.name) === undefined) registerProtocol(candidate);
    }
    const now = sharedProtocols().names().filter((name) => !before.has(name));
    if (now.length === 0 && exported.length === 0) throw new MabeamError('PROTOCOL_MODULE_INVALID', `${file} neither exports a protocol nor registers one (registerProtocol).`);
    added.push(...now);
  }
  return { protocols: sharedProtocols(), added };
}

function isProtocol(value: unknown): value is Protocol {
  const p = value as Partial<Protocol> | null;
  return !!p && typeof p === 'object' && typeof p.name === 'string' && (p.kind === 'auction' || p.kind === 'consensus') && typeof p.complete === 'function' && typeof p.decide === 'function';
}
