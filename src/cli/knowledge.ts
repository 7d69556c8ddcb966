import fs from 'node:fs';
import path from 'node:path';
import type { Command } from 'commander';
import { CLASSES, MEDIA_TYPE_NAMES, type KnowledgeClass } from '../knowledge/types';
import { mediaTypeOfFile } from '../knowledge/extract';
import { action, CliError, printJson, withRegent } from './io';

const TEXT_TYPES = new Set(['text/plain', 'text/markdown', 'text/html']);

export function registerKnowledge(program: Command): void {
  const knowledge = program.command('knowledge').description('the governed decision corpus: documents, search, grants, retention (opens the database directly)');

  knowledge
    .command('add')
    .description('add a document (text, Markdown, HTML, PDF or DOCX); the same collection and title again is a new version')
    .argument('<file>', 'the file; its type from the extension (.txt .md .html .pdf .docx) unless --media-type says')
    .requiredOption('--collection <id>', 'the collection, an id such as pricing (made when new)')
    .requiredOption('--class <class>', `its class: ${CLASSES.join(', ')}`)
    .requiredOption('--source <source>', 'where it comes from (a URL, a system, a meeting)')
    .requiredOption('--owner <owner>', 'who is accountable for it, e.g. user:dana')
    .option('--title <title>', 'its title (default: the file name without extension)')
    .option('--retain-until <time>', 'RFC 3339: its passages are never returned after this, and purged')
    .option('--media-type <type>', `one of ${MEDIA_TYPE_NAMES.join(', ')}`)
    .option('--actor <actor>', 'who adds it, journaled', 'system')
    .option('--json', 'print {"id","version","chunks",…}')
    .action(
      action(async (file: string, o: { collection: string; class: string; source: string; owner: string; title?: string; retainUntil?: string; mediaType?: string; actor: string; json?: boolean }) => {
        let bytes: Buffer;
        try {
          bytes = fs.readFileSync(file);
        } catch (err) {
          throw new CliError(`cannot read ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, 2);
        }
        const mediaType = o.mediaType ?? mediaTypeOfFile(file);
        if (!mediaType) throw new CliError(`cannot tell the type of ${file} from its extension: give --media-type (${MEDIA_TYPE_NAMES.join(', ')})`, 2);
        const body = {
          collection: o.collection,
          title: o.title ?? path.basename(file).replace(/\.[^.]+$/, ''),
          class: o.class,
          source: o.source,
          owner: o.owner,
          mediaType,
          ...(TEXT_TYPES.has(mediaType) ? { text: bytes.toString('utf8') } : { contentBase64: bytes.toString('base64') }),
          ...(o.retainUntil ? { retainUntil: o.retainUntil } : {}),
        };
        const r = await withRegent('regent knowledge add', (regent) => regent.knowledge.ingest(body, { ref: o.actor, roles: ['admin'] }));
        if (o.json) printJson(r);
        else process.stdout.write(`added ${r.title} to ${r.collection} as ${r.id} version ${r.version}: ${r.chunks} passages, ${r.pages} pages, ${r.class}\n`);
      }),
    );

  knowledge
    .command('grant')
    .description('let a person read more classes (restricted, say), in one collection or all; journaled')
    .requiredOption('--to <principal>', 'the person, user:<id>')
    .requiredOption('--class <class...>', `classes: ${CLASSES.join(', ')}`)
    .option('--collection <id>', 'one collection (default: every collection)')
    .option('--actor <actor>', 'who grants, journaled', 'system')
    .option('--json', 'print {"id"}')
    .action(
      action(async (o: { to: string; class: string[]; collection?: string; actor: string; json?: boolean }) => {
        const r = await withRegent('regent knowledge grant', (regent) => regent.knowledge.grant(o.to, o.collection ?? null, o.class as KnowledgeClass[], o.actor));
        if (o.json) printJson(r);
        else process.stdout.write(`granted ${o.to} ${o.class.join(', ')} in ${o.collection ?? 'every collection'} (${r.id})\n`);
      }),
    );

  knowledge
    .command('purge')
    .description('purge passages past their retainUntil now (the server also does, at start and on a timer)')
    .option('--json', 'print {"passages","versions"}')
    .action(
      action(async (o: { json?: boolean }) => {
        const r = await withRegent('regent knowledge purge', (regent) => regent.knowledge.purgeExpired());
        if (o.json) printJson(r);
        else process.stdout.write(`purged ${r.passages} passages of ${r.versions} document versions\n`);
      }),
    );

  knowledge
    .command('delete')
    .description('delete a document early, every version (its passages purged, hashes kept); journaled')
    .argument('<id>', 'the document id, doc-<12 hex>')
    .option('--reason <text>', 'why, journaled')
    .option('--actor <actor>', 'who deletes, journaled', 'system')
    .option('--json', 'print {"id","versions","passages"}')
    .action(
      action(async (id: string, o: { reason?: string; actor: string; json?: boolean }) => {
        const r = await withRegent('regent knowledge delete', (regent) => regent.knowledge.delete(id, o.actor, o.reason));
        if (o.json) printJson(r);
        else process.stdout.write(`deleted ${r.id}: ${r.passages} passages of ${r.versions} versions purged\n`);
      }),
    );
}
