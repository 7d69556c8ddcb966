-- CreateTable
CREATE TABLE "users" (
    "id" TEXT NOT NULL,
    "name" TEXT NOT NULL,
    "roles" TEXT[],
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "disabled_at" TIMESTAMPTZ(3),

    CONSTRAINT "users_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "api_keys" (
    "id" TEXT NOT NULL,
    "principal" TEXT NOT NULL,
    "hash" CHAR(64) NOT NULL,
    "label" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_used_at" TIMESTAMPTZ(3),
    "revoked_at" TIMESTAMPTZ(3),

    CONSTRAINT "api_keys_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "twins" (
    "id" TEXT NOT NULL,
    "owner" TEXT NOT NULL,
    "authority" TEXT NOT NULL,
    "mode" TEXT NOT NULL,
    "killed" BOOLEAN NOT NULL DEFAULT false,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "twins_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "switches" (
    "name" TEXT NOT NULL,
    "engaged" BOOLEAN NOT NULL,
    "updated_by" TEXT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "switches_pkey" PRIMARY KEY ("name")
);

-- CreateTable
CREATE TABLE "proposals" (
    "id" UUID NOT NULL,
    "twin_id" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "args" JSONB NOT NULL,
    "args_hash" CHAR(64) NOT NULL,
    "rationale" TEXT NOT NULL,
    "idempotency_key" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "decision" JSONB NOT NULL,
    "policy_version" TEXT NOT NULL,
    "approval" JSONB,
    "expires_at" TIMESTAMPTZ(3),
    "escalated_at" TIMESTAMPTZ(3),
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3),
    "claimed_by" TEXT,
    "claimed_until" TIMESTAMPTZ(3),
    "result" JSONB,
    "error" TEXT,
    "audit" TEXT,
    "context" JSONB,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "proposals_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "proposal_decisions" (
    "id" UUID NOT NULL,
    "proposal_id" UUID NOT NULL,
    "actor" TEXT NOT NULL,
    "decision" TEXT NOT NULL,
    "comment" TEXT,
    "args" JSONB,
    "args_hash" CHAR(64) NOT NULL,
    "policy_version" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "proposal_decisions_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "connector_calls" (
    "idempotency_key" TEXT NOT NULL,
    "connector" TEXT NOT NULL,
    "action" TEXT NOT NULL,
    "status" TEXT NOT NULL,
    "response" JSONB,
    "error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "connector_calls_pkey" PRIMARY KEY ("idempotency_key")
);

-- CreateTable
CREATE TABLE "sandbox_records" (
    "system" TEXT NOT NULL,
    "kind" TEXT NOT NULL,
    "key" TEXT NOT NULL,
    "data" JSONB NOT NULL,
    "version" INTEGER NOT NULL DEFAULT 1,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "sandbox_records_pkey" PRIMARY KEY ("system","kind","key")
);

-- CreateTable
CREATE TABLE "webhook_deliveries" (
    "id" UUID NOT NULL,
    "url" TEXT NOT NULL,
    "event" TEXT NOT NULL,
    "payload" JSONB NOT NULL,
    "status" TEXT NOT NULL,
    "attempts" INTEGER NOT NULL DEFAULT 0,
    "next_attempt_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "last_error" TEXT,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "delivered_at" TIMESTAMPTZ(3),

    CONSTRAINT "webhook_deliveries_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "api_keys_principal_idx" ON "api_keys"("principal");

-- CreateIndex
CREATE INDEX "twins_owner_idx" ON "twins"("owner");

-- CreateIndex
CREATE INDEX "proposals_status_created_at_idx" ON "proposals"("status", "created_at");

-- CreateIndex
CREATE INDEX "proposals_status_expires_at_idx" ON "proposals"("status", "expires_at");

-- CreateIndex
CREATE INDEX "proposals_status_next_attempt_at_idx" ON "proposals"("status", "next_attempt_at");

-- CreateIndex
CREATE UNIQUE INDEX "proposals_twin_id_idempotency_key_key" ON "proposals"("twin_id", "idempotency_key");

-- CreateIndex
CREATE INDEX "proposal_decisions_proposal_id_idx" ON "proposal_decisions"("proposal_id");

-- CreateIndex
CREATE INDEX "webhook_deliveries_status_next_attempt_at_idx" ON "webhook_deliveries"("status", "next_attempt_at");

-- Below: rules the Prisma schema cannot express. Closed unions are enforced by the database too.
ALTER TABLE "twins" ADD CONSTRAINT "twins_mode" CHECK ("mode" IN ('propose', 'approve', 'execute'));
ALTER TABLE "proposals" ADD CONSTRAINT "proposals_status" CHECK ("status" IN (
    'proposed', 'pending_approval', 'approved', 'executing', 'executed', 'failed', 'denied', 'rejected', 'expired', 'cancelled'));
ALTER TABLE "proposals" ADD CONSTRAINT "proposals_audit" CHECK ("audit" IS NULL OR "audit" IN ('pending', 'passed', 'flagged'));
ALTER TABLE "proposal_decisions" ADD CONSTRAINT "proposal_decisions_decision" CHECK ("decision" IN ('approve', 'reject', 'edit', 'comment'));
ALTER TABLE "connector_calls" ADD CONSTRAINT "connector_calls_status" CHECK ("status" IN ('started', 'succeeded', 'failed'));
ALTER TABLE "webhook_deliveries" ADD CONSTRAINT "webhook_deliveries_status" CHECK ("status" IN ('pending', 'delivered', 'failed'));

INSERT INTO "switches" ("name", "engaged", "updated_by") VALUES ('kill', false, 'system');
