/**
 * Text out of documents, by well-kept libraries only: html-to-text for HTML, mammoth for DOCX
 * (to HTML, then as HTML), pdfjs-dist for PDF. What comes out keeps the structure the chunker
 * uses: Markdown-style `#` headings and blank lines between paragraphs; PDF text per page.
 * A file that cannot be read is refused with the reason (InputError naming the field).
 */
import { convert, type FormatCallback } from 'html-to-text';
import { InputError } from '../errors/errors';
import type { MediaType } from './types';

export interface Extracted {
  /** Text with `#` headings (Markdown, HTML, DOCX) or without (plain, PDF). */
  pages: string[];
  /** Whether `#` lines are headings. */
  headings: boolean;
  /** Printed pages: a PDF's own; otherwise one per 3,000 characters of text (about 500 words). */
  pageCount: number;
}

export const CHARS_PER_PAGE = 3000;

const pagesOf = (text: string) => Math.max(1, Math.ceil(text.length / CHARS_PER_PAGE));

/** `# Heading` lines for h1..h6, so the chunker sees HTML's structure. */
const heading: FormatCallback = (elem, walk, builder, options) => {
  const level = Number((elem as { name?: string }).name?.slice(1)) || 1;
  builder.openBlock({ leadingLineBreaks: (options.leadingLineBreaks as number) ?? 2 });
  builder.addInline('#'.repeat(level) + ' ');
  walk(elem.children, builder);
  builder.closeBlock({ trailingLineBreaks: (options.trailingLineBreaks as number) ?? 2 });
};

export function htmlToStructuredText(html: string): string {
  return convert(html, {
    wordwrap: false,
    formatters: { mdHeading: heading },
    selectors: [
      ...[1, 2, 3, 4, 5, 6].map((n) => ({ selector: `h${n}`, format: 'mdHeading', options: { leadingLineBreaks: 2, trailingLineBreaks: 2 } })),
      { selector: 'a', options: { ignoreHref: true } },
      { selector: 'img', format: 'skip' },
      { selector: 'p', options: { leadingLineBreaks: 2, trailingLineBreaks: 2 } },
    ],
  });
}

type PdfJs = typeof import('pdfjs-dist/legacy/build/pdf.mjs', { with: { 'resolution-mode': 'import' } });
let pdfjs: Promise<PdfJs> | undefined;

async function pdfToPages(bytes: Buffer): Promise<string[]> {
  pdfjs ??= import('pdfjs-dist/legacy/build/pdf.mjs');
  const lib = await pdfjs;
  let doc: Awaited<ReturnType<PdfJs['getDocument']>['promise']>;
  try {
    doc = await lib.getDocument({
      data: new Uint8Array(bytes),
      verbosity: lib.VerbosityLevel.ERRORS,
      isEvalSupported: false,
      disableFontFace: true,
      useSystemFonts: false,
      stopAtErrors: true,
    }).promise;
  } catch (err) {
    const e = err as { name?: string; message?: string };
    if (e.name === 'PasswordException')
      throw new InputError('contentBase64: the PDF is encrypted (it needs a password to open); remove the password and add it again', {
        field: 'contentBase64',
      });
    throw new InputError(`contentBase64: the PDF cannot be read (${e.message ?? String(err)})`, { field: 'contentBase64' });
  }
  try {
    const pages: string[] = [];
    for (let n = 1; n <= doc.numPages; n++) {
      const page = await doc.getPage(n);
      const content = await page.getTextContent();
      let text = '';
      let lastY: number | undefined;
      for (const item of content.items) {
        if (!('str' in item)) continue;
        const y = item.transform[5] as number;
        // A vertical gap larger than about a line and a half is a paragraph break.
        if (lastY !== undefined && item.str && Math.abs(lastY - y) > Math.max(item.height, 1) * 1.6 && !text.endsWith('\n\n'))
          text = text.replace(/\n?$/, '\n\n');
        text += item.str;
        if (item.hasEOL) text += '\n';
        if (item.str) lastY = y;
      }
      pages.push(text);
      page.cleanup();
    }
    return pages;
  } catch (err) {
    throw new InputError(`contentBase64: the PDF cannot be read (${(err as Error).message})`, { field: 'contentBase64' });
  } finally {
    await doc.destroy();
  }
}

async function docxToHtml(bytes: Buffer): Promise<string> {
  const mammoth = await import('mammoth');
  try {
    const r = await mammoth.convertToHtml({ buffer: bytes });
    return r.value;
  } catch (err) {
    throw new InputError(`contentBase64: the DOCX cannot be read (${(err as Error).message.split('\n')[0]})`, { field: 'contentBase64' });
  }
}

function utf8(bytes: Buffer, field: string): string {
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes).replace(/^\uFEFF/, '');
  } catch {
    throw new InputError(`${field}: is not UTF-8 text`, { field });
  }
}

/** Extracts the text of `bytes` of `mediaType`; `field` is what refusals name. */
export async function extractText(bytes: Buffer, mediaType: MediaType, field = 'contentBase64'): Promise<Extracted> {
  switch (mediaType) {
    case 'text/plain': {
      const text = utf8(bytes, field);
      return { pages: [text], headings: false, pageCount: pagesOf(text) };
    }
    case 'text/markdown': {
      const text = utf8(bytes, field);
      return { pages: [text], headings: true, pageCount: pagesOf(text) };
    }
    case 'text/html': {
      const text = htmlToStructuredText(utf8(bytes, field));
      return { pages: [text], headings: true, pageCount: pagesOf(text) };
    }
    case 'application/vnd.openxmlformats-officedocument.wordprocessingml.document': {
      const text = htmlToStructuredText(await docxToHtml(bytes));
      return { pages: [text], headings: true, pageCount: pagesOf(text) };
    }
    case 'application/pdf': {
      if (bytes.subarray(0, 5).toString('latin1') !== '%PDF-')
        throw new InputError(`${field}: the PDF cannot be read (it does not start with %PDF-)`, { field });
      const pages = await pdfToPages(bytes);
      return { pages, headings: false, pageCount: Math.max(1, pages.length) };
    }
  }
}

/** The media type a file name suggests (the CLI), or undefined. */
export function mediaTypeOfFile(name: string): MediaType | undefined {
  const ext = name.toLowerCase().split('.').pop();
  switch (ext) {
    case 'txt':
    case 'text':
      return 'text/plain';
    case 'md':
    case 'markdown':
      return 'text/markdown';
    case 'html':
    case 'htm':
      return 'text/html';
    case 'pdf':
      return 'application/pdf';
    case 'docx':
      return 'application/vnd.openxmlformats-officedocument.wordprocessingml.document';
    default:
      return undefined;
  }
}
