/** What an agent process tells its supervisor over the IPC channel. */
export type ChildMessage = { type: 'ready'; agents: string[]; pool: string; instanceId: string; groupId: string; /** The live view's address. */ url?: string };

export function isChildMessage(value: unknown): value is ChildMessage {
  return Boolean(value) && typeof value === 'object' && (value as { type?: unknown }).type === 'ready';
}
