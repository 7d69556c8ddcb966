-- CreateTable
CREATE TABLE "policy_versions" (
    "version" TEXT NOT NULL,
    "sources" JSONB NOT NULL,
    "summary" JSONB NOT NULL,
    "loaded_by" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "policy_versions_pkey" PRIMARY KEY ("version")
);

-- CreateTable
CREATE TABLE "spend_totals" (
    "delegator" TEXT NOT NULL,
    "period_key" TEXT NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "total_minor" BIGINT NOT NULL,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "spend_totals_pkey" PRIMARY KEY ("delegator","period_key","currency")
);

-- CreateTable
CREATE TABLE "spend_reservations" (
    "id" UUID NOT NULL,
    "ref" TEXT NOT NULL,
    "authority" TEXT NOT NULL,
    "delegator" TEXT NOT NULL,
    "period_key" TEXT NOT NULL,
    "currency" CHAR(3) NOT NULL,
    "amount_minor" BIGINT NOT NULL,
    "status" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "spend_reservations_pkey" PRIMARY KEY ("id")
);

-- CreateIndex
CREATE INDEX "policy_versions_created_at_idx" ON "policy_versions"("created_at");

-- CreateIndex
CREATE INDEX "spend_reservations_ref_idx" ON "spend_reservations"("ref");

-- CreateIndex
CREATE INDEX "spend_reservations_delegator_period_key_currency_idx" ON "spend_reservations"("delegator", "period_key", "currency");

-- Below: rules the Prisma schema cannot express.
ALTER TABLE "spend_reservations"
    ADD CONSTRAINT "spend_reservations_status" CHECK ("status" IN ('reserved', 'committed', 'released')),
    ADD CONSTRAINT "spend_reservations_amount_positive" CHECK ("amount_minor" > 0);
ALTER TABLE "spend_totals" ADD CONSTRAINT "spend_totals_not_negative" CHECK ("total_minor" >= 0);

-- A recorded policy version is evidence: it never changes.
CREATE TRIGGER "policy_versions_append_only"
    BEFORE UPDATE OR DELETE ON "policy_versions"
    FOR EACH ROW EXECUTE FUNCTION regent_refuse_journal_change();
