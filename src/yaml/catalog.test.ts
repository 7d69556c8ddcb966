import type { Logger } from '../log/logger';
import { createCatalog, type CatalogRead } from './catalog';

/** A folder stand-in: its fingerprint and what a read of it gives, both changed by the test. */
function fakeFolder() {
  const folder = { fingerprint: 'v1', result: { ok: true, set: ['a'] } as CatalogRead<string[]>, reads: 0 };
  const log = { info: jest.fn(), error: jest.fn() };
  const make = (checkEveryMs: number) =>
    createCatalog({
      name: 'things',
      listedAs: 'things',
      empty: [] as string[],
      ids: (set) => set,
      source: () => ({
        fingerprint: folder.fingerprint,
        read: () => {
          folder.reads++;
          return folder.result;
        },
      }),
      log: log as unknown as Logger,
      checkEveryMs,
    });
  return { folder, log, make };
}

describe('createCatalog', () => {
  it('reads at load, and again only when the fingerprint changed', () => {
    const { folder, log, make } = fakeFolder();
    const catalog = make(0);
    expect(catalog.current()).toEqual(['a']); // the first look reads, loaded or not
    expect(catalog.load()).toEqual({ ok: true, errors: [] });
    expect(catalog.current()).toEqual(['a']);
    expect(folder.reads).toBe(1);
    expect(log.info).toHaveBeenCalledWith('things loaded', { things: ['a'] });

    folder.fingerprint = 'v2';
    folder.result = { ok: true, set: ['a', 'b'] };
    expect(catalog.current()).toEqual(['a', 'b']);
    expect(folder.reads).toBe(2);
  });

  it('refuses an invalid edit with every file:line in the log, keeps the last good set, and takes the fix', () => {
    const { folder, log, make } = fakeFolder();
    const catalog = make(0);
    catalog.load();
    folder.fingerprint = 'v2';
    folder.result = {
      ok: false,
      errors: [
        { file: 'policies/things/b.yaml', line: 3, message: 'unknown field "x"' },
        { file: 'policies/things/c.yaml', line: 1, message: 'no Thing document in this file' },
      ],
    };
    expect(catalog.current()).toEqual(['a']);
    expect(catalog.errors()).toEqual(folder.result.ok ? [] : folder.result.errors);
    expect(log.error).toHaveBeenCalledWith('things refused; the last good set stays in force', {
      errors: ['policies/things/b.yaml:3: unknown field "x"', 'policies/things/c.yaml:1: no Thing document in this file'],
      inForce: ['a'],
    });
    expect(catalog.load()).toMatchObject({ ok: false, errors: [{ line: 3 }, { line: 1 }] }); // nothing changed: not read again
    expect(folder.reads).toBe(2);

    folder.fingerprint = 'v3';
    folder.result = { ok: true, set: ['b'] };
    expect(catalog.current()).toEqual(['b']);
    expect(catalog.errors()).toEqual([]);
  });

  it('looks at the files no more often than checkEveryMs, except at load', () => {
    const { folder, make } = fakeFolder();
    const catalog = make(60_000);
    catalog.load();
    folder.fingerprint = 'v2';
    folder.result = { ok: true, set: ['b'] };
    expect(catalog.current()).toEqual(['a']);
    expect(folder.reads).toBe(1);
    catalog.load();
    expect(catalog.current()).toEqual(['b']);
  });
});
