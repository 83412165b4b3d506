/** Human output of the CLI: results on stdout, progress on stderr. */
export const out = (line = ''): void => {
  process.stdout.write(`${line}\n`);
};

export const progress = (line: string): void => {
  process.stderr.write(`${line}\n`);
};

export function table(rows: string[][]): string {
  const widths = rows.reduce<number[]>((w, row) => row.map((cell, i) => Math.max(w[i] ?? 0, cell.length)), []);
  return rows.map((row) => row.map((cell, i) => (i === row.length - 1 ? cell : cell.padEnd(widths[i] ?? 0))).join('  ')).join('\n');
}
