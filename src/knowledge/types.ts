/**
 * The governed decision corpus (DESIGN.md "Knowledge"): the request and answer shapes, the closed
 * union of classes, and the ids of collections, documents and passages.
 */
import { z } from 'zod';

/** Ordered from least to most sensitive. */
export const CLASSES = ['public', 'internal', 'confidential', 'restricted'] as const;
export type KnowledgeClass = (typeof CLASSES)[number];
export const CLASS_RANK: Readonly<Record<KnowledgeClass, number>> = { public: 0, internal: 1, confidential: 2, restricted: 3 };

/** The classes up to and including `top`. */
export const classesUpTo = (top: KnowledgeClass): KnowledgeClass[] => CLASSES.filter((c) => CLASS_RANK[c] <= CLASS_RANK[top]);

const list = (values: readonly string[]) => `${values.slice(0, -1).join(', ')} or ${values[values.length - 1]}`;

export const ClassSchema = z.enum(CLASSES, {
  error: (iss) => (iss.input === undefined ? 'required' : `unknown class ${JSON.stringify(iss.input)} (expected ${list(CLASSES)})`),
});

/** Collection ids: like authority and twin ids. */
export const COLLECTION_ID = /^[a-z0-9][a-z0-9._-]{0,99}$/;
export const CollectionIdSchema = z
  .string()
  .regex(COLLECTION_ID, { error: 'a collection is an id: lower-case letters, digits, ".", "_" and "-" (at most 100), e.g. pricing or board-minutes' })
  .describe('Collection id, e.g. pricing');

export const DOCUMENT_ID = /^doc-[0-9a-f]{12}$/;
export const DocumentIdSchema = z.string().regex(DOCUMENT_ID, { error: 'a document id looks like doc-<12 hex digits>' });

/** The media types Regent extracts text from. */
export const MEDIA_TYPES = {
  'text/plain': 'plain text',
  'text/markdown': 'Markdown',
  'text/html': 'HTML',
  'application/pdf': 'PDF',
  'application/vnd.openxmlformats-officedocument.wordprocessingml.document': 'DOCX',
} as const;
export type MediaType = keyof typeof MEDIA_TYPES;
export const MEDIA_TYPE_NAMES = Object.keys(MEDIA_TYPES) as MediaType[];

const isFuture = (s: string) => Date.parse(s) > Date.now();

export const IngestBodySchema = z
  .object({
    collection: CollectionIdSchema,
    title: z.string().trim().min(1, { error: 'required: the document’s title' }).max(300),
    text: z.string().optional().describe('The document as text (plain, or Markdown with mediaType text/markdown)'),
    contentBase64: z.string().optional().describe('The file, base64-encoded (with mediaType)'),
    mediaType: z
      .enum(MEDIA_TYPE_NAMES as [MediaType, ...MediaType[]], {
        error: (iss) => `unsupported media type ${JSON.stringify(iss.input)} (expected ${list(MEDIA_TYPE_NAMES)})`,
      })
      .optional(),
    class: ClassSchema,
    source: z.string().trim().min(1, { error: 'required: where the document comes from (a URL, a system, a meeting)' }).max(500),
    owner: z.string().trim().min(1, { error: 'required: who is accountable for the document, e.g. user:dana' }).max(200),
    retainUntil: z.iso
      .datetime({ offset: true, error: 'must be an RFC 3339 timestamp such as 2030-01-01T00:00:00Z' })
      .refine(isFuture, { error: 'is in the past: a document kept until then would be purged at once' })
      .optional(),
  })
  .strict()
  .superRefine((b, ctx) => {
    if (b.text === undefined && b.contentBase64 === undefined)
      ctx.addIssue({ code: 'custom', path: ['text'], message: 'required: the document as text, or contentBase64 with mediaType' });
    if (b.text !== undefined && b.contentBase64 !== undefined)
      ctx.addIssue({ code: 'custom', path: ['contentBase64'], message: 'give text or contentBase64, not both' });
    if (b.contentBase64 !== undefined && b.mediaType === undefined)
      ctx.addIssue({ code: 'custom', path: ['mediaType'], message: `required with contentBase64 (one of ${list(MEDIA_TYPE_NAMES)})` });
  });
export type IngestBody = z.output<typeof IngestBodySchema>;

export const IngestResultSchema = z
  .object({
    id: z.string().describe('The document id (the same for every version)'),
    version: z.number().int().min(1),
    chunks: z.number().int().min(1).describe('Passages made, ids <id>:<version>:<n> from 0'),
    collection: z.string(),
    title: z.string(),
    class: ClassSchema,
    contentSha256: z.string(),
    pages: z.number().int().min(1),
  })
  .meta({ id: 'KnowledgeDocument' });
export type IngestResult = z.output<typeof IngestResultSchema>;

export const PassageSchema = z
  .object({
    id: z.string().describe('<document>:<version>:<chunk>'),
    document: z.string(),
    version: z.number().int(),
    chunk: z.number().int(),
    title: z.string(),
    collection: z.string(),
    class: ClassSchema,
    source: z.string(),
    headings: z.array(z.string()).describe('The headings the passage sits under, outermost first'),
    page: z.number().int().nullable(),
    text: z.string(),
    sha256: z.string().describe('SHA-256 of the passage text'),
    rank: z.number(),
  })
  .meta({ id: 'KnowledgePassage' });
export type Passage = z.output<typeof PassageSchema>;

export const SearchQuerySchema = z
  .object({
    q: z.string().trim().min(1, { error: 'required: what to search for (words, "a phrase", -excluded, or)' }).max(500),
    collection: CollectionIdSchema.optional(),
    limit: z.coerce.number().int().min(1).max(50).default(10),
  })
  .strict();

export const SearchResultSchema = z.object({
  query: z.string(),
  queryHash: z.string().describe('sha256:<hex> of the query, as journaled (the text is not)'),
  passages: z.array(PassageSchema),
});
export type SearchResult = z.output<typeof SearchResultSchema>;

/** What a reader may see: each rule a set of classes in some collections (null: every collection). */
export interface ReadRule {
  collections: readonly string[] | null;
  classes: readonly KnowledgeClass[];
}
export type ReadScope = readonly ReadRule[];
