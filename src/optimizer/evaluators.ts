import type { AgentRegistry } from '../agents/registry.ts';
import type { EvaluatorDirectory } from './optimizer.ts';

/**
 * Evaluators from the agent registry: agents with the capability whose last
 * lifecycle transition is `running` and whose heartbeats are current (alive
 * or lagging). An agent that died without saying so drops out once its
 * heartbeats are overdue; until then its lease is what catches it.
 */
export class RegistryEvaluators implements EvaluatorDirectory {
  private readonly registry: AgentRegistry;

  constructor(registry: AgentRegistry) {
    this.registry = registry;
  }

  async evaluators(capability: string): Promise<string[]> {
    const ids = await this.registry.find({ capabilities: [capability], state: 'running' });
    if (ids.length === 0) return [];
    const health = await this.registry.health(ids);
    return health.filter((h) => h.health === 'alive' || h.health === 'lagging').map((h) => h.agentId);
  }
}
