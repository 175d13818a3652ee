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

/** Every source file under the given top-level folders, with its comments stripped. */
function readSources(root: string, folders: readonly string[]): { from: string; source: string }[] {
  const files: string[] = [];
  for (const folder of folders) listSources(root, folder, files);
  return files.map((from) => ({ from, source: withoutComments(readFileSync(path.join(root, from), 'utf8')) }));
}

/** The edges between the project's own files under the given top-level folders. */
export function readImportGraph(root: string, folders: readonly string[]): ImportEdge[] {
  const edges: ImportEdge[] = [];
  for (const { from, source } of readSources(root, folders)) {
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

/** An import of a package (`express`, `node:http`) by one of the project's files. */
export interface PackageImport {
  /** Repository-relative path of the importing file. */
  from: string;
  /** The package as imported, without a subpath: `express`, `node:http`, `@aws-sdk/client-s3`. */
  pkg: string;
}

const PACKAGE_SPECIFIER = /(?:\bfrom\s*|\bimport\s*\(\s*|\bimport\s+)(['"])((?!\.{1,2}\/)[^'"]+)\1/g;

/**
 * The package imports (type-only ones too: they couple a module to the package's shapes) of the
 * files under `folders`.
 */
export function readPackageImports(root: string, folders: readonly string[]): PackageImport[] {
  const found: PackageImport[] = [];
  for (const { from, source } of readSources(root, folders)) {
    for (const match of source.matchAll(PACKAGE_SPECIFIER)) {
      const specifier = match[2] as string;
      const parts = specifier.split('/');
      found.push({ from, pkg: specifier.startsWith('@') ? parts.slice(0, 2).join('/') : (parts[0] as string) });
    }
  }
  return found;
}

export interface PackageRule {
  /** Files this rule applies to: path prefixes such as `server/uploads/`. */
  from: readonly string[];
  /** Packages they must not import. */
  mustNotImport: readonly string[];
  /** Why, for the failure message. */
  because: string;
}

/** Package imports that break a rule, as readable lines. */
export function packageRuleViolations(imports: readonly PackageImport[], rules: readonly PackageRule[]): string[] {
  const found: string[] = [];
  for (const rule of rules) {
    for (const { from, pkg } of imports) {
      if (rule.from.some((prefix) => from.startsWith(prefix)) && rule.mustNotImport.includes(pkg))
        found.push(`${from} imports ${pkg}: ${rule.because}`);
    }
  }
  return found;
}

/**
 * One layer of a layered design: the folders in it (a folder is named by its path; `server` is the
 * files directly in server/).
 */
export interface Layer {
  name: string;
  folders: readonly string[];
  /** The layer's folders may import each other (a cycle among them is still a folder cycle). */
  open?: boolean;
}

/**
 * Imports that go against the layering, as readable lines: `layers` is ordered from the bottom
 * up, and a file may import files of its own folder or of a lower layer, never of its own layer's
 * other folders or of a higher one. A folder of no layer (a subfolder not listed under a listed
 * one) is reported, so a new folder must be placed on purpose.
 */
export function layerViolations(edges: readonly ImportEdge[], layers: readonly Layer[]): string[] {
  const rank = new Map<string, number>();
  layers.forEach((layer, index) => {
    for (const folder of layer.folders) rank.set(folder, index);
  });
  const found = new Set<string>();
  const rankOf = (file: string): number | undefined => rank.get(folderOf(file));
  for (const { from, to } of edges) {
    for (const file of [from, to]) {
      if (rankOf(file) === undefined)
        found.add(`${folderOf(file)}/ is in no layer (imported by or importing ${file === from ? to : from})`);
    }
    const a = rankOf(from);
    const b = rankOf(to);
    if (a === undefined || b === undefined || folderOf(from) === folderOf(to) || b < a || (b === a && layers[a]!.open))
      continue;
    found.add(
      `${from} → ${to}: ${layers[a]!.name} may not import ` +
        `${b === a ? 'another folder of its own layer' : layers[b]!.name}`,
    );
  }
  return [...found];
}
