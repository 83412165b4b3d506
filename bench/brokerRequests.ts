/**
 * The broker's own count of the requests it served, by type, over a
 * benchmark's window: bench/BrokerRequests.java attaches to the broker's JVM
 * and reads its request metrics (JMX) whenever asked. `start()` returns
 * undefined when that is not possible (no local broker JVM, no JDK), and the
 * benchmark goes on without these figures.
 */
import { type ChildProcessWithoutNullStreams, spawn } from 'node:child_process';
import { readlinkSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

interface RequestTotals { count: number; LocalTimeMs: number; RemoteTimeMs: number; TotalTimeMs: number; RequestQueueTimeMs: number; ResponseSendTimeMs: number }
interface Reading { requests: Record<string, RequestTotals>; messagesIn: number }

/** What the broker served between two readings: requests and handler time (LocalTimeMs) by request type. */
export interface BrokerWindow {
  requests: number;
  byType: Record<string, { count: number; localMs: number }>;
  messagesIn: number;
}

export class BrokerRequests {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly lines: AsyncIterator<string>;

  private constructor(child: ChildProcessWithoutNullStreams) {
    this.child = child;
    this.lines = createInterface({ input: child.stdout })[Symbol.asyncIterator]();
  }

  /** Attaches to the broker JVM `pid` with its own java; undefined (and why, on stderr) if it cannot. */
  static async start(pid: number | undefined): Promise<BrokerRequests | undefined> {
    if (pid === undefined) return undefined;
    try {
      const java = readlinkSync(`/proc/${pid}/exe`);
      const source = join(dirname(fileURLToPath(import.meta.url)), 'BrokerRequests.java');
      const child = spawn(java, [source, String(pid)], { stdio: ['pipe', 'pipe', 'pipe'] });
      const reader = new BrokerRequests(child);
      const first = await Promise.race([reader.lines.next(), new Promise<never>((_, reject) => setTimeout(() => reject(new Error('no answer within 30 s')), 30_000).unref())]);
      if (first.value !== 'ready') throw new Error(`it said "${String(first.value)}"`);
      return reader;
    } catch (error) {
      process.stderr.write(`broker request counts not available: ${error instanceof Error ? error.message : String(error)}\n`);
      return undefined;
    }
  }

  async read(): Promise<Reading> {
    this.child.stdin.write('\n');
    const { value } = await this.lines.next();
    return JSON.parse(String(value)) as Reading;
  }

  stop(): void {
    this.child.stdin.end();
  }
}

/** The difference of two readings. */
export function brokerWindow(before: Reading, after: Reading): BrokerWindow {
  const byType: BrokerWindow['byType'] = {};
  let requests = 0;
  for (const [type, totals] of Object.entries(after.requests)) {
    // The broker counts every fetch twice: as Fetch, and as FetchConsumer or FetchFollower.
    if (type === 'FetchConsumer' || type === 'FetchFollower') continue;
    const was = before.requests[type];
    const count = totals.count - (was?.count ?? 0);
    if (count <= 0) continue;
    byType[type] = { count, localMs: totals.LocalTimeMs - (was?.LocalTimeMs ?? 0) };
    requests += count;
  }
  return { requests, byType, messagesIn: after.messagesIn - before.messagesIn };
}

/** "Produce 3.1, Fetch 2.4, …": requests per unit (a round), the most frequent first. */
export function describePer(window: BrokerWindow, units: number, top = 8): string {
  return Object.entries(window.byType)
    .sort(([, a], [, b]) => b.count - a.count)
    .slice(0, top)
    .map(([type, { count }]) => `${type} ${(count / units).toFixed(2)}`)
    .join(', ');
}
