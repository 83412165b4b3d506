import { RegistryAgents } from '../agents/capableAgents.ts';
import type { AgentRegistry } from '../agents/registry.ts';
import type { EvaluatorDirectory } from './optimizer.ts';

/**
 * Evaluators from the agent registry: the running agents with the
 * capability (RegistryAgents: last lifecycle transition `running`,
 * heartbeats current). An agent that died without saying so drops out once
 * its heartbeats are overdue; until then its lease is what catches it.
 */
export class RegistryEvaluators implements EvaluatorDirectory {
  private readonly agents: RegistryAgents;

  constructor(registry: AgentRegistry) {
    this.agents = new RegistryAgents(registry);
  }

  evaluators(capability: string): Promise<string[]> {
    return this.agents.agents(capability);
  }
}
