import type { AgentRegistry } from './registry.ts';

/** Who can take work of a capability now: ids of running agents. */
export interface AgentDirectory {
  agents(capability: string): Promise<string[]>;
}

/**
 * Running agents from the agent registry: agents with the capability whose
 * last lifecycle transition is `running` and whose heartbeats are current
 * (alive or lagging) — or, when none is, those whose heartbeats are late
 * but not yet given up on (unresponsive: on a loaded machine a live agent's
 * heartbeats run late before anything else does). An agent that died
 * without saying so drops out once its heartbeats are overdue (dead); until
 * then a lease is what catches it.
 */
export class RegistryAgents implements AgentDirectory {
  private readonly registry: AgentRegistry;

  constructor(registry: AgentRegistry) {
    this.registry = registry;
  }

  async agents(capability: string): Promise<string[]> {
    const ids = await this.registry.find({ capabilities: [capability], state: 'running' });
    if (ids.length === 0) return [];
    const health = await this.registry.health(ids);
    const current = health.filter((h) => h.health === 'alive' || h.health === 'lagging');
    const found = current.length > 0 ? current : health.filter((h) => h.health === 'unresponsive');
    return found.map((h) => h.agentId).sort();
  }
}

/**
 * A directory's answers, kept for `maxAgeMs` from when they were asked.
 * Once an answer is half that old the next one is asked beside the caller,
 * so a caller seldom waits for the directory; only an answer past its age
 * (or none) is waited for. One question per capability at a time.
 */
export class CachedAgents implements AgentDirectory {
  private readonly directory: AgentDirectory;
  private readonly maxAgeMs: number;
  private readonly answers = new Map<string, { at: number; ids: string[] }>();
  private readonly asking = new Map<string, Promise<string[]>>();
  private readonly onError: (capability: string, error: unknown) => void;

  constructor(directory: AgentDirectory, options: { maxAgeMs?: number; onError?: (capability: string, error: unknown) => void } = {}) {
    this.directory = directory;
    this.maxAgeMs = options.maxAgeMs ?? 500;
    this.onError = options.onError ?? (() => undefined);
  }

  async agents(capability: string): Promise<string[]> {
    const answer = this.answers.get(capability);
    const age = answer ? Date.now() - answer.at : Number.POSITIVE_INFINITY;
    if (answer && age < this.maxAgeMs) {
      if (age >= this.maxAgeMs / 2 && !this.asking.has(capability)) this.ask(capability).catch((error: unknown) => this.onError(capability, error));
      return answer.ids;
    }
    return this.ask(capability);
  }

  private ask(capability: string): Promise<string[]> {
    const under = this.asking.get(capability);
    if (under) return under;
    const at = Date.now();
    const asked = Promise.resolve()
      .then(() => this.directory.agents(capability))
      .then((found) => {
        const ids = [...found].sort();
        this.answers.set(capability, { at, ids });
        return ids;
      })
      .finally(() => this.asking.delete(capability));
    this.asking.set(capability, asked);
    return asked;
  }
}
