import fs from 'node:fs';
import path from 'node:path';
import { regent } from '../support/cli';
import { describeEachDatabase, tmpDir } from '../support/databases';

describeEachDatabase('regent knowledge', (getDb) => {
  let env: Record<string, string>;
  let dir: string;
  beforeAll(() => {
    env = getDb().env;
    dir = tmpDir('regent-kb-cli-');
    fs.writeFileSync(path.join(dir, 'playbook.md'), '# Pricing playbook\n\n## Discounts\n\nRenewal discounts up to fifteen percent.\n');
    fs.writeFileSync(path.join(dir, 'empty.txt'), '\n\n');
  });

  it('adds a file as a document, a new version the second time, and prints JSON', () => {
    const args = ['knowledge', 'add', path.join(dir, 'playbook.md'), '--collection', 'pricing', '--class', 'internal', '--source', 'wiki', '--owner', 'user:dana', '--json'];
    const first = regent(args, env);
    expect(first).toMatchObject({ code: 0, stderr: '' });
    expect(JSON.parse(first.stdout)).toMatchObject({ id: expect.stringMatching(/^doc-/), version: 1, chunks: 2, title: 'playbook', class: 'internal' });
    const second = JSON.parse(regent(args, env).stdout);
    expect(second).toMatchObject({ id: JSON.parse(first.stdout).id, version: 2 });
  });

  it('refuses bad input with one line naming the field and exit 1', () => {
    const base = ['--collection', 'pricing', '--class', 'internal', '--source', 'wiki', '--owner', 'user:dana'];
    expect(regent(['knowledge', 'add', path.join(dir, 'empty.txt'), ...base], env)).toMatchObject({ code: 1, stderr: 'regent: text: the document has no text\n' });
    const r = regent(['knowledge', 'add', path.join(dir, 'playbook.md'), ...base, '--class', 'secret'], env);
    expect(r).toMatchObject({ code: 1, stderr: expect.stringMatching(/^regent: body\.class: unknown class "secret"/) });
    expect(regent(['knowledge', 'add', path.join(dir, 'missing.md'), ...base], env)).toMatchObject({ code: 2, stderr: expect.stringMatching(/cannot read/) });
  });

  it('purges on demand', () => {
    const r = regent(['knowledge', 'purge', '--json'], env);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toEqual({ passages: 0, versions: 0 });
  });
});
