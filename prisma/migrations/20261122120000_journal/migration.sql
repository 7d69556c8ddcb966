-- CreateTable
CREATE TABLE "journal_entries" (
    "seq" BIGINT NOT NULL,
    "ts" TIMESTAMPTZ(3) NOT NULL,
    "kind" TEXT NOT NULL,
    "actor" TEXT NOT NULL,
    "subject" TEXT,
    "data" JSONB NOT NULL,
    "policy_version" TEXT,
    "leaf" CHAR(64) NOT NULL,
    "chain" CHAR(64) NOT NULL,

    CONSTRAINT "journal_entries_pkey" PRIMARY KEY ("seq")
);

-- CreateTable
CREATE TABLE "journal_head" (
    "id" INTEGER NOT NULL,
    "size" BIGINT NOT NULL,
    "chain" CHAR(64) NOT NULL,
    "frontier" TEXT[],
    "updated_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "journal_head_pkey" PRIMARY KEY ("id")
);

-- CreateTable
CREATE TABLE "journal_checkpoints" (
    "size" BIGINT NOT NULL,
    "root" CHAR(64) NOT NULL,
    "note" TEXT NOT NULL,
    "created_at" TIMESTAMPTZ(3) NOT NULL DEFAULT CURRENT_TIMESTAMP,

    CONSTRAINT "journal_checkpoints_pkey" PRIMARY KEY ("size")
);

-- CreateIndex
CREATE INDEX "journal_entries_kind_seq_idx" ON "journal_entries"("kind", "seq");

-- CreateIndex
CREATE INDEX "journal_entries_actor_seq_idx" ON "journal_entries"("actor", "seq");

-- CreateIndex
CREATE INDEX "journal_entries_subject_seq_idx" ON "journal_entries"("subject", "seq");

-- CreateIndex
CREATE INDEX "journal_entries_ts_idx" ON "journal_entries"("ts");

-- Below: rules the Prisma schema cannot express. The database itself keeps the journal
-- append-only and gap-free, whoever connects to it.

ALTER TABLE "journal_entries" ADD CONSTRAINT "journal_entries_seq_positive" CHECK ("seq" > 0);

CREATE FUNCTION regent_refuse_journal_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only: % on % is refused', TG_OP, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege';
END
$$;

CREATE TRIGGER "journal_entries_append_only"
    BEFORE UPDATE OR DELETE ON "journal_entries"
    FOR EACH ROW EXECUTE FUNCTION regent_refuse_journal_change();

CREATE TRIGGER "journal_entries_no_truncate"
    BEFORE TRUNCATE ON "journal_entries"
    FOR EACH STATEMENT EXECUTE FUNCTION regent_refuse_journal_change();

CREATE TRIGGER "journal_checkpoints_append_only"
    BEFORE UPDATE OR DELETE ON "journal_checkpoints"
    FOR EACH ROW EXECUTE FUNCTION regent_refuse_journal_change();

CREATE TRIGGER "journal_checkpoints_no_truncate"
    BEFORE TRUNCATE ON "journal_checkpoints"
    FOR EACH STATEMENT EXECUTE FUNCTION regent_refuse_journal_change();

-- seq runs 1, 2, 3, ... : the rows past the head must continue it without a hole. Checked once
-- per insert statement (appends are batched), through the primary key index.
CREATE FUNCTION regent_journal_contiguous() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    base BIGINT;
    lo BIGINT;
    hi BIGINT;
    n BIGINT;
BEGIN
    SELECT size INTO base FROM journal_head WHERE id = 1;
    SELECT min(seq), max(seq), count(*) INTO lo, hi, n FROM journal_entries WHERE seq > base;
    IF n > 0 AND (lo <> base + 1 OR hi - lo + 1 <> n) THEN
        RAISE EXCEPTION 'journal seq % to % would leave a gap after %', lo, hi, base
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NULL;
END
$$;

CREATE TRIGGER "journal_entries_contiguous"
    AFTER INSERT ON "journal_entries"
    FOR EACH STATEMENT EXECUTE FUNCTION regent_journal_contiguous();

-- The head only moves forward, is never removed, and always names the last entry.
CREATE FUNCTION regent_journal_head_forward() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP <> 'UPDATE' OR NEW.size < OLD.size OR NEW.id <> OLD.id THEN
        RAISE EXCEPTION 'the journal head only moves forward: % refused', TG_OP
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF EXISTS (SELECT 1 FROM journal_entries WHERE seq > NEW.size)
       OR (NEW.size > 0 AND NOT EXISTS (SELECT 1 FROM journal_entries WHERE seq = NEW.size)) THEN
        RAISE EXCEPTION 'the journal head (size %) must name the last entry', NEW.size
            USING ERRCODE = 'integrity_constraint_violation';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER "journal_head_forward"
    BEFORE UPDATE OR DELETE ON "journal_head"
    FOR EACH ROW EXECUTE FUNCTION regent_journal_head_forward();

CREATE TRIGGER "journal_head_no_truncate"
    BEFORE TRUNCATE ON "journal_head"
    FOR EACH STATEMENT EXECUTE FUNCTION regent_refuse_journal_change();

INSERT INTO "journal_head" ("id", "size", "chain", "frontier")
VALUES (1, 0, repeat('0', 64), '{}');
