import { z } from 'zod';
import { IngestBodySchema, IngestResultSchema, SearchQuerySchema, SearchResultSchema, DocumentIdSchema } from '../../knowledge/types';
import type { ApiDeps } from '../app';
import { actorOf, check, checkSome } from '../auth';
import { endpoint, implement, type ApiModule } from '../registry';

const endpoints = {
  add: endpoint({
    id: 'addKnowledgeDocument',
    method: 'POST',
    path: '/v1/knowledge/documents',
    tag: 'Knowledge',
    summary: 'Add a document to the knowledge corpus (the same collection and title again: a new version)',
    description:
      'Text as `text` (plain; Markdown or HTML with `mediaType`), or a file as `contentBase64` with `mediaType` (text/plain, text/markdown, text/html, application/pdf, DOCX). The text is extracted, chunked by headings and paragraphs into passages `<id>:<version>:<n>` and stored with the journal entry (knowledge.ingested) in one transaction. A file that cannot be read (an encrypted or corrupt PDF, say), an empty document, one over REGENT_MAX_DOCUMENT_BYTES, an unknown class, a collection that is not an id or a retainUntil in the past is refused (400 naming the field) and nothing is stored. Admins add to any collection; executives to collections they own, and a new collection becomes theirs (an admin making one: owned by the document’s owner when that is user:<id>).',
    access: { capabilities: ['knowledge.ingest'], scope: 'executives: collections they own, or a new one' },
    body: IngestBodySchema,
    bodyCheckedBy: 'service',
    responses: { 201: { description: 'Stored', schema: IngestResultSchema } },
  }),
  search: endpoint({
    id: 'searchKnowledge',
    method: 'GET',
    path: '/v1/knowledge/search',
    tag: 'Knowledge',
    summary: 'Full-text search of what the caller may read, ranked',
    description:
      'websearch syntax ("a phrase", -word, or), ranked by ts_rank; the latest version of each document only; passages past retainUntil never. Twins read what their authority’s `knowledge` grants; auditors and admins every collection up to confidential; executives public and internal everywhere and every class in collections they own; more only by an explicit grant (regent knowledge grant). Every search is journaled (knowledge.searched) with the query’s hash and the passage ids returned, never their text.',
    access: { capabilities: ['knowledge.search'], twin: true, scope: 'by class and collection, see the description' },
    query: SearchQuerySchema,
    responses: { 200: { description: 'Passages, best first', schema: SearchResultSchema } },
    errors: { 403: 'The caller may read nothing (a twin whose authority grants no knowledge)' },
  }),
  delete: endpoint({
    id: 'deleteKnowledgeDocument',
    method: 'DELETE',
    path: '/v1/knowledge/documents/:id',
    tag: 'Knowledge',
    summary: 'Delete a document early (every version): its passages’ text is purged, their hashes stay',
    access: { capabilities: ['knowledge.delete'] },
    params: z.object({ id: DocumentIdSchema.describe('The document id') }).strict(),
    query: z.object({ reason: z.string().trim().min(1).max(500).optional().describe('Why, journaled') }).strict(),
    responses: {
      200: { description: 'Deleted', schema: z.object({ id: z.string(), versions: z.number().int(), passages: z.number().int() }) },
    },
    errors: { 404: 'No such document, or deleted already' },
  }),
};

/** The knowledge corpus: ingest, search, early deletion. */
export const knowledgeApi: ApiModule = {
  name: 'knowledge',
  endpoints: Object.values(endpoints),
  available: (deps) => deps.knowledge !== undefined,
  bind(deps: ApiDeps) {
    const knowledge = deps.knowledge!;
    return [
      implement(endpoints.add, async ({ body }, req) => {
        checkSome(req, 'knowledge.ingest');
        const p = req.principal;
        if (p.kind !== 'user') throw new Error('unreachable: twins are refused at the gate');
        return knowledge.ingest(body, { ref: p.ref, roles: actorOf(p).roles });
      }),
      implement(endpoints.search, async ({ query }, req) => {
        const p = req.principal;
        return knowledge.search(query, p.kind === 'twin' ? { kind: 'twin', ref: p.ref } : { kind: 'user', ref: p.ref, roles: p.appRoles });
      }),
      implement(endpoints.delete, async ({ params, query }, req) => {
        const p = check(req, 'knowledge.delete');
        return knowledge.delete(params.id, p.ref, query.reason);
      }),
    ];
  },
};
