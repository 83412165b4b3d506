import { readFile } from 'node:fs/promises';
import { InvalidArgumentError, type Command } from 'commander';
import type { Logger } from '../../log/logger.ts';
import { endpointsFromEnvironment, resolveEndpoints } from '../../stack/index.ts';
import { defaultTopicPrefix } from '../../topics/index.ts';
import { VariablesClient } from '../../variables/client.ts';
import { defineVariable, type Value } from '../../variables/model.ts';
import type { VariableRecord } from '../../variables/types.ts';
import { connect, type Connections } from '../connect.ts';
import { untilSignalOrStopped } from '../lifetime.ts';
import { out, progress, table } from '../output.ts';

const version = (value: string): number => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError(`expected a version (a whole number, 0 or more), got "${value}"`);
  return n;
};

/** A value on the command line is JSON (`0.3`, `true`, `["a","b"]`, `"text"`); anything that is not JSON is taken as a string. */
export function parseValue(text: string): Value {
  try {
    return JSON.parse(text) as Value;
  } catch {
    return text;
  }
}

const line = (r: VariableRecord) => JSON.stringify({ id: r.id, version: r.version, value: r.value, writerId: r.writerId, eventTime: new Date(r.eventTime).toISOString() });

/** Runs `work` with a started VariablesClient of this command's stack and prefix, and closes everything after. */
export async function withClient<T>(program: Command, logger: () => Logger, prefix: string, work: (client: VariablesClient, c: Connections) => Promise<T>): Promise<T> {
  const endpoints = endpointsFromEnvironment() ?? (await resolveEndpoints(program.opts()['stack'] as string));
  const c = await connect(endpoints, logger(), 'mabeam-var');
  const client = new VariablesClient({ kafka: c.kafka, codec: c.codec, producer: c.producer, logger: c.logger, prefix });
  try {
    await client.start();
    return await work(client, c);
  } finally {
    await client.stop().catch(() => undefined);
    await c.close();
  }
}

export const prefixOption = ['--prefix <prefix>', 'topic name prefix', defaultTopicPrefix] as const;

export function registerVariableCommands(program: Command, logger: () => Logger): void {
  const variables = program.command('var').description('distributed variables: define, set, get, list, watch');

  variables
    .command('define <file>')
    .description('define a variable from a JSON definition file ("-" for stdin); defining it again the same way changes nothing')
    .option(...prefixOption)
    .action(async (file: string, opts: { prefix: string }) => {
      const text = file === '-' ? await new Response(process.stdin as unknown as ReadableStream).text() : await readFile(file, 'utf8');
      const definition = defineVariable(JSON.parse(text));
      await withClient(program, logger, opts.prefix, async (client) => out(line(await client.define(definition))));
    });

  variables
    .command('set <id> <value>')
    .description('change a value (JSON; text that is not JSON is a string); with --expected-version only if the variable is at that version')
    .option(...prefixOption)
    .option('--expected-version <n>', 'compare-and-set: the version the change is based on', version)
    .option('--cause <cause>', 'why (recorded with the change)', 'set')
    .action(async (id: string, value: string, opts: { prefix: string; expectedVersion?: number; cause: string }) => {
      await withClient(program, logger, opts.prefix, async (client) =>
        out(line(await client.set(id, parseValue(value), { cause: opts.cause, ...(opts.expectedVersion !== undefined ? { expectedVersion: opts.expectedVersion } : {}) }))),
      );
    });

  variables
    .command('get <id>')
    .description('print a variable (its value, version and who set it)')
    .option(...prefixOption)
    .action(async (id: string, opts: { prefix: string }) => {
      await withClient(program, logger, opts.prefix, async (client) => {
        const record = await client.get(id);
        if (!record) {
          progress(`mabeam: no variable ${id}`);
          process.exitCode = 1;
          return;
        }
        out(line(record));
      });
    });

  variables
    .command('list')
    .description('every variable with its type, value and version')
    .option(...prefixOption)
    .option('--json', 'print every variable as JSON (as var get prints one)')
    .action(async (opts: { prefix: string; json?: boolean }) => {
      await withClient(program, logger, opts.prefix, async (client) => {
        const all = await client.all();
        if (opts.json) {
          out(JSON.stringify(all));
          return;
        }
        out(table([['ID', 'TYPE', 'VERSION', 'VALUE'], ...all.map((r) => [r.id, r.definition.type, String(r.version), JSON.stringify(r.value)])]));
      });
    });

  variables
    .command('watch <id>')
    .description('print the value, then every change, a JSON line each, until SIGINT / SIGTERM')
    .option(...prefixOption)
    .action(async (id: string, opts: { prefix: string }) => {
      await withClient(program, logger, opts.prefix, async (client) => {
        const subscription = client.watch(id).subscribe((r) => out(line(r)));
        process.send?.({ type: 'ready' });
        // A watch whose reader has stopped for good exits non-zero instead of printing nothing more.
        await untilSignalOrStopped([client], async () => subscription.unsubscribe());
        subscription.unsubscribe();
      });
    });
}
