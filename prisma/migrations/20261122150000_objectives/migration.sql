-- CreateTable
CREATE TABLE "objectives" (
    "id" UUID NOT NULL,
    "twin_id" TEXT NOT NULL,
    "owner" TEXT NOT NULL,
    "created_by" TEXT NOT NULL,
    "text" TEXT NOT NULL,
    "playbook" TEXT,
    "playbook_snapshot" JSONB,
    "params" JSONB NOT NULL,
    "constraints" JSONB NOT NULL,
    "deadline" TIMESTAMPTZ(3),
    "step_budget" INTEGER NOT NULL,
    "planner" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "summary" TEXT,
    "planner_state" JSONB,
    "steps_used" INTEGER NOT NULL DEFAULT 0,
    "signal_id" TEXT,
    "next_run_at" TIMESTAMPTZ(3),
    "claimed_by" TEXT,
    "claimed_until" TIMESTAMPTZ(3),
    "failures" INTEGER NOT NULL DEFAULT 0,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "finished_at" TIMESTAMPTZ(3),

    CONSTRAINT "objectives_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "objective_steps" (
    "objective_id" UUID NOT NULL,
    "key" TEXT NOT NULL,
    "twin_id" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "args_hash" CHAR(64) NOT NULL,
    "proposal_id" UUID,
    "proposal_status" TEXT,
    "outcome" JSONB,
    "amount_minor" BIGINT,
    "currency" CHAR(3),
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "objective_steps_pkey" PRIMARY KEY ("objective_id","key")
);

-- CreateTable
CREATE TABLE "signals" (
    "id" TEXT NOT NULL,
    "type" TEXT NOT NULL,
    "source" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "content_hash" CHAR(64) NOT NULL,
    "occurred_at" TIMESTAMPTZ(3),
    "received_by" TEXT NOT NULL,
    "received_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "result" JSONB NOT NULL,

    CONSTRAINT "signals_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "objectives_twin_id_created_at_idx" ON "objectives"("twin_id", "created_at");

-- CreateIndex
CREATE INDEX "objectives_status_next_run_at_idx" ON "objectives"("status", "next_run_at");

-- CreateIndex
CREATE INDEX "objectives_signal_id_idx" ON "objectives"("signal_id");

-- CreateIndex
CREATE INDEX "objective_steps_twin_id_created_at_idx" ON "objective_steps"("twin_id", "created_at");

-- CreateIndex
CREATE INDEX "objective_steps_proposal_id_idx" ON "objective_steps"("proposal_id");

-- CreateIndex
CREATE INDEX "signals_type_received_at_idx" ON "signals"("type", "received_at");

-- Below: rules the Prisma schema cannot express. Closed unions are enforced by the database too.
ALTER TABLE "objectives" ADD CONSTRAINT "objectives_status" CHECK ("status" IN (
    'queued', 'running', 'waiting_for_approval', 'completed', 'failed', 'cancelled'));
ALTER TABLE "objectives" ADD CONSTRAINT "objectives_planner" CHECK ("planner" IN ('playbook', 'llm'));
ALTER TABLE "objectives" ADD CONSTRAINT "objectives_playbook_snapshot" CHECK (("planner" = 'playbook') = ("playbook_snapshot" IS NOT NULL));
ALTER TABLE "objectives" ADD CONSTRAINT "objectives_step_budget" CHECK ("step_budget" BETWEEN 1 AND 1000);
ALTER TABLE "objectives" ADD CONSTRAINT "objectives_steps_used" CHECK ("steps_used" >= 0);
ALTER TABLE "objective_steps" ADD CONSTRAINT "objective_steps_proposal_status" CHECK ("proposal_status" IS NULL OR "proposal_status" IN (
    'proposed', 'pending_approval', 'approved', 'executing', 'executed', 'failed', 'denied', 'rejected', 'expired', 'cancelled'));
ALTER TABLE "objective_steps" ADD CONSTRAINT "objective_steps_objective_id_fkey"
    FOREIGN KEY ("objective_id") REFERENCES "objectives"("id") ON DELETE RESTRICT ON UPDATE CASCADE;
