/**
 * A strict little XML reader for the package.xml and launch files (test-only): elements,
 * attributes, text, comments, processing instructions and the five predefined entities. It throws
 * on anything malformed (unclosed or mismatched tags, unquoted or repeated attributes, stray
 * markup, several roots), which is what "the file parses" means here.
 */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  /** Concatenated text directly inside this element, trimmed. */
  text: string;
}

const ENTITIES: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

function decode(text: string, where: string): string {
  return text.replace(/&([a-z]+|#\d+|#x[0-9a-fA-F]+);|&/g, (match, entity: string | undefined) => {
    if (!entity) throw new Error(`${where}: a bare & must be written &amp;`);
    if (entity.startsWith('#x')) return String.fromCodePoint(parseInt(entity.slice(2), 16));
    if (entity.startsWith('#')) return String.fromCodePoint(parseInt(entity.slice(1), 10));
    const value = ENTITIES[entity];
    if (value === undefined) throw new Error(`${where}: unknown entity ${match}`);
    return value;
  });
}

export function parseXml(source: string): XmlElement {
  let i = 0;
  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  const line = (): number => source.slice(0, i).split('\n').length;
  while (i < source.length) {
    if (source.startsWith('<!--', i)) {
      const end = source.indexOf('-->', i + 4);
      if (end < 0) throw new Error(`line ${line()}: unclosed comment`);
      if (source.slice(i + 4, end).includes('--')) throw new Error(`line ${line()}: -- inside a comment`);
      i = end + 3;
    } else if (source.startsWith('<?', i)) {
      const end = source.indexOf('?>', i);
      if (end < 0) throw new Error(`line ${line()}: unclosed processing instruction`);
      i = end + 2;
    } else if (source.startsWith('</', i)) {
      const match = /^<\/([A-Za-z_][\w.-]*)\s*>/.exec(source.slice(i));
      if (!match) throw new Error(`line ${line()}: bad closing tag`);
      const open = stack.pop();
      if (!open || open.name !== match[1])
        throw new Error(`line ${line()}: </${match[1]}> does not close <${open?.name ?? 'nothing'}>`);
      open.text = open.text.trim();
      i += match[0].length;
    } else if (source[i] === '<') {
      const match = /^<([A-Za-z_][\w.-]*)((?:\s+[A-Za-z_][\w.:-]*\s*=\s*(?:"[^"<]*"|'[^'<]*'))*)\s*(\/?)>/.exec(
        source.slice(i),
      );
      if (!match) throw new Error(`line ${line()}: malformed tag: ${source.slice(i, i + 60)}`);
      const attributes: Record<string, string> = {};
      for (const attribute of match[2]!.matchAll(/([A-Za-z_][\w.:-]*)\s*=\s*(?:"([^"]*)"|'([^']*)')/g)) {
        if (Object.hasOwn(attributes, attribute[1]!))
          throw new Error(`line ${line()}: attribute ${attribute[1]} repeated`);
        attributes[attribute[1]!] = decode(attribute[2] ?? attribute[3] ?? '', `line ${line()}`);
      }
      const element: XmlElement = { name: match[1]!, attributes, children: [], text: '' };
      const parent = stack.at(-1);
      if (parent) parent.children.push(element);
      else if (root) throw new Error(`line ${line()}: a second root element <${element.name}>`);
      else root = element;
      if (!match[3]) stack.push(element);
      i += match[0].length;
    } else {
      const next = source.indexOf('<', i);
      const text = source.slice(i, next < 0 ? source.length : next);
      const parent = stack.at(-1);
      if (parent) parent.text += decode(text, `line ${line()}`);
      else if (text.trim()) throw new Error(`line ${line()}: text outside the root element`);
      i = next < 0 ? source.length : next;
    }
  }
  if (stack.length > 0) throw new Error(`<${stack.at(-1)!.name}> is never closed`);
  if (!root) throw new Error('no root element');
  return root;
}

/** Every element in the tree, depth first. */
export function allElements(element: XmlElement): XmlElement[] {
  return [element, ...element.children.flatMap(allElements)];
}
