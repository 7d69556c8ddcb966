-- One round trip per journal batch: lock the head, and if it is the head the batch was sealed
-- against, insert the entries and move the head, as separate statements (so the contiguity and
-- head-forward triggers see each other's rows). If another writer moved the head meanwhile,
-- nothing is written and the real head is returned (still locked) for the caller to seal again.
CREATE FUNCTION regent_journal_append(
    p_base_size BIGINT,
    p_base_chain TEXT,
    p_entries JSONB,
    p_size BIGINT,
    p_chain TEXT,
    p_frontier TEXT[]
) RETURNS TABLE (head_size BIGINT, head_chain TEXT, head_frontier TEXT[]) LANGUAGE plpgsql AS $$
DECLARE
    h RECORD;
BEGIN
    SELECT j.size, j.chain, j.frontier INTO h FROM journal_head j WHERE j.id = 1 FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'journal_head row is missing: the database was not migrated by Regent';
    END IF;
    IF h.size <> p_base_size OR h.chain <> p_base_chain THEN
        RETURN QUERY SELECT h.size, h.chain::TEXT, h.frontier;
        RETURN;
    END IF;
    INSERT INTO journal_entries (seq, ts, kind, actor, subject, data, policy_version, leaf, chain)
    SELECT x.seq, x.ts, x.kind, x.actor, x.subject, x.data, x."policyVersion", x.leaf, x.chain
      FROM jsonb_to_recordset(p_entries) AS x(seq BIGINT, ts TIMESTAMPTZ, kind TEXT, actor TEXT, subject TEXT,
                                              data JSONB, "policyVersion" TEXT, leaf TEXT, chain TEXT)
     ORDER BY x.seq;
    UPDATE journal_head SET size = p_size, chain = p_chain, frontier = p_frontier, updated_at = now() WHERE id = 1;
END
$$;
