/**
 * `regent bench knowledge`: ingest and search over a generated corpus, on a scratch database
 * (never the configured one: its journal is immutable). Documents are Markdown with `sections`
 * headed sections each, one passage a section; a page is 3,000 characters of text (CHARS_PER_PAGE).
 * Searches are two or three words of the corpus' vocabulary, as an auditor, one at a time,
 * each journaled as in production.
 */
import { openScratchDatabase } from '../db/scratch';
import { signerOfKey } from '../journal/keys';
import { generateSigningKey } from '../journal/note';
import { createJournalService } from '../journal/service';
import { createJournalStore } from '../journal/store';
import type { Logger } from '../log/logger';
import { createKnowledgeService } from './service';

export interface KnowledgeBenchResult {
  ingest_pages_per_s: number;
  search_p50_ms: number;
  search_p99_ms: number;
  passages: number;
  database: 'embedded' | 'postgres';
  documents: number;
  pages: number;
  ingest_documents_per_s: number;
  searches: number;
  hits_per_search: number;
}

export interface KnowledgeBenchOptions {
  postgresUrl?: string;
  passages: number;
  searches: number;
  log: Logger;
}

/** A small deterministic generator (mulberry32). */
function rng(seed: number) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const SYLLABLES = ['ka', 'lo', 'mi', 'ran', 'te', 'vo', 'su', 'del', 'pri', 'can', 'for', 'mer', 'tis', 'bal', 'gun', 'hex', 'nor', 'pel', 'qua', 'zen'];
const TERMS = ['discount', 'renewal', 'invoice', 'supplier', 'contract', 'liability', 'approval', 'pricing', 'margin', 'board', 'budget', 'forecast', 'payment', 'penalty', 'audit', 'control', 'policy', 'customer', 'quarter', 'revenue'];

function vocabulary(r: () => number, n: number): string[] {
  const words = new Set<string>(TERMS);
  while (words.size < n) {
    const k = 2 + Math.floor(r() * 2);
    let w = '';
    for (let i = 0; i < k; i++) w += SYLLABLES[Math.floor(r() * SYLLABLES.length)];
    words.add(w);
  }
  return [...words];
}

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

const round = (n: number, digits = 2) => Math.round(n * 10 ** digits) / 10 ** digits;

export async function benchKnowledge(o: KnowledgeBenchOptions): Promise<KnowledgeBenchResult> {
  const scratch = await openScratchDatabase({ postgresUrl: o.postgresUrl, poolMax: 8, command: 'regent bench knowledge' });
  const { db } = scratch;
  try {
    const journal = createJournalService({
      store: createJournalStore(db.sql),
      signer: signerOfKey(generateSigningKey('bench.regent.local/journal')),
      log: o.log,
      checkpointEvery: 1000,
      checkpointIntervalMs: 10_000,
    });
    await journal.start();
    const knowledge = createKnowledgeService({ sql: db.sql, journal, log: o.log, maxDocumentBytes: 10 * 1024 * 1024, twinKnowledge: async () => null });
    const r = rng(42);
    const words = vocabulary(r, 3000);
    // Zipf-like: common words often, rare ones seldom, as in real text.
    const word = () => words[Math.floor(words.length * r() ** 2.2)]!;
    const sentence = () => {
      const n = 8 + Math.floor(r() * 10);
      const w = Array.from({ length: n }, word);
      return w[0]!.charAt(0).toUpperCase() + w.join(' ').slice(1) + '.';
    };
    const sections = 20;
    const documents = Math.ceil(o.passages / sections);
    const classes = ['public', 'internal', 'confidential', 'restricted'] as const;
    const docs = Array.from({ length: documents }, (_, d) => {
      let text = '';
      for (let s = 0; s < sections && d * sections + s < o.passages; s++) {
        text += s === 0 ? `# Document ${d}: ${word()} ${word()}\n\n` : `## ${word()} ${word()}\n\n`;
        let para = '';
        while (para.length < 650) para += sentence() + ' ';
        text += para.trim() + '\n\n';
      }
      return { collection: `c${d % 10}`, title: `Document ${d}`, class: classes[d % 4]!, source: 'bench', owner: 'user:bench', mediaType: 'text/markdown' as const, text };
    });

    let pages = 0;
    let passages = 0;
    const t0 = performance.now();
    for (const doc of docs) {
      const res = await knowledge.ingest(doc, { ref: 'user:bench', roles: ['admin'] });
      pages += res.pages;
      passages += res.chunks;
    }
    await knowledge.settled();
    const ingestS = (performance.now() - t0) / 1000;

    const reader = { kind: 'user' as const, ref: 'user:auditor', roles: ['auditor' as const] };
    for (let i = 0; i < 20; i++) await knowledge.search({ q: `${word()} ${word()}` }, reader); // warm up
    const times: number[] = [];
    let hits = 0;
    for (let i = 0; i < o.searches; i++) {
      const q = Array.from({ length: 2 + (i % 2) }, word).join(' ');
      const t = performance.now();
      const res = await knowledge.search({ q: i % 3 === 0 ? q.replace(' ', ' or ') : q }, reader);
      times.push(performance.now() - t);
      hits += res.passages.length;
    }
    times.sort((a, b) => a - b);
    await journal.stop();
    return {
      ingest_pages_per_s: round(pages / ingestS, 1),
      search_p50_ms: round(percentile(times, 50)),
      search_p99_ms: round(percentile(times, 99)),
      passages,
      database: db.kind,
      documents,
      pages,
      ingest_documents_per_s: round(documents / ingestS, 1),
      searches: o.searches,
      hits_per_search: round(hits / o.searches, 1),
    };
  } finally {
    await scratch.dispose();
  }
}
