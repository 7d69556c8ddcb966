import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node as YamlNode } from 'yaml';

/**
 * Source positions in YAML documents, so a loader can say `file:line` for any path into the
 * parsed value (policy authorities, connectors).
 */
export type Path = readonly (string | number)[];

/** The line of the node at `path` (or of its nearest existing ancestor). */
export function lineFinder(doc: Document, lines: LineCounter): (path: Path) => number {
  const lineAt = (offset: number | undefined) => (offset === undefined ? 1 : lines.linePos(offset).line);
  return (path) => {
    let node: unknown = doc.contents;
    let line = lineAt((node as YamlNode | null)?.range?.[0]);
    for (const seg of path) {
      if (isAlias(node)) node = node.resolve(doc);
      if (isMap(node)) {
        const pair = node.items.find((p) => String(isScalar(p.key) ? p.key.value : p.key) === String(seg));
        if (!pair) break;
        line = lineAt(((pair.key as YamlNode | null) ?? (pair.value as YamlNode | null))?.range?.[0]);
        node = pair.value;
      } else if (isSeq(node) && typeof seg === 'number') {
        const item = node.items[seg] as YamlNode | undefined;
        if (!item) break;
        line = lineAt(item.range?.[0]);
        node = item;
      } else break;
    }
    return line;
  };
}

export const dotted = (path: Path) =>
  path.reduce<string>((s, seg) => (typeof seg === 'number' ? `${s}[${seg}]` : s ? `${s}.${seg}` : String(seg)), '');

export function valueAt(data: unknown, path: Path): unknown {
  let v = data;
  for (const seg of path) {
    if (v === null || typeof v !== 'object') return undefined;
    v = (v as Record<string | number, unknown>)[seg];
  }
  return v;
}
