// docs/cli.md documents every command, subcommand and flag the real `meshward` binary has. The list is
// built from the CLI itself: `meshward --help` names the top-level commands (every entry of the command
// table), `meshward CMD --help` names each one's subcommands and flags, recursively. Each command needs a
// heading in the page that names it (`### meshward ca init`), and each of its flags must appear in that
// heading's section as `--flag`. A command added to the CLI without its documentation fails here, naming it.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { MESHWARD_BIN, REPO_ROOT, runCommand } from '../support/cli.js';

const PAGE = join(REPO_ROOT, 'docs', 'cli.md');

interface Help {
  /** Child commands' word lists, e.g. [['ca', 'init'], …]. */
  commands: string[][];
  /** Long flag names without dashes, in the order shown. */
  flags: string[];
}

/**
 * Parses yargs' help text: under "Commands:" each line `  meshward ca init  description`; under
 * "Options:" each line `      --dir  …` or `  -h, --help  …`. Wrapped description lines are indented
 * further, so they never match either shape.
 */
function parseHelp(text: string): Help {
  const help: Help = { commands: [], flags: [] };
  let section = '';
  for (const line of text.split('\n')) {
    if (/^\S.*:$/.test(line)) {
      section = line;
      continue;
    }
    if (section === 'Commands:') {
      const m = /^ {2}meshward ((?:[a-z][\w-]*)(?: [a-z][\w-]*)*)/.exec(line);
      if (m) help.commands.push(m[1]!.split(' '));
    } else if (section === 'Options:') {
      const m = /^ {2}(?:-\w, | {4})--([a-z0-9][\w-]*)/.exec(line);
      if (m) help.flags.push(m[1]!);
    }
  }
  return help;
}

async function helpOf(words: string[]): Promise<Help> {
  const r = await runCommand(process.execPath, [MESHWARD_BIN, ...words, '--help'], { timeoutMs: 60_000 });
  assert.equal(r.code, 0, `meshward ${[...words, '--help'].join(' ')} exits 0 (stderr: ${r.stderr})`);
  return parseHelp(r.stdout);
}

/** The command words a heading names: "### `meshward ca init --dir D`" → ['ca', 'init']. */
function headingCommand(heading: string): string[] | undefined {
  const m = /meshward((?: [a-z][\w-]*)+)/.exec(heading.replace(/`/g, ''));
  return m ? m[1]!.trim().split(' ') : undefined;
}

interface Section {
  command: string[];
  text: string;
}

/** Every heading of the page that names a command, with its text up to the next heading of its level or above. */
function commandSections(page: string): Section[] {
  const lines = page.split('\n');
  const sections: Section[] = [];
  let inFence = false;
  const headingLevel = (line: string): number => (/^(#{1,6}) /.exec(line)?.[1]!.length ?? 0);
  const isHeading: boolean[] = lines.map((line) => {
    if (line.startsWith('```')) inFence = !inFence;
    return !inFence && headingLevel(line) > 0;
  });
  lines.forEach((line, i) => {
    if (!isHeading[i]) return;
    const command = headingCommand(line);
    if (command === undefined) return;
    const level = headingLevel(line);
    let end = i + 1;
    while (end < lines.length && !(isHeading[end] && headingLevel(lines[end]!) <= level)) end++;
    sections.push({ command, text: lines.slice(i, end).join('\n') });
  });
  return sections;
}

const mentionsFlag = (text: string, flag: string): boolean => new RegExp(`--${flag}(?![\\w-])`).test(text);

test('docs/cli.md has a section for every command and subcommand, naming each of its flags', async () => {
  const page = readFileSync(PAGE, 'utf8');
  const top = await helpOf([]);
  // Flags every command shows (--debug, --help): documented once, not in every section.
  const global = new Set(top.flags);

  // One level of the command tree at a time, each level's --help runs side by side.
  const found: { command: string[]; flags: string[] }[] = [];
  let level = top.commands;
  while (level.length > 0) {
    const helps = await Promise.all(level.map((command) => helpOf(command)));
    const next: string[][] = [];
    level.forEach((command, i) => {
      found.push({ command, flags: helps[i]!.flags.filter((f) => !global.has(f)) });
      for (const child of helps[i]!.commands) if (child.length > command.length) next.push(child);
    });
    level = next;
  }
  // The discovery itself must have worked, or an empty page would pass.
  const names = found.map((f) => f.command.join(' '));
  for (const expected of ['ca init', 'cert issue', 'sidecar', 'policy check', 'inspect']) {
    assert.ok(names.includes(expected), `discovered meshward ${expected} (found: ${names.join(', ')})`);
  }
  assert.ok(found.find((f) => f.command.join(' ') === 'ca init')!.flags.includes('trust-domain'), 'discovered the flags of ca init');

  const sections = commandSections(page);
  const missing: string[] = [];
  for (const flag of global) if (!mentionsFlag(page, flag)) missing.push(`global flag --${flag} is not mentioned`);
  for (const { command, flags } of found) {
    const name = `meshward ${command.join(' ')}`;
    const own = sections.filter((s) => s.command.join(' ') === command.join(' '));
    if (own.length === 0) {
      missing.push(`${name}: no section (add a heading naming \`${name}\`)`);
      continue;
    }
    const text = own.map((s) => s.text).join('\n');
    for (const flag of flags) if (!mentionsFlag(text, flag)) missing.push(`${name}: flag --${flag} is not mentioned in its section`);
  }
  // And the reverse: a heading for a command the CLI does not have is out of date.
  for (const s of sections) {
    if (!names.includes(s.command.join(' '))) missing.push(`meshward ${s.command.join(' ')}: documented, but the CLI has no such command`);
  }
  if (missing.length > 0) assert.fail(`docs/cli.md is out of step with the CLI:\n  ${missing.join('\n  ')}`);
});
