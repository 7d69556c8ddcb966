/**
 * One event bus across processes: an MCP client listening on one Regent hears that its tools
 * changed when the kill switch is pressed on another Regent of the same PostgreSQL database.
 */
import { Client, StreamableHTTPClientTransport } from '@modelcontextprotocol/client';
import { openRegent, type Regent } from '../../src/app';
import { loadConfig } from '../../src/config/config';
import { call } from '../support/api';
import { createTestDatabase, describePostgres, type TestDatabase } from '../support/databases';
import { silentLog } from '../support/journal';
import { startRegentApi, vicAuthority, type RegentApi } from '../support/regent-api';

describePostgres('MCP change events across processes (PostgreSQL)', () => {
  let tdb: TestDatabase;
  let api: RegentApi;
  let other: Regent;
  let client: Client;

  beforeAll(async () => {
    tdb = await createTestDatabase('postgres');
    api = await startRegentApi(tdb, { extraPolicies: { 'authorities/vic-ev.yaml': vicAuthority('vic-ev') }, env: { REGENT_RATE_LIMIT_PER_MINUTE: '0' } });
    other = await openRegent(loadConfig({ ...tdb.env, REGENT_POLICIES_DIR: api.policiesDir, REGENT_CHECKPOINT_INTERVAL_MS: '60000' }), silentLog, {
      command: 'jest',
      policies: 'load',
    });
  }, 120_000);

  afterAll(async () => {
    await client?.close().catch(() => undefined);
    await other?.close();
    await api?.close();
    await tdb?.drop();
  });

  it('a kill switch pressed in another process reaches a listening client at once', async () => {
    const vic = (await call(`${api.url}/v1/users`, 'POST', api.adminKey, { id: 'vic', name: 'Vic', roles: ['executive'] })).body!.apiKey;
    const twinKey = (await call(`${api.url}/v1/twins`, 'POST', vic, { id: 'vic-ev', owner: 'user:vic', authority: 'vic-ev', mode: 'execute' })).body!.apiKey;
    client = new Client({ name: 'listener', version: '1' }, { versionNegotiation: { mode: 'auto' } });
    await client.connect(new StreamableHTTPClientTransport(new URL(`${api.url}/mcp`), { requestInit: { headers: { Authorization: `Bearer ${twinKey}` } } }));
    let heard = 0;
    client.setNotificationHandler('notifications/tools/list_changed', async () => {
      heard++;
    });
    const sub = await client.listen({ toolsListChanged: true });
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('crm_note_create');

    await other.twins.setKillSwitch({ engaged: true }, 'user:vic');
    while (heard < 1) await new Promise((r) => setTimeout(r, 20));
    expect((await client.listTools()).tools.map((t) => t.name)).toEqual(['regent_proposal_status']);

    await other.twins.setKillSwitch({ engaged: false }, 'user:vic');
    while (heard < 2) await new Promise((r) => setTimeout(r, 20));
    expect((await client.listTools()).tools.map((t) => t.name)).toContain('crm_note_create');
    await sub.close();
  });
});
