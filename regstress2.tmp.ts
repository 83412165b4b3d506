import { startStack, stopStack } from './src/stack/index.ts';
import { createRegistryClient, registerCatalog } from './src/schemas/registry.ts';
import { loadCatalog } from './src/schemas/catalog.ts';
import { createLogger } from './src/log/logger.ts';
const env = { ...process.env }; delete env.KAFKA_BROKERS; delete env.SCHEMA_REGISTRY_URL; delete env.REDIS_URL;
const { state } = await startStack({ name: 'regstress', ephemeral: true, env }, createLogger({ level: 'warn' }));
const url = state.endpoints.schemaRegistryUrl;
const catalog = await loadCatalog();
try {
  for (const n of [12, 12]) {
    const t0 = Date.now();
    const results = await Promise.allSettled(Array.from({ length: n }, async () => {
      const s = Date.now();
      await registerCatalog(createRegistryClient(url), url, catalog);
      return Date.now() - s;
    }));
    console.log(JSON.stringify(results.map((r) => r.status === 'fulfilled' ? r.value : String((r as PromiseRejectedResult).reason).slice(0, 160))), 'total', Date.now() - t0);
  }
} finally {
  console.log('registry log:', state.services.find((s) => s.name === 'registry')?.logFile);
  await new Promise((r) => setTimeout(r, 100));
  const { execSync } = await import('node:child_process');
  console.log(execSync(`grep -v " INFO " ${state.services.find((s) => s.name === 'registry')?.logFile} | tail -30`).toString());
  await stopStack(state, { timeoutMs: 10_000 });
}
