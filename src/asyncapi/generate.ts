import { readFile } from 'node:fs/promises';
import { loadCatalog } from '../schemas/catalog.ts';
import { loadRoles } from '../security/roles.ts';
import { loadTopicDefinitions } from '../topics/index.ts';
import { asyncApiYaml } from './document.ts';

/** The AsyncAPI document of this checkout (or installed package): its topics, schemas, roles and version. */
export async function generateAsyncApi(): Promise<string> {
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };
  const [definitions, catalog, roles] = await Promise.all([loadTopicDefinitions(), loadCatalog(), loadRoles()]);
  return asyncApiYaml({ version: pkg.version, definitions, catalog, roles });
}
