/**
 * The agents as rows: who they are (the registry's agents view), their
 * lifecycle state, and their health with what the last heartbeat reported
 * (memory, consumer lag). Refreshed by polling the registry; a refresh
 * says which rows changed state or health.
 */
import type { AgentRegistry } from '../agents/registry.ts';
import type { AgentRow } from './types.ts';

export interface AgentFilter {
  capability?: string;
  role?: string;
  state?: string;
}

export class AgentBoard {
  private rows = new Map<string, AgentRow>();
  private readonly registry: AgentRegistry;

  constructor(registry: AgentRegistry) {
    this.registry = registry;
  }

  get size(): number {
    return this.rows.size;
  }

  /** Reads the registry again; the rows that are new or whose state or health changed. */
  async refresh(now = Date.now()): Promise<AgentRow[]> {
    const [agents, health, lifecycles] = await Promise.all([this.registry.list(), this.registry.health(undefined, undefined, now), this.registry.lifecycles()]);
    const healthOf = new Map(health.map((h) => [h.agentId, h]));
    const rows = new Map<string, AgentRow>();
    const changed: AgentRow[] = [];
    for (const a of agents) {
      const h = healthOf.get(a.agentId);
      const life = lifecycles.get(a.agentId);
      const r = h?.resources;
      const row: AgentRow = {
        agentId: a.agentId,
        role: a.role,
        capabilities: [...a.capabilities],
        state: life?.state ?? null,
        health: h?.health ?? 'dead',
        healthReason: h?.reason ?? 'no health known',
        lastHeartbeat: r?.eventTime ?? null,
        memoryRssBytes: r?.memoryRssBytes ?? null,
        consumerLag: r?.consumerLag ?? null,
        instanceId: life?.instanceId ?? r?.instanceId ?? null,
        host: life?.host ?? r?.host ?? null,
      };
      const before = this.rows.get(a.agentId);
      if (!before || before.state !== row.state || before.health !== row.health) changed.push(row);
      rows.set(a.agentId, row);
    }
    this.rows = rows;
    return changed.map((row) => ({ ...row }));
  }

  /** In agent id order; each filter given (non-empty) must match. */
  list(filter: AgentFilter = {}): AgentRow[] {
    return [...this.rows.values()]
      .filter((r) => (!filter.capability || r.capabilities.includes(filter.capability)) && (!filter.role || r.role === filter.role) && (!filter.state || r.state === filter.state))
      .map((r) => ({ ...r, capabilities: [...r.capabilities] }));
  }
}
