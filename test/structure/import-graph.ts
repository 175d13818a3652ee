import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/**
 * The project's own import graph, read from the sources as text: every static `import … from`,
 * `export … from`, side-effect `import '…'` and dynamic `import('…')` of a relative module.
 * Package imports (`node:fs`, `express`) are not edges. A "folder" is the directory a file sits
 * in, so `server/` and `server/http/` are two folders: a file in `server/` that `server/http/`
 * imports puts the two in a cycle as soon as `server/` imports anything in `server/http/`.
 * The structure tests use it to keep the layering visible in the layout (no folder-level
 * cycles, no forbidden direction) without a heavy tool.
 */

export interface ImportEdge {
  /** Repository-relative path of the importing file, with forward slashes. */
  from: string;
  /** Repository-relative path of the imported file (`.js` specifiers mapped back to `.ts`). */
  to: string;
}

const SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])(\.{1,2}\/[^'"]+)\1/g;

/** Strips comments, so an example in a doc comment is not read as an import. */
function withoutComments(source: string): string {
  return source.replace(/\/\*[\s\S]*?\*\//g, '').replace(/^\s*\/\/.*$/gm, '');
}

function listSources(root: string, folder: string, out: string[]): void {
  for (const entry of readdirSync(path.join(root, folder), { withFileTypes: true })) {
    const rel = folder === '' ? entry.name : `${folder}/${entry.name}`;
    if (entry.isDirectory()) {
      if (entry.name !== 'node_modules' && !entry.name.startsWith('.')) listSources(root, rel, out);
    } else if (entry.isFile() && /\.(ts|mts)$/.test(entry.name) && !entry.name.endsWith('.d.ts')) {
      out.push(rel);
    }
  }
}

/** The edges between the project's own files under the given top-level folders. */
export function readImportGraph(root: string, folders: readonly string[]): ImportEdge[] {
  const files: string[] = [];
  for (const folder of folders) listSources(root, folder, files);
  const edges: ImportEdge[] = [];
  for (const from of files) {
    const source = withoutComments(readFileSync(path.join(root, from), 'utf8'));
    for (const match of source.matchAll(SPECIFIER)) {
      const specifier = match[2] as string;
      const target = path.posix.normalize(path.posix.join(path.posix.dirname(from), specifier));
      edges.push({ from, to: target.replace(/\.(m?)js$/, '.$1ts') });
    }
  }
  return edges;
}

export function folderOf(file: string): string {
  const dir = path.posix.dirname(file);
  return dir === '.' ? '' : dir;
}

/**
 * Folder-level cycles: the strongly connected components (Tarjan) of the graph whose nodes are
 * folders, with more than one folder in them. Each cycle is returned with one import per step
 * of a closed walk through it, so a failure message says which files to look at.
 */
export function folderCycles(edges: readonly ImportEdge[]): string[][] {
  const next = new Map<string, Set<string>>();
  for (const { from, to } of edges) {
    const a = folderOf(from);
    const b = folderOf(to);
    if (a === b) continue;
    if (!next.has(a)) next.set(a, new Set());
    next.get(a)?.add(b);
  }
  let counter = 0;
  const index = new Map<string, number>();
  const low = new Map<string, number>();
  const stack: string[] = [];
  const onStack = new Set<string>();
  const components: string[][] = [];
  const visit = (node: string): void => {
    index.set(node, counter);
    low.set(node, counter);
    counter += 1;
    stack.push(node);
    onStack.add(node);
    for (const target of next.get(node) ?? []) {
      if (!index.has(target)) {
        visit(target);
        low.set(node, Math.min(low.get(node) as number, low.get(target) as number));
      } else if (onStack.has(target)) {
        low.set(node, Math.min(low.get(node) as number, index.get(target) as number));
      }
    }
    if (low.get(node) === index.get(node)) {
      const component: string[] = [];
      let member: string | undefined;
      do {
        member = stack.pop() as string;
        onStack.delete(member);
        component.push(member);
      } while (member !== node);
      if (component.length > 1) components.push(component.sort());
    }
  };
  for (const node of [...next.keys()].sort()) if (!index.has(node)) visit(node);
  return components;
}

/** The imports that make up a folder cycle, as `from → to` lines, for failure messages. */
export function describeCycle(edges: readonly ImportEdge[], cycle: readonly string[]): string[] {
  const members = new Set(cycle);
  return edges
    .filter((e) => folderOf(e.from) !== folderOf(e.to) && members.has(folderOf(e.from)) && members.has(folderOf(e.to)))
    .map((e) => `${e.from} → ${e.to}`);
}

export interface DirectionRule {
  /** Files this rule applies to: a path prefix such as `agent/engine/`. */
  from: string;
  /** Files they must not import: a path prefix such as `server/`. */
  mustNotImport: string;
  /** Files under `from` that are allowed the import anyway (the one composition point). */
  except?: readonly string[];
  /** Why, for the failure message. */
  because: string;
}

/** Imports that break a rule, as readable lines. */
export function ruleViolations(edges: readonly ImportEdge[], rules: readonly DirectionRule[]): string[] {
  const found: string[] = [];
  for (const rule of rules) {
    for (const { from, to } of edges) {
      if (!from.startsWith(rule.from) || !to.startsWith(rule.mustNotImport)) continue;
      if (rule.except?.includes(from)) continue;
      found.push(`${from} → ${to}: ${rule.because}`);
    }
  }
  return found;
}
