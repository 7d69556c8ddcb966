import { createTestDatabase, type TestDatabase } from '../support/databases';
import { addPeople, addTwin, makePolicies, startRegent, type Harness } from '../objectives/support';
import { ce, failure, journalOf } from './bus-support';

/** POST /v1/signals with Content-Type application/cloudevents+json (a structured CloudEvent 1.0). */
describe('POST /v1/signals as a CloudEvent', () => {
  let db: TestDatabase;
  let h: Harness;
  let keys: Record<string, string>;
  beforeAll(async () => {
    db = await createTestDatabase('embedded');
    h = await startRegent(db, makePolicies(), { runner: false });
    keys = await addPeople(h);
    await addTwin(h, keys.olga!, 'olga', 'ops-twin', 'execute');
  });
  afterAll(async () => {
    await h?.close();
    await db?.drop();
  });

  const post = async (body: unknown, contentType = 'application/cloudevents+json; charset=utf-8') => {
    const r = await fetch(`${h.server.url}/v1/signals`, { method: 'POST', headers: { authorization: `Bearer ${keys.admin}`, 'content-type': contentType }, body: JSON.stringify(body) });
    return { status: r.status, headers: r.headers, body: (await r.json()) as Record<string, any> };
  };

  it('maps id, type, source, time and data onto a signal, and answers a repeat with the first result', async () => {
    const r = await post(failure('http-ce-1'));
    expect(r.status).toBe(201);
    expect(r.body).toMatchObject({ id: 'http-ce-1', type: 'machine.failure_predicted', source: '/plant/berlin', objectives: [{ twin: 'ops-twin', rule: 'failure-prediction-urgent' }] });
    const again = await post(failure('http-ce-1'));
    expect(again.status).toBe(200);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    expect(again.body.objectives).toEqual(r.body.objectives);
    // The same event as plain JSON is still the old body shape: refused as such.
    expect((await post(ce('http-ce-2'), 'application/json')).status).toBe(400);
  });

  it('refuses a CloudEvent without id or type with 400, journaled', async () => {
    const { id: _id, ...noId } = ce('x');
    const { type: _type, ...noType } = ce('http-no-type');
    const a = await post(noId);
    const b = await post(noType);
    expect([a.status, b.status]).toEqual([400, 400]);
    expect(a.body.detail).toBe('not a CloudEvent (structured mode): no id');
    expect(b.body.detail).toBe('not a CloudEvent (structured mode): no type');
    const refused = (await journalOf(h, 'signal.refused')).slice(-2);
    expect(refused.map((e) => [e.actor, e.data.id, e.data.reason])).toEqual([
      ['user:admin', null, 'not a CloudEvent (structured mode): no id'],
      ['user:admin', 'http-no-type', 'not a CloudEvent (structured mode): no type'],
    ]);
  });
});
