import type { RoundClient } from '../coordinator/roundClient.ts';
import type { BidRequest } from '../events/types.ts';
import { MabeamError } from '../errors.ts';
import type { VariableAccess, VariableRecord } from '../variables/types.ts';

export interface MarketAllocationOptions {
  /** An allocation protocol over the agents' requests (default resource-grant). */
  protocol?: string;
  /** resource-grant's conflict rule when demand exceeds the total (default proportional). */
  strategy?: 'priority' | 'proportional';
  deadlineMs?: number;
}

/**
 * Resource allocation by market: the variable's affected agents are asked
 * (a BidRequest for the resource, capacity = the allocation's total) how
 * much they want — a Bid whose amount is the quantity, with
 * attributes.priority and attributes.minimum if they like — and the round's
 * grants become the variable's new value (cause "market", the round as the
 * trigger, the version it started from as the expected version). Then
 * coordinateSystem sends each agent its `allocate_resources` directive.
 * Used for resource_allocation variables whose constraints.strategy is
 * "market"; agents bid on the request's item `{ variableId, resource }`.
 */
export async function allocateByMarket(variables: VariableAccess, rounds: RoundClient, id: string, options: MarketAllocationOptions = {}): Promise<VariableRecord> {
  const variable = await variables.get(id);
  if (!variable) throw new MabeamError('INVALID_OPTIONS', `No variable ${id}.`);
  const type = variable.definition.valueType;
  if (variable.definition.type !== 'resource_allocation' || type.kind !== 'allocation' || type.total === undefined) {
    throw new MabeamError('INVALID_OPTIONS', `${id} is not a resource allocation with a total to share.`);
  }
  const protocol = options.protocol ?? 'resource-grant';
  const resource = String(variable.definition.constraints['resource'] ?? id);
  const outcome = await rounds.auction({
    protocol,
    item: { variableId: id, resource },
    bidders: variable.definition.affectedAgents,
    parameters: { capacity: type.total, strategy: options.strategy ?? 'proportional' },
    ...(options.deadlineMs !== undefined ? { deadlineMs: options.deadlineMs } : {}),
  });
  const grants = outcome.status === 'decided' && outcome.value ? (JSON.parse(outcome.value) as Array<{ agentId: string; quantity: number }>) : [];
  const allocation = Object.fromEntries(variable.definition.affectedAgents.map((agentId) => [agentId, grants.find((g) => g.agentId === agentId)?.quantity ?? 0]));
  return variables.set(id, allocation, { cause: 'market', expectedVersion: variable.version, trigger: { roundId: outcome.roundId, protocol, status: outcome.status, reason: outcome.reason } });
}

/** The item of a market allocation's bid request, for agents deciding what to bid. */
export function marketItem(request: BidRequest): { variableId: string; resource: string } | undefined {
  try {
    const item = JSON.parse(request.item) as { variableId?: unknown; resource?: unknown };
    return typeof item.variableId === 'string' && typeof item.resource === 'string' ? { variableId: item.variableId, resource: item.resource } : undefined;
  } catch {
    return undefined;
  }
}
