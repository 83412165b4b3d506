/**
 * The README leads and does not drift: at most 200 lines, the two Quick
 * start commands, every `bin/mabeam` command it shows a real command with
 * real options, and every link in it and in docs/ to a file and heading that
 * exist.
 */
import { execFile } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { dirname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';

const root = fileURLToPath(new URL('../..', import.meta.url));
const readme = readFileSync(join(root, 'README.md'), 'utf8');
const cli = join(root, 'src/cli/main.ts');
const run = promisify(execFile);

/** GitHub's anchor of a heading. */
const slug = (heading: string) => heading.trim().toLowerCase().replace(/[^\w\- ]/g, '').replaceAll(' ', '-');

describe('README.md', () => {
  it('is at most 200 lines, with exactly the two Quick start commands', () => {
    expect(readme.split('\n').length).toBeLessThanOrEqual(200);
    const quickStart = readme.split('## Quick start')[1]!.split('\n## ')[0]!;
    const block = /```sh\n([\s\S]*?)```/.exec(quickStart)![1]!;
    expect(block.trim().split('\n').map((l) => l.split('#')[0]!.trim())).toEqual(['npm start', 'npm test']);
  });

  it('shows only commands the CLI has, with options they take', { timeout: 60_000 }, async () => {
    const shown = [...readme.matchAll(/`bin\/mabeam ([^`]+)`/g)].map((m) => m[1]!);
    expect(shown.length).toBeGreaterThanOrEqual(8);
    for (const line of shown) {
      const words = line.split(/\s+/);
      // A command is one word or two (`round start`): the longest whose own help answers.
      const usage = async (path: string[]) => (await run(process.execPath, [cli, ...path, '--help'], { cwd: root })).stdout;
      let path = words.slice(0, 2);
      let help = await usage(path);
      if (!help.startsWith(`Usage: mabeam ${path.join(' ')} `)) help = await usage((path = words.slice(0, 1)));
      // A command that does not exist prints the program's help, not its own usage line.
      expect(help, line).toMatch(new RegExp(`^Usage: mabeam ${path.join(' ')} `));
      for (const flag of words.filter((w) => w.startsWith('--'))) expect(help, `${line}: ${flag}`).toContain(flag);
    }
  });

  it('and docs/ link only to files and headings that exist', () => {
    const files = ['README.md', ...readdirSync(join(root, 'docs')).filter((f) => f.endsWith('.md')).map((f) => `docs/${f}`)];
    const headings = new Map(files.map((f) => [normalize(f), new Set([...readFileSync(join(root, f), 'utf8').matchAll(/^#{1,6} (.*)$/gm)].map((m) => slug(m[1]!)))]));
    const broken: string[] = [];
    for (const f of files) {
      for (const m of readFileSync(join(root, f), 'utf8').matchAll(/\[[^\]]*\]\(([^)\s]+)\)/g)) {
        const target = m[1]!;
        if (/^[a-z]+:/.test(target)) continue;
        const [path, anchor] = target.split('#') as [string, string | undefined];
        const file = path ? normalize(join(dirname(f), path)) : normalize(f);
        if (!existsSync(join(root, file))) broken.push(`${f}: ${target} (no such file)`);
        else if (anchor && file.endsWith('.md') && !headings.get(file)?.has(anchor)) broken.push(`${f}: ${target} (no such heading)`);
      }
    }
    expect(broken).toEqual([]);
  });
});
