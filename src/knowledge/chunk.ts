/**
 * Chunking by structure: a heading starts a new passage and is kept as the passage's heading path
 * (outermost first); paragraphs (blank-line separated) are gathered under it up to about
 * TARGET_CHARS, never past MAX_CHARS; a paragraph longer than that is cut at sentence ends (or,
 * failing those, at spaces). Deterministic: the same text always gives the same chunks, so
 * passage ids `<document>:<version>:<n>` are stable.
 */
import type { Extracted } from './extract';

export const TARGET_CHARS = 900;
export const MAX_CHARS = 1800;

export interface Chunk {
  text: string;
  headings: string[];
  /** 1-based page for PDFs, else null. */
  page: number | null;
}

const HEADING = /^(#{1,6})[ \t]+(.+?)[ \t#]*$/;

/** Cuts one long paragraph at sentence ends (else spaces, else anywhere) into pieces ≤ MAX_CHARS. */
function cut(paragraph: string): string[] {
  const out: string[] = [];
  let rest = paragraph;
  while (rest.length > MAX_CHARS) {
    const window = rest.slice(0, MAX_CHARS);
    let at = Math.max(window.lastIndexOf('. '), window.lastIndexOf('? '), window.lastIndexOf('! '), window.lastIndexOf('.\n'));
    if (at < MAX_CHARS / 3) at = window.lastIndexOf(' ');
    else at += 1;
    if (at < MAX_CHARS / 3) at = MAX_CHARS;
    out.push(rest.slice(0, at).trim());
    rest = rest.slice(at).trim();
  }
  if (rest) out.push(rest);
  return out;
}

const normalize = (s: string) =>
  s
    .replace(/\r\n?/g, '\n')
    .replace(/[ \t\u00a0]+/g, ' ')
    .replace(/ *\n */g, '\n');

export function chunkText(doc: Pick<Extracted, 'pages' | 'headings'>, isPdf = false): Chunk[] {
  const chunks: Chunk[] = [];
  const path: { level: number; text: string }[] = [];
  let buf: string[] = [];
  let bufLen = 0;
  let page: number | null = null;
  const flush = () => {
    const text = buf.join('\n\n').trim();
    if (text) chunks.push({ text, headings: path.map((h) => h.text), page });
    buf = [];
    bufLen = 0;
  };
  doc.pages.forEach((pageText, i) => {
    if (isPdf) {
      flush();
      page = i + 1;
    }
    const paragraphs = normalize(pageText).split(/\n{2,}/);
    for (const raw of paragraphs) {
      const lines = raw.split('\n');
      // A heading line may sit on top of its paragraph without a blank line between.
      const para: string[] = [];
      const take = () => {
        const p = para.join('\n').trim();
        para.length = 0;
        if (!p) return;
        for (const piece of p.length > MAX_CHARS ? cut(p) : [p]) {
          if (bufLen && bufLen + piece.length + 2 > MAX_CHARS) flush();
          buf.push(piece);
          bufLen += piece.length + 2;
          if (bufLen >= TARGET_CHARS) flush();
        }
      };
      for (const line of lines) {
        const h = doc.headings ? HEADING.exec(line) : null;
        if (!h) {
          para.push(line);
          continue;
        }
        take();
        flush();
        const level = h[1]!.length;
        while (path.length && path[path.length - 1]!.level >= level) path.pop();
        path.push({ level, text: h[2]!.trim() });
        // The heading opens its section's first passage, so its words are searched too.
        buf.push(h[2]!.trim());
        bufLen += h[2]!.length + 2;
      }
      take();
    }
  });
  flush();
  // A heading with nothing under it before the next heading is a passage of its own (kept: it
  // is text of the document), unless it is the only thing it carries and nothing follows.
  return chunks;
}
