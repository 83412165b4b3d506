/**
 * How busy the machine was over a benchmark's window, from /proc/stat
 * (Linux): busy, idle, and stolen — CPU time the hypervisor gave other
 * guests. On a shared virtual machine steal varies from run to run (13 % of
 * an idle 2-core machine in one reading) and slows every process of a run
 * alike, so benchmarks report it beside their figures.
 */
import { readFileSync } from 'node:fs';

/** The machine's CPU time by kind (jiffies, all CPUs), from /proc/stat: steal is time the hypervisor gave another guest. */
export const machineTimes = (): { busy: number; idle: number; steal: number } => {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const [user = 0, nice = 0, system = 0, idle = 0, iowait = 0, irq = 0, softirq = 0, steal = 0] = f;
  return { busy: user + nice + system + irq + softirq, idle: idle + iowait, steal };
};
/** Shares of the machine's CPU time between two readings, %. */
export const machineShares = (a: ReturnType<typeof machineTimes>, b: ReturnType<typeof machineTimes>): { busyPercent: number; idlePercent: number; stealPercent: number } => {
  const busy = b.busy - a.busy, idle = b.idle - a.idle, steal = b.steal - a.steal;
  const all = Math.max(1, busy + idle + steal);
  const pct = (n: number) => Number(((100 * n) / all).toFixed(1));
  return { busyPercent: pct(busy), idlePercent: pct(idle), stealPercent: pct(steal) };
};
/** The shares as the benchmarks print them. */
export const describeMachine = (m: ReturnType<typeof machineShares>): string => `${m.busyPercent} % busy, ${m.idlePercent} % idle, ${m.stealPercent} % stolen by the hypervisor`;
