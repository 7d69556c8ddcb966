import { readSandboxRecord } from '../../src/connectors/sandbox';
import { createTestDatabase, describeEachDatabase, describePostgres, type TestDatabase } from '../support/databases';
import { addPeople, addTwin, makePolicies, startRegent, until, untilMatch, verifiedJournal } from './support';

/**
 * Runs are durable: a run waiting for approval survives a restart and resumes once decided, and a
 * run interrupted in the middle of a turn resumes where it stood, without a second proposal or a
 * second business effect for the steps it had already taken (idempotency keys).
 */
describeEachDatabase('objective runs across restarts', (getDb) => {
  const policies = makePolicies();
  let keys: Record<string, string>;

  it('resumes a run that waits for approval after the server restarts', async () => {
    let h = await startRegent(getDb(), policies);
    keys = await addPeople(h);
    await addTwin(h, keys.vic!, 'vic', 'vic-approve', 'approve');
    await addTwin(h, keys.vic!, 'vic', 'vic-execute', 'execute');
    const created = await h.api('POST', '/v1/twins/vic-approve/objectives', keys.vic!, {
      text: 'Keep Globex',
      playbook: 'renewal-discount',
      params: { account: 'globex', discountPct: 7, amount: '700.00' },
    });
    const id = created.body!.id as string;
    const waiting = await until(h, `/v1/objectives/${id}`, keys.vic!, ['waiting_for_approval']);
    await h.close();

    h = await startRegent(getDb(), policies);
    try {
      expect((await h.api('GET', `/v1/objectives/${id}`, keys.vic!)).body!.status).toBe('waiting_for_approval');
      expect((await h.api('POST', `/v1/proposals/${waiting.proposals[0].id}/decisions`, keys.sara!, { decision: 'approve' })).status).toBe(
        200,
      );
      const second = await untilMatch(
        h,
        `/v1/objectives/${id}`,
        keys.vic!,
        (o) => o.proposals.length === 2 && o.status === 'waiting_for_approval',
      );
      expect((await h.api('POST', `/v1/proposals/${second.proposals[1].id}/decisions`, keys.vic!, { decision: 'approve' })).status).toBe(
        200,
      );
      const done = await until(h, `/v1/objectives/${id}`, keys.vic!, ['completed', 'failed']);
      expect(done.status).toBe('completed');
      expect(done.proposals.map((p: { id: string; status: string }) => p.status)).toEqual(['executed', 'executed']);
      expect(done.proposals[0].id).toBe(waiting.proposals[0].id);
      const globex = await readSandboxRecord(h.regent.db.sql, { system: 'crm', kind: 'account', key: 'globex' });
      expect((globex!.data.discountHistory as { key: string }[]).filter((e) => e.key === waiting.proposals[0].id)).toHaveLength(1);
    } finally {
      await h.close();
    }
  });

  it('fails a run whose saved playbook state cannot be read, journaled, instead of starting it over', async () => {
    let h = await startRegent(getDb(), policies);
    let id: string;
    let waiting: Record<string, any>;
    try {
      const created = await h.api('POST', '/v1/twins/vic-approve/objectives', keys.vic!, {
        text: 'Keep Initech',
        playbook: 'renewal-discount',
        params: { account: 'initech', discountPct: 6, amount: '600.00' },
      });
      id = created.body!.id as string;
      waiting = await until(h, `/v1/objectives/${id}`, keys.vic!, ['waiting_for_approval']);
    } finally {
      await h.close();
    }
    // What a damaged row or a state written by another version looks like to this one.
    const db = getDb();
    const raw = await db.open({ migrate: false });
    try {
      await raw.sql.query(
        `UPDATE objectives SET planner_state = '{"v":1,"steps":{"discount":{"status":"halfway"}}}'::jsonb WHERE id = $1`,
        [id],
      );
    } finally {
      await raw.close();
    }

    h = await startRegent(db, policies);
    try {
      expect((await h.api('POST', `/v1/proposals/${waiting.proposals[0].id}/decisions`, keys.sara!, { decision: 'approve' })).status).toBe(
        200,
      );
      const done = await until(h, `/v1/objectives/${id}`, keys.vic!, ['completed', 'failed']);
      expect(done.status).toBe('failed');
      expect(done.summary).toMatch(
        /^the saved playbook run state cannot be read \(steps\.discount\.status: .+\); the run is failed rather than started over$/,
      );
      // Nothing was requested again from a fresh state.
      expect(done.proposals).toHaveLength(1);
      const entries = await verifiedJournal(h.regent);
      const failed = entries.filter(
        (e) => e.kind === 'objective.transitioned' && e.subject === `objective:${id}` && e.data.to === 'failed',
      );
      expect(failed).toHaveLength(1);
      expect(failed[0]!.data.reason).toBe(done.summary);
    } finally {
      await h.close();
    }
  });

  it('resumes a run interrupted mid-turn without repeating the steps it already took', async () => {
    // One request a minute for the twin (which made none yet): the playbook's first step goes through,
    // the second waits for the next window.
    let h = await startRegent(getDb(), policies, { env: { REGENT_AGENT_RATE_PER_MINUTE: '1' } });
    let id: string;
    let first: Record<string, any>;
    try {
      const created = await h.api('POST', '/v1/twins/vic-execute/objectives', keys.vic!, {
        text: 'Keep Acme',
        playbook: 'renewal-discount',
        params: { account: 'acme', discountPct: 11, amount: '600.00' },
      });
      id = created.body!.id as string;
      first = await untilMatch(h, `/v1/objectives/${id}`, keys.vic!, (o) => o.proposals[0]?.status === 'executed');
      await new Promise((r) => setTimeout(r, 500));
      // Still running: the note waits for the rate limit; nothing more was requested.
      const mid = (await h.api('GET', `/v1/objectives/${id}`, keys.vic!)).body!;
      expect(mid.status).toBe('running');
      expect(mid.proposals).toHaveLength(1);
      expect(mid.stepsUsed).toBe(1);
    } finally {
      // Stopping interrupts the turn and gives the run back.
      await h.close();
    }

    h = await startRegent(getDb(), policies, { env: { REGENT_AGENT_RATE_PER_MINUTE: '1000' } });
    try {
      const done = await until(h, `/v1/objectives/${id!}`, keys.vic!, ['completed', 'failed']);
      expect(done.status).toBe('completed');
      expect(done.proposals.map((p: { action: string; status: string }) => `${p.action}:${p.status}`)).toEqual([
        'crm.discount.update:executed',
        'crm.note.create:executed',
      ]);
      // The discount was not asked for again, and happened exactly once.
      expect(done.proposals[0].id).toBe(first!.proposals[0].id);
      expect(done.stepsUsed).toBe(2);
      const acme = await readSandboxRecord(h.regent.db.sql, { system: 'crm', kind: 'account', key: 'acme' });
      expect((acme!.data.discountHistory as { key: string }[]).filter((e) => e.key === first!.proposals[0].id)).toHaveLength(1);
      const entries = await verifiedJournal(h.regent);
      const steps = entries.filter((e) => e.kind === 'objective.step' && e.subject === `objective:${id!}`).map((e) => e.data.key);
      expect(steps).toEqual(['discount', 'note']);
    } finally {
      await h.close();
    }
  });
});

describeEachDatabase('objective runs under a lease', (getDb) => {
  it('takes over a run whose runner died once its lease lapses, and never before', async () => {
    const policies = makePolicies();
    const h = await startRegent(getDb(), policies, { runner: false });
    try {
      const keys = await addPeople(h);
      await addTwin(h, keys.vic!, 'vic', 'vic-execute', 'execute');
      const created = await h.api('POST', '/v1/twins/vic-execute/objectives', keys.vic!, {
        text: 'Note the call',
        playbook: 'renewal-discount',
        params: { account: 'globex', discountPct: 2, amount: '20.00' },
      });
      const id = created.body!.id as string;
      // Another process claimed it and died: its lease runs for another 1.5 s.
      await h.regent.db.sql.query(
        `UPDATE objectives SET claimed_by = 'runner-dead', claimed_until = now() + interval '1500 milliseconds', status = 'running' WHERE id = $1`,
        [id],
      );
      const claimedAt = Date.now();
      h.regent.objectives!.start();
      await new Promise((r) => setTimeout(r, 700));
      expect((await h.api('GET', `/v1/objectives/${id}`, keys.vic!)).body!.proposals).toHaveLength(0);
      const done = await until(h, `/v1/objectives/${id}`, keys.vic!, ['completed', 'failed']);
      expect(Date.now() - claimedAt).toBeGreaterThanOrEqual(1400);
      expect(done.status).toBe('completed');
      expect(done.proposals).toHaveLength(2);
    } finally {
      await h.close();
    }
  });
});

describePostgres('objective runs shared by several processes (PostgreSQL)', () => {
  let db: TestDatabase;
  beforeAll(async () => {
    db = await createTestDatabase('postgres');
  });
  afterAll(async () => db?.drop());

  it('carries out every objective exactly once when two runners share the database', async () => {
    const policies = makePolicies();
    const env = { REGENT_AGENT_RATE_PER_MINUTE: '1000' };
    const a = await startRegent(db, policies, { env, runnerId: 'runner-a' });
    const b = await startRegent(db, policies, { env, runnerId: 'runner-b' });
    try {
      const keys = await addPeople(a);
      await addTwin(a, keys.vic!, 'vic', 'vic-execute', 'execute');
      const ids: string[] = [];
      for (let i = 0; i < 12; i++) {
        const via = i % 2 ? a : b;
        const r = await via.api('POST', '/v1/twins/vic-execute/objectives', keys.vic!, {
          text: `Discount ${i}`,
          playbook: 'renewal-discount',
          params: { account: ['acme', 'globex', 'initech'][i % 3], discountPct: 1 + (i % 5), amount: `${10 + i}.00` },
        });
        expect(r.status).toBe(201);
        ids.push(r.body!.id);
      }
      for (const id of ids)
        expect((await until(a, `/v1/objectives/${id}`, keys.vic!, ['completed', 'failed'], 30_000)).status).toBe('completed');
      const rows = await a.regent.db.sql.query<{ n: string }>(
        `SELECT count(*) AS n FROM proposals WHERE context->>'objective' = ANY($1::text[])`,
        [ids],
      );
      expect(Number(rows[0]!.n)).toBe(24);
      const entries = await verifiedJournal(a.regent);
      const starts = entries.filter((e) => e.kind === 'objective.transitioned' && e.data.from === 'queued');
      expect(starts).toHaveLength(12);
      expect(entries.filter((e) => e.kind === 'objective.step')).toHaveLength(24);
    } finally {
      await a.close();
      await b.close();
    }
  });
});
