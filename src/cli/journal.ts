import fs from 'node:fs';
import type { Command } from 'commander';
import { VERSION } from '../version';
import { action, CliError, printJson, withRegent } from './io';

// Loaded on first use, so `regent --help` and light commands start fast.
import type * as exporterModule from '../journal/export';
const exporter = (): typeof exporterModule => require('../journal/export');
import type * as notesModule from '../journal/note';
const notes = (): typeof notesModule => require('../journal/note');
import type * as verifierModule from '../journal/verify';
const verifier = (): typeof verifierModule => require('../journal/verify');

function readFileArg(flag: string, file: string): string {
  try {
    return fs.readFileSync(file, 'utf8');
  } catch (err) {
    throw new CliError(`${flag} ${file}: ${(err as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (err as Error).message}`);
  }
}

export function registerJournal(program: Command): void {
  const journal = program.command('journal').description('the hash-chained, signed journal');

  journal
    .command('note')
    .description('append an audit.note entry')
    .requiredOption('--actor <actor>', 'who writes the note, e.g. user:ann')
    .requiredOption('--text <text>', 'the note')
    .option('--subject <subject>', 'what the note is about, e.g. proposal:p-1')
    .option('--json', 'print the entry as JSON')
    .action(
      action(async (o: { actor: string; text: string; subject?: string; json?: boolean }) => {
        if (!o.text.trim()) throw new CliError('--text must not be empty', 2);
        const entry = await withRegent('regent journal note', (r) =>
          r.journal.append({ kind: 'audit.note', actor: o.actor, subject: o.subject ?? null, data: { text: o.text } }),
        );
        if (o.json) printJson(entry);
        else process.stdout.write(`appended seq ${entry.seq} (${entry.kind} by ${entry.actor})\n`);
      }),
    );

  journal
    .command('head')
    .description("show the journal's size, last chain hash, Merkle root and latest checkpoint")
    .option('--json', 'print as JSON')
    .action(
      action(async (o: { json?: boolean }) => {
        const head = await withRegent('regent journal head', (r) =>
          r.journal.head().then((h) => ({ ...h, origin: r.journal.origin, vkey: r.journal.vkey })),
        );
        if (o.json) printJson(head);
        else
          process.stdout.write(
            `size       ${head.size}\nchain      ${head.chain}\nroot       ${head.root}\n` +
              `checkpoint ${head.lastCheckpoint ? head.lastCheckpoint.size : 'none'}\norigin     ${head.origin}\nvkey       ${head.vkey}\n`,
          );
      }),
    );

  journal
    .command('export')
    .description('write entries.jsonl, signed checkpoints, journal.vkey and manifest.json to a new directory')
    .requiredOption('--out <dir>', 'directory to create (must not exist or be empty)')
    .option('--actor <actor>', 'who exports, journaled as journal.exported', 'system')
    .option('--json', 'print the manifest as JSON')
    .action(
      action(async (o: { out: string; actor: string; json?: boolean }) => {
        const manifest = await withRegent('regent journal export', async (r) => {
          const m = await exporter().exportJournal(r.journal, o.out, `regent ${VERSION}`);
          await r.journal.append({ kind: 'journal.exported', actor: o.actor, data: { size: m.size, root: m.root } });
          return m;
        });
        if (o.json) printJson({ ...manifest, dir: o.out });
        else process.stdout.write(`exported ${manifest.size} entries and ${manifest.checkpoints.length} checkpoints to ${o.out}\n`);
      }),
    );

  journal
    .command('verify')
    .description('verify an export offline: every leaf, chain link, seq, checkpoint signature and root')
    .argument('<dir>', 'an export directory')
    .option('--key <file>', 'verifier key file obtained independently of the export (recommended)')
    .option('--trusted <note>', 'a checkpoint note you kept from earlier: the export must be consistent with it')
    .option('--json', 'print the result as JSON')
    .action(
      action(async (dir: string, o: { key?: string; trusted?: string; json?: boolean }) => {
        if (!fs.existsSync(dir) || !fs.statSync(dir).isDirectory()) throw new CliError(`${dir}: not a directory`);
        const result = await verifier().verifyExport(dir, {
          keyText: o.key ? readFileArg('--key', o.key) : undefined,
          // A kept checkpoint saved with one newline too many (`jq -r .note > file`, `echo`) is
          // still the same note: the signature covers nothing after its own line.
          trustedNoteText: o.trusted ? readFileArg('--trusted', o.trusted).replace(/\n+$/, '\n') : undefined,
        });
        if (o.json) printJson(result);
        if (!result.ok) {
          const f = result.failure;
          const where = f.seq !== undefined ? `seq ${f.seq}` : f.checkpoint !== undefined ? `checkpoint ${f.checkpoint}` : f.at;
          if (!o.json) process.stderr.write(`regent: verification FAILED at ${where}: ${f.message}\n`);
          process.exitCode = 1;
          return;
        }
        if (!o.json) {
          for (const w of result.warnings) process.stderr.write(`warning: ${w}\n`);
          process.stdout.write(
            `OK: ${result.size} entries, ${result.checkpoints.length} checkpoints (${result.checkpoints.join(', ')}), root ${result.root}\n`,
          );
        }
      }),
    );

  journal
    .command('keygen')
    .description('print a new signing key for REGENT_SIGNING_KEY (and its verifier key on stderr)')
    .option('--origin <origin>', 'checkpoint origin / key name', 'regent.local/journal')
    .action(
      action((o: { origin: string }) => {
        const key = notes().generateSigningKey(o.origin);
        process.stdout.write(notes().signingKeyToString(key) + '\n');
        process.stderr.write(`verifier key: ${notes().vkeyOf(key)}\n`);
      }),
    );
}
