import type { Command } from 'commander';
import { ROLES } from '../policy/roles';
import { action, printJson, withRegent } from './io';

/** `--role a --role b,c` → [a, b, c] */
const collect = (v: string, prev: string[]) => [
  ...prev,
  ...v
    .split(',')
    .map((r) => r.trim())
    .filter(Boolean),
];

export function registerUsers(program: Command): void {
  const users = program.command('users').description('people, their roles and API keys (opens the database directly)');

  users
    .command('add')
    .description('create a user and their first API key (shown once)')
    .requiredOption('--name <name>', 'full name, e.g. "Dana Fischer"')
    .option(
      '--role <role>',
      `a role: at least one of ${ROLES.join(', ')}, plus business roles such as cfo that approval tiers name (repeatable)`,
      collect,
      [],
    )
    .option('--id <id>', 'user id (default: derived from the name, e.g. dana-fischer)')
    .option('--actor <actor>', 'who adds the user, journaled', 'system')
    .option('--json', 'print {"id","apiKey"}')
    .action(
      action(async (o: { name: string; role: string[]; id?: string; actor: string; json?: boolean }) => {
        const { user, apiKey } = await withRegent('regent users add', (r) =>
          r.people.addUser({ name: o.name, roles: o.role, ...(o.id ? { id: o.id } : {}) }, o.actor),
        );
        if (o.json) printJson({ id: user.id, apiKey });
        else process.stdout.write(`created user ${user.id} (${user.roles.join(', ')})\nAPI key, shown once: ${apiKey}\n`);
      }),
    );

  users
    .command('list')
    .description('list users with their roles and keys (never the keys themselves)')
    .option('--json', 'print as JSON')
    .action(
      action(async (o: { json?: boolean }) => {
        const list = await withRegent('regent users list', async (r) => {
          const [all, keys] = await Promise.all([r.people.listUsers(), r.people.listKeys()]);
          return all.map((u) => ({ ...u, keys: keys.filter((k) => k.principal === `user:${u.id}`) }));
        });
        if (o.json) return printJson(list);
        for (const u of list) {
          const active = u.keys.filter((k) => !k.revokedAt).map((k) => k.id);
          process.stdout.write(
            `${u.id}  ${u.name}  [${u.roles.join(', ')}]  keys: ${active.join(', ') || 'none'}${u.disabledAt ? '  (disabled)' : ''}\n`,
          );
        }
      }),
    );

  users
    .command('key')
    .description('make a new API key for a user (shown once)')
    .requiredOption('--user <id>', 'the user id')
    .option('--label <label>', 'what the key is for, e.g. laptop')
    .option('--actor <actor>', 'who makes the key, journaled', 'system')
    .option('--json', 'print {"id","keyId","apiKey"}')
    .action(
      action(async (o: { user: string; label?: string; actor: string; json?: boolean }) => {
        const k = await withRegent('regent users key', (r) => r.people.createKey(`user:${o.user}`, o.label, o.actor));
        if (o.json) printJson({ id: o.user, keyId: k.keyId, apiKey: k.apiKey });
        else process.stdout.write(`new key ${k.keyId} for ${o.user}, shown once: ${k.apiKey}\n`);
      }),
    );

  users
    .command('revoke-key')
    .description('revoke an API key at once (see regent users list for key ids)')
    .argument('<keyId>', 'the key id (the 12 hex characters after rgt_)')
    .option('--actor <actor>', 'who revokes, journaled', 'system')
    .option('--json', 'print the key as JSON')
    .action(
      action(async (keyId: string, o: { actor: string; json?: boolean }) => {
        const k = await withRegent('regent users revoke-key', (r) => r.people.revokeKey(keyId, o.actor));
        if (o.json) printJson(k);
        else process.stdout.write(`revoked key ${k.id} of ${k.principal}\n`);
      }),
    );
}
