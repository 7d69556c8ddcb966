/**
 * Closed unions are enforced twice: by the TypeScript types and by a CHECK constraint. The two
 * must list the same values, or a status the code writes is refused by the database (a step in
 * doubt once broke its objective's run that way) or one the database allows has no code path.
 */
import { CALL_STATUSES } from '../../src/connectors/calls';
import type { Database } from '../../src/db/database';
import { OBJECTIVE_STATUSES } from '../../src/objectives/types';
import { MODES } from '../../src/policy/types';
import { PROPOSAL_STATUSES, REVIEW_DECISIONS } from '../../src/proposals/types';
import { CLASSES } from '../../src/knowledge/types';
import { describeEachDatabase } from '../support/databases';

const UNIONS: [table: string, constraint: string, values: readonly string[]][] = [
  ['proposals', 'proposals_status', PROPOSAL_STATUSES],
  ['objective_steps', 'objective_steps_proposal_status', PROPOSAL_STATUSES],
  ['proposals', 'proposals_audit', ['pending', 'passed', 'flagged']],
  ['proposal_decisions', 'proposal_decisions_decision', REVIEW_DECISIONS],
  ['connector_calls', 'connector_calls_status', CALL_STATUSES],
  ['objectives', 'objectives_status', OBJECTIVE_STATUSES],
  ['twins', 'twins_mode', MODES],
  ['knowledge_versions', 'knowledge_versions_class', CLASSES],
  ['knowledge_passages', 'knowledge_passages_class', CLASSES],
];

describeEachDatabase('closed unions and their CHECK constraints', (getDb) => {
  let db: Database;
  beforeAll(async () => {
    db = await getDb().open();
  });
  afterAll(async () => db?.close());

  it.each(UNIONS)('%s.%s allows exactly the values of its union', async (table, constraint, values) => {
    const [row] = await db.sql.query<{ def: string }>(
      `SELECT pg_get_constraintdef(c.oid) AS def FROM pg_constraint c JOIN pg_class t ON t.oid = c.conrelid WHERE t.relname = $1 AND c.conname = $2`,
      [table, constraint],
    );
    expect(row).toBeDefined();
    const allowed = [...row!.def.matchAll(/'([^']*)'::text/g)].map((m) => m[1]);
    expect(allowed.length).toBeGreaterThan(0);
    expect([...new Set(allowed)].sort()).toEqual([...values].sort());
  });
});
