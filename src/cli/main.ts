#!/usr/bin/env node
/**
 * The CLI's entry. Node's module compile cache is turned on before the
 * program's modules load (they are most of a command's start): after a
 * first run a command starts in about half the time. The cache is kept in
 * the system's temporary folder, or where NODE_COMPILE_CACHE says.
 */
import { enableCompileCache } from 'node:module';

enableCompileCache?.();
await import('./program.ts');
