import { readFile, writeFile } from 'node:fs/promises';
import type { Command } from 'commander';
import { generateAsyncApi } from '../../asyncapi/generate.ts';
import { MabeamError } from '../../errors.ts';
import { out, progress } from '../output.ts';

export function registerAsyncApiCommand(program: Command): void {
  program
    .command('asyncapi')
    .description('the AsyncAPI 3 document of the topics, event schemas and roles: printed, written to a file, or checked against one')
    .option('--out <file>', 'write it to this file (e.g. asyncapi.yaml) instead of printing it')
    .option('--check <file>', 'exit 1 if this file is not what would be generated (for CI)')
    .action(async (opts: { out?: string; check?: string }) => {
      if (opts.out && opts.check) throw new MabeamError('INVALID_OPTIONS', '--out and --check are one or the other.');
      const document = await generateAsyncApi();
      if (opts.check) {
        const existing = await readFile(opts.check, 'utf8').catch(() => undefined);
        if (existing === document) {
          out(`${opts.check} is up to date`);
          return;
        }
        throw new MabeamError('OUT_OF_DATE', `${opts.check} ${existing === undefined ? 'does not exist' : 'is not what topics/, schemas/ and security/roles.json give'}: run \`mabeam asyncapi --out ${opts.check}\`.`);
      }
      if (opts.out) {
        await writeFile(opts.out, document);
        progress(`wrote ${opts.out}`);
        return;
      }
      process.stdout.write(document);
    });
}
