import type { Database } from '../../src/db/database';
import { createHttpApp } from '../../src/http/app';
import { listen, type RunningServer } from '../../src/http/server';
import type { JournalService } from '../../src/journal/service';
import { createPeopleService, type PeopleService } from '../../src/people/service';
import { bundleOf, authority } from '../../src/policy/testing/fixtures';
import { createTwinService, type TwinService } from '../../src/twins/service';
import { silentLog, startJournal } from './journal';

/** Authorities for twin tests: Dana's twin and a sub-twin her twin delegates to; three of Vic's. */
export const TEST_BUNDLE = () =>
  bundleOf(
    authority({ id: 'dana-twin' }).replace('delegator: user:dana-twin-owner', 'delegator: user:dana'),
    authority({ id: 'dana-sub', parent: 'dana-twin' }).replace('delegator: user:dana-sub-owner', 'delegator: twin:dana-twin'),
    authority({ id: 'vic-twin' }).replace('delegator: user:vic-twin-owner', 'delegator: user:vic'),
    authority({ id: 'vic-2' }).replace('delegator: user:vic-2-owner', 'delegator: user:vic'),
    authority({ id: 'vic-3' }).replace('delegator: user:vic-3-owner', 'delegator: user:vic'),
  );

export interface Services {
  journal: JournalService & { vkeyText: string };
  people: PeopleService;
  twins: TwinService;
}

export async function startServices(db: Database): Promise<Services> {
  const journal = await startJournal(db);
  const people = createPeopleService({ sql: db.sql, prisma: db.prisma, journal, log: silentLog });
  const bundle = TEST_BUNDLE();
  const twins = createTwinService({ sql: db.sql, prisma: db.prisma, journal, people, policy: { bundle: () => bundle }, log: silentLog });
  return { journal, people, twins };
}

export async function startApi(db: Database): Promise<Services & { server: RunningServer }> {
  const s = await startServices(db);
  const app = createHttpApp({ db, journal: s.journal, log: silentLog, people: s.people, twins: s.twins });
  return { ...s, server: await listen(app, '127.0.0.1', 0, silentLog) };
}

/** fetch with a bearer key and a JSON body; returns the status, headers and parsed body. */
export async function call(url: string, method: string, key: string | null, body?: unknown, raw?: string) {
  const headers: Record<string, string> = {};
  if (key) headers.authorization = `Bearer ${key}`;
  if (body !== undefined || raw !== undefined) headers['content-type'] = 'application/json';
  const res = await fetch(url, { method, headers, body: raw ?? (body === undefined ? undefined : JSON.stringify(body)) });
  const text = await res.text();
  return { status: res.status, headers: res.headers, text, body: text ? (JSON.parse(text) as Record<string, any>) : undefined };
}
