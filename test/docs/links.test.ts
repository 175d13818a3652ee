import { existsSync, readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';

const ROOT = fileURLToPath(new URL('../../', import.meta.url));

/** The Markdown files a reader follows links in: the README, docs/, the changelog and the benchmark record. */
const DOCUMENTS = [
  'README.md',
  'CHANGELOG.md',
  'bench/RESULTS.md',
  ...readdirSync(path.join(ROOT, 'docs'))
    .filter((f) => f.endsWith('.md'))
    .map((f) => `docs/${f}`),
];

interface Link {
  target: string;
  line: number;
}

/** Lines outside fenced code blocks, with inline code removed (links in code are not links). */
function proseLines(markdown: string): [number, string][] {
  const lines: [number, string][] = [];
  let fenced = false;
  markdown.split('\n').forEach((line, i) => {
    if (/^\s*(```|~~~)/.test(line)) fenced = !fenced;
    else if (!fenced) lines.push([i + 1, line.replace(/`[^`]*`/g, '')]);
  });
  return lines;
}

/** Every `[text](target)` link of a Markdown document. */
function linksOf(markdown: string): Link[] {
  const links: Link[] = [];
  for (const [line, text] of proseLines(markdown)) {
    for (const match of text.matchAll(/\]\(([^)\s]+)(?:\s+"[^"]*")?\)/g)) links.push({ target: match[1]!, line });
  }
  return links;
}

/** The anchors GitHub makes for a document's headings (github-slugger's rules, duplicates numbered). */
function anchorsOf(markdown: string): Set<string> {
  const anchors = new Set<string>();
  const seen = new Map<string, number>();
  for (const [, line] of proseLines(markdown.replace(/`([^`]*)`/g, '$1'))) {
    const heading = /^#{1,6}\s+(.*?)\s*#*\s*$/.exec(line);
    if (!heading) continue;
    const base = heading[1]!
      .replace(/\[([^\]]*)\]\([^)]*\)/g, '$1')
      .toLowerCase()
      .replace(/[^\p{L}\p{M}\p{N}\p{Pc}\- ]/gu, '')
      .replace(/ /g, '-');
    const count = seen.get(base) ?? 0;
    seen.set(base, count + 1);
    anchors.add(count === 0 ? base : `${base}-${count}`);
  }
  return anchors;
}

/** What is wrong with the relative links of `file` (a path relative to the repository root). */
function brokenLinks(file: string, markdown: string, root = ROOT): string[] {
  const problems: string[] = [];
  for (const { target, line } of linksOf(markdown)) {
    if (/^[a-z][a-z0-9+.-]*:/i.test(target)) continue; // https:, mailto:
    const [pathPart, anchor] = target.split('#') as [string, string | undefined];
    const resolved =
      pathPart === ''
        ? path.join(root, file)
        : path.resolve(path.dirname(path.join(root, file)), decodeURIComponent(pathPart));
    const where = `${file}:${line}: ${target}`;
    if (!resolved.startsWith(root)) {
      problems.push(`${where} points outside the repository`);
      continue;
    }
    if (!existsSync(resolved)) {
      problems.push(`${where} does not exist`);
      continue;
    }
    if (anchor !== undefined) {
      if (statSync(resolved).isDirectory() || !resolved.endsWith('.md'))
        problems.push(`${where}: an anchor needs a Markdown file`);
      else if (!anchorsOf(pathPart === '' ? markdown : readFileSync(resolved, 'utf8')).has(anchor))
        problems.push(`${where}: no heading makes the anchor #${anchor}`);
    }
  }
  return problems;
}

describe('links in the documentation', () => {
  it('the checker finds missing files, missing anchors and links leaving the repository', () => {
    const doc = [
      '# Title',
      '## Run `it` (v1)',
      'See [a](docs/none.md), [b](#run-it-v1), [c](#nowhere), [d](../outside.md), [e](https://example.com/x.md).',
      '```',
      '[not a link](missing.md)',
      '```',
      'And `[code](missing-too.md)` is not one either; [f](README.md#ros2-upload-agent).',
    ].join('\n');
    expect(brokenLinks('README.md', doc)).toEqual([
      'README.md:3: docs/none.md does not exist',
      'README.md:3: #nowhere: no heading makes the anchor #nowhere',
      'README.md:3: ../outside.md points outside the repository',
    ]);
    expect(anchorsOf('# A\n## A\n### Whole file: `PUT /v1/files/<path>`')).toEqual(
      new Set(['a', 'a-1', 'whole-file-put-v1filespath']),
    );
  });

  for (const file of DOCUMENTS) {
    it(`${file}: every relative link and anchor resolves`, () => {
      const markdown = readFileSync(path.join(ROOT, file), 'utf8');
      expect(brokenLinks(file, markdown)).toEqual([]);
    });
  }

  it('the README links every page of docs/', () => {
    const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
    const linked = new Set(linksOf(readme).map((link) => link.target.split('#')[0]));
    for (const file of DOCUMENTS.filter((f) => f.startsWith('docs/'))) expect(linked, file).toContain(file);
  });

  it('the native protocol is written down once, in docs/http-api.md', () => {
    expect(existsSync(path.join(ROOT, 'server/PROTOCOL.md'))).toBe(false);
    expect(readFileSync(path.join(ROOT, 'docs/http-api.md'), 'utf8')).toContain('## The native protocol (v1)');
  });
});
