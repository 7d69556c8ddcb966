-- Actions in doubt (a call cut off after it was sent, outcome unknown) and takeover in seconds.

-- A proposal in doubt keeps what is known of the call (sent at, by which process, what the system
-- last said, where to check) and, once settled, who settled it, how, and on what evidence.
ALTER TABLE "proposals" ADD COLUMN "in_doubt" JSONB;
ALTER TABLE "proposals" ADD COLUMN "reconciliation" JSONB;
ALTER TABLE "proposals" DROP CONSTRAINT "proposals_status";
ALTER TABLE "proposals" ADD CONSTRAINT "proposals_status" CHECK ("status" IN (
    'proposed', 'pending_approval', 'approved', 'executing', 'executed', 'failed', 'denied', 'rejected', 'expired', 'cancelled', 'in_doubt'));

-- An objective's step records its proposal's status as the planner last saw it: in doubt too.
ALTER TABLE "objective_steps" DROP CONSTRAINT "objective_steps_proposal_status";
ALTER TABLE "objective_steps" ADD CONSTRAINT "objective_steps_proposal_status" CHECK ("proposal_status" IS NULL OR "proposal_status" IN (
    'proposed', 'pending_approval', 'approved', 'executing', 'executed', 'failed', 'denied', 'rejected', 'expired', 'cancelled', 'in_doubt'));

-- A connector call records who sent it; `unknown` is a call whose answer never came.
ALTER TABLE "connector_calls" ADD COLUMN "started_by" TEXT;
ALTER TABLE "connector_calls" DROP CONSTRAINT "connector_calls_status";
ALTER TABLE "connector_calls" ADD CONSTRAINT "connector_calls_status" CHECK ("status" IN ('started', 'succeeded', 'failed', 'unknown'));

-- Webhook deliveries are claimed by a holder, so a dead holder's claim is taken over at once.
ALTER TABLE "webhook_deliveries" ADD COLUMN "claimed_by" TEXT;

-- CreateTable
CREATE TABLE "claim_holders" (
    "id" TEXT NOT NULL,
    "host" TEXT NOT NULL,
    "pid" INTEGER NOT NULL,
    "started_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "claim_holders_pkey" PRIMARY KEY ("id")
);

-- Below: rules the Prisma schema cannot express.
-- A registered holder (executor, objective runner, webhook sender) is alive while a session holds
-- its advisory lock (1380404820, hashtext(id)); PostgreSQL releases it the moment that session's
-- connection drops, so a SIGKILLed process's claims are seen as dead at once, not after a lease.
-- A holder that never registered is judged by its lease alone.
CREATE FUNCTION regent_holder_dead(holder TEXT) RETURNS BOOLEAN LANGUAGE sql STABLE AS $$
  SELECT holder IS NOT NULL
     AND EXISTS (SELECT 1 FROM claim_holders h WHERE h.id = holder)
     AND NOT EXISTS (
           SELECT 1 FROM pg_locks l
            WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
              AND l.classid = 1380404820::oid
              AND l.objid = (hashtext(holder)::bigint & 4294967295)::oid)
$$;
