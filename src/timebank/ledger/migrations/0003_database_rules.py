"""The ledger's rules, kept by the database itself.

PostgreSQL:
- postings, transactions, blocks, block entries and signing keys are append-only (UPDATE, DELETE and TRUNCATE
  refused; TRUNCATE only in Django's test databases, named test_*, when the test settings ask, so the test
  runner can empty them; no session setting turns the refusal off anywhere else);
- a posting updates its account's balance in the same statement and records the balance after it, so a
  stored balance always equals the sum of its postings; the account's CHECK constraints refuse overdraft
  and amounts over the cap; a closed account or one of another currency area is refused;
- an account's balance and held minutes change only through postings and holds;
- every transaction has two or more postings summing to zero (a deferred constraint trigger, checked at
  commit);
- ``ledger_post`` posts a whole transaction in one round trip, idempotently; ``ledger_hold_*`` place,
  capture and release holds.

SQLite: append-only triggers; the other rules are kept in Python (``timebank.ledger.engine``) and checked by
``timebank ledger verify``.
"""

from django.db import migrations

APPEND_ONLY_TABLES = [
    "ledger_transaction",
    "ledger_posting",
    "ledger_block",
    "ledger_blockentry",
    "ledger_signingkey",
]

PG_UP = r"""
CREATE OR REPLACE FUNCTION ledger_refuse_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'TRUNCATE' AND current_database() LIKE 'test\_%'
            AND current_setting('timebank.allow_truncate', true) = 'on' THEN
        RETURN NULL;  -- Django's test databases (test_*) are emptied between transactional tests
    END IF;
    RAISE EXCEPTION USING MESSAGE = 'ledger_append_only',
        DETAIL = format('%s on %s refused: the ledger is append-only', TG_OP, TG_TABLE_NAME);
END $$;

CREATE OR REPLACE FUNCTION ledger_in_batch() RETURNS boolean LANGUAGE plpgsql AS $$
-- True only when the outermost frame of the call stack is ledger_post_batch itself: a session setting, which
-- anyone can set, is not enough to skip a check, and text in a statement cannot end the stack with that frame
-- (the function runs with a fixed search_path and makes its own temporary tables, so no code of a caller's
-- runs inside it).
DECLARE
    v_stack text;
BEGIN
    GET DIAGNOSTICS v_stack = PG_CONTEXT;
    -- the last line of the stack, compared without a regular expression (this runs for every batch row)
    RETURN split_part(v_stack, E'\n', -1)
        LIKE 'PL/pgSQL function ledger\_post\_batch(text[],text[],text[],text[],bigint[],text[],text[],text[],'
             'bigint[],integer[],bigint[],bigint[]) line % at SQL statement';
END $$;

CREATE OR REPLACE FUNCTION ledger_account_guard() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        IF NEW.balance <> 0 OR NEW.held <> 0 OR NEW.entries <> 0 THEN
            RAISE EXCEPTION USING MESSAGE = 'ledger_append_only',
                DETAIL = 'an account opens empty; minutes arrive only by postings';
        END IF;
        RETURN NEW;
    END IF;
    IF (NEW.balance <> OLD.balance OR NEW.held <> OLD.held OR NEW.entries <> OLD.entries)
            AND pg_trigger_depth() < 2
            AND NOT (current_setting('timebank.ledger_batch', true) = 'on' AND ledger_in_batch()) THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_append_only',
            DETAIL = format('account %s: balance and held minutes change only through postings and holds', OLD.id);
    END IF;
    IF NEW.kind <> OLD.kind OR NEW.area <> OLD.area THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_append_only',
            DETAIL = format('account %s: kind and currency area never change', OLD.id);
    END IF;
    RETURN NEW;
END $$;

CREATE TRIGGER ledger_account_guard BEFORE INSERT OR UPDATE ON ledger_account
    FOR EACH ROW EXECUTE FUNCTION ledger_account_guard();

CREATE OR REPLACE FUNCTION ledger_posting_apply() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_kind text;
    v_area text;
    v_balance bigint;
    v_seq bigint;
    v_account_area text;
    v_status text;
    v_created timestamptz;
BEGIN
    IF current_setting('timebank.ledger_batch', true) = 'on' AND ledger_in_batch() THEN
        RETURN NEW;  -- ledger_post_batch computed and checked this posting's balance and number itself
    END IF;
    SELECT kind, area, created_at INTO v_kind, v_area, v_created FROM ledger_transaction WHERE id = NEW.transaction_id;
    IF v_created IS DISTINCT FROM now() THEN
        -- A transaction's postings are written with it, in the same database transaction; never added later.
        RAISE EXCEPTION USING MESSAGE = 'ledger_append_only',
            DETAIL = format('transaction %s was written earlier; its postings cannot change', NEW.transaction_id);
    END IF;
    UPDATE ledger_account SET balance = balance + NEW.amount, entries = entries + 1 WHERE id = NEW.account_id
        RETURNING balance, entries, area, status INTO v_balance, v_seq, v_account_area, v_status;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_account_not_found', DETAIL = format('account=%s', NEW.account_id);
    END IF;
    IF v_status <> 'open' THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_account_closed', DETAIL = format('account=%s', NEW.account_id);
    END IF;
    IF v_account_area <> v_area AND v_kind <> 'clearing' THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_area_mismatch',
            DETAIL = format('account=%s area=%s transaction area=%s', NEW.account_id, v_account_area, v_area);
    END IF;
    NEW.balance_after := v_balance;
    NEW.account_seq := v_seq;
    RETURN NEW;
END $$;

CREATE TRIGGER ledger_posting_apply BEFORE INSERT ON ledger_posting
    FOR EACH ROW EXECUTE FUNCTION ledger_posting_apply();

CREATE OR REPLACE FUNCTION ledger_check_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    v_txn bigint;
    v_sum numeric;
    v_count int;
BEGIN
    IF TG_TABLE_NAME = 'ledger_transaction' THEN
        v_txn := NEW.id;
    ELSE
        v_txn := NEW.transaction_id;
    END IF;
    SELECT coalesce(sum(amount), 0), count(*) INTO v_sum, v_count FROM ledger_posting WHERE transaction_id = v_txn;
    IF v_sum <> 0 OR v_count < 2 THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_unbalanced', ERRCODE = 'check_violation',
            CONSTRAINT = 'ledger_transaction_balanced',
            DETAIL = format('transaction=%s sum=%s postings=%s', v_txn, v_sum, v_count);
    END IF;
    IF TG_TABLE_NAME = 'ledger_transaction' THEN  -- (NEW has no kind on a posting: test the table first)
        IF NEW.kind = 'reversal' OR NEW.reverses_id IS NOT NULL THEN
            -- A reversal names its original, which is not itself a reversal, and negates every posting of it.
            IF NEW.kind <> 'reversal' OR NEW.reverses_id IS NULL THEN
                RAISE EXCEPTION USING MESSAGE = 'ledger_unbalanced',
                    DETAIL = format('transaction=%s: a reversal, and only a reversal, names the original', v_txn);
            END IF;
            IF (SELECT kind FROM ledger_transaction WHERE id = NEW.reverses_id) = 'reversal' THEN
                RAISE EXCEPTION USING MESSAGE = 'ledger_reversal_of_reversal', DETAIL = format('transaction=%s', v_txn);
            END IF;
            IF EXISTS (
                SELECT 1
                FROM (SELECT account_id, -amount AS amount FROM ledger_posting WHERE transaction_id = NEW.reverses_id) o
                FULL JOIN (SELECT account_id, amount FROM ledger_posting WHERE transaction_id = v_txn) n USING (account_id)
                WHERE o.amount IS DISTINCT FROM n.amount
            ) THEN
                RAISE EXCEPTION USING MESSAGE = 'ledger_unbalanced',
                    DETAIL = format('transaction=%s does not negate every posting of %s', v_txn, NEW.reverses_id);
            END IF;
        END IF;
    END IF;
    RETURN NULL;
END $$;

-- ledger_post_batch checks its own sums before it inserts; its rows are not queued again.
CREATE CONSTRAINT TRIGGER ledger_transaction_balanced AFTER INSERT ON ledger_transaction
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (current_setting('timebank.ledger_batch', true) IS DISTINCT FROM 'on' OR NOT ledger_in_batch())
    EXECUTE FUNCTION ledger_check_balanced();
CREATE CONSTRAINT TRIGGER ledger_posting_balanced AFTER INSERT ON ledger_posting
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW
    WHEN (current_setting('timebank.ledger_batch', true) IS DISTINCT FROM 'on' OR NOT ledger_in_batch())
    EXECUTE FUNCTION ledger_check_balanced();

CREATE OR REPLACE FUNCTION ledger_hold_check() RETURNS trigger LANGUAGE plpgsql AS $$
-- BEFORE: refuse what a hold may never do. No side effects here: an INSERT … ON CONFLICT DO NOTHING runs
-- BEFORE triggers even for the row it then skips.
BEGIN
    IF TG_OP = 'DELETE' THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_append_only', DETAIL = 'holds are released, never deleted';
    END IF;
    IF TG_OP = 'INSERT' THEN
        IF NEW.status <> 'pending' THEN
            RAISE EXCEPTION USING MESSAGE = 'ledger_hold_not_pending', DETAIL = 'a hold starts pending';
        END IF;
        RETURN NEW;
    END IF;
    IF NEW.account_id <> OLD.account_id OR NEW.amount <> OLD.amount OR NEW.idempotency_key <> OLD.idempotency_key THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_append_only', DETAIL = format('hold %s: only its status changes', OLD.id);
    END IF;
    IF OLD.status = 'captured' AND NEW.status = 'captured' AND OLD.capture_id IS NULL THEN
        RETURN NEW;  -- the capture's transaction is recorded right after the capture
    END IF;
    IF OLD.status <> 'pending' THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_hold_not_pending', DETAIL = format('hold=%s', OLD.id);
    END IF;
    RETURN NEW;
END $$;

CREATE OR REPLACE FUNCTION ledger_hold_apply() RETURNS trigger LANGUAGE plpgsql AS $$
-- AFTER: a new pending hold reserves its minutes; a hold leaving pending frees them.
BEGIN
    IF TG_OP = 'INSERT' THEN
        UPDATE ledger_account SET held = held + NEW.amount WHERE id = NEW.account_id AND status = 'open';
        IF NOT FOUND THEN
            RAISE EXCEPTION USING MESSAGE = 'ledger_account_closed', DETAIL = format('account=%s', NEW.account_id);
        END IF;
    ELSIF OLD.status = 'pending' AND NEW.status <> 'pending' THEN
        UPDATE ledger_account SET held = held - OLD.amount WHERE id = OLD.account_id;
    END IF;
    RETURN NULL;
END $$;

CREATE TRIGGER ledger_hold_check BEFORE INSERT OR UPDATE OR DELETE ON ledger_hold
    FOR EACH ROW EXECUTE FUNCTION ledger_hold_check();
CREATE TRIGGER ledger_hold_apply AFTER INSERT OR UPDATE ON ledger_hold
    FOR EACH ROW EXECUTE FUNCTION ledger_hold_apply();

CREATE OR REPLACE FUNCTION ledger_replay(p_key text, p_hash text) RETURNS bigint LANGUAGE plpgsql AS $$
-- The transaction an earlier request with this idempotency key made, as minus its id (NULL if none);
-- refused if that request was a different one.
DECLARE
    v_id bigint;
    v_hash text;
BEGIN
    SELECT id, request_hash INTO v_id, v_hash FROM ledger_transaction WHERE idempotency_key = p_key;
    IF v_id IS NOT NULL AND v_hash <> p_hash THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_idempotency_conflict', DETAIL = format('transaction=%s', v_id);
    END IF;
    RETURN -v_id;
END $$;

CREATE OR REPLACE FUNCTION ledger_post(
    p_key text, p_hash text, p_kind text, p_memo text, p_actor bigint, p_subject text,
    p_ref_type text, p_ref_id text, p_policy bigint, p_reverses bigint,
    p_accounts bigint[], p_amounts bigint[]
) RETURNS bigint LANGUAGE plpgsql AS $$
-- Posts one transaction; returns its id, or minus the id of the transaction an earlier request with the
-- same idempotency key made (after checking the request is the same).
DECLARE
    v_id bigint;
    v_area text;
    v_original_kind text;
BEGIN
    IF coalesce(array_length(p_accounts, 1), 0) < 2 OR array_length(p_accounts, 1) <> array_length(p_amounts, 1) THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_unbalanced', DETAIL = 'two or more postings are needed';
    END IF;
    IF (p_kind = 'reversal') <> (p_reverses IS NOT NULL) THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_unbalanced', DETAIL = 'a reversal, and only a reversal, names the original';
    END IF;
    -- Lock the accounts first, in id order: concurrent postings never deadlock, and transaction ids follow the
    -- order of each account's entries.
    PERFORM 1 FROM ledger_account WHERE id = ANY(p_accounts) ORDER BY id FOR UPDATE;
    SELECT area INTO v_area FROM ledger_account WHERE id = p_accounts[1];
    IF v_area IS NULL THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_account_not_found', DETAIL = format('account=%s', p_accounts[1]);
    END IF;
    INSERT INTO ledger_transaction (kind, memo, actor_id, subject, ref_type, ref_id, policy_id, area,
                                    idempotency_key, request_hash, reverses_id, created_at)
    VALUES (p_kind, p_memo, p_actor, p_subject, p_ref_type, p_ref_id, p_policy, v_area,
            p_key, p_hash, p_reverses, now())
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        RETURN ledger_replay(p_key, p_hash);
    END IF;
    IF p_reverses IS NOT NULL THEN
        SELECT kind INTO v_original_kind FROM ledger_transaction WHERE id = p_reverses;
        IF v_original_kind = 'reversal' THEN
            RAISE EXCEPTION USING MESSAGE = 'ledger_reversal_of_reversal', DETAIL = format('transaction=%s', p_reverses);
        END IF;
        IF EXISTS (
            SELECT 1
            FROM (SELECT account_id, -amount AS amount FROM ledger_posting WHERE transaction_id = p_reverses) o
            FULL JOIN unnest(p_accounts, p_amounts) AS n(account_id, amount) USING (account_id)
            WHERE o.amount IS DISTINCT FROM n.amount
        ) THEN
            RAISE EXCEPTION USING MESSAGE = 'ledger_unbalanced',
                DETAIL = format('a reversal negates every posting of transaction %s exactly', p_reverses);
        END IF;
    END IF;
    -- Accounts are updated in id order, so concurrent postings never deadlock.
    INSERT INTO ledger_posting (transaction_id, account_id, amount, account_seq, balance_after)
    SELECT v_id, t.a, t.m, 0, 0 FROM unnest(p_accounts, p_amounts) AS t(a, m) ORDER BY t.a;
    RETURN v_id;
END $$;

CREATE OR REPLACE FUNCTION ledger_post_batch(
    p_keys text[], p_hashes text[], p_kinds text[], p_memos text[], p_actors bigint[], p_subjects text[],
    p_ref_types text[], p_ref_ids text[], p_policies bigint[],
    p_leg_txn int[], p_leg_accounts bigint[], p_leg_amounts bigint[]
) RETURNS bigint[] LANGUAGE plpgsql SET search_path = pg_catalog, public AS $$
-- Posts many transactions at once, all or nothing, set-based: each account is locked and updated once,
-- however many postings it gets. Returns the ids in request order (minus the id for a request already
-- posted under its idempotency key). The same rules as ledger_post, checked for every intermediate balance.
DECLARE
    v_n int := coalesce(array_length(p_keys, 1), 0);
    v_new int;
    v_inserted int;
    v_problem text;
    v_detail text;
    v_ids bigint[];
BEGIN
    IF v_n = 0 THEN
        RETURN ARRAY[]::bigint[];
    END IF;
    DROP TABLE IF EXISTS pg_temp.ledger_batch_txns, pg_temp.ledger_batch_legs;  -- ours, with no caller's triggers
    CREATE TEMP TABLE ledger_batch_txns (
        i int PRIMARY KEY, key text, hash text, kind text, memo text, actor bigint, subject text, ref_type text,
        ref_id text, policy bigint, area text, id bigint, existing bigint, existing_hash text
    ) ON COMMIT DROP;
    CREATE TEMP TABLE ledger_batch_legs (
        t int, o int, account bigint, amount bigint, area text, seq bigint, balance_after bigint, violation text
    ) ON COMMIT DROP;
    INSERT INTO ledger_batch_txns (i, key, hash, kind, memo, actor, subject, ref_type, ref_id, policy)
    SELECT q.i, q.key, q.hash, q.kind, q.memo, q.actor, q.subject, q.ref_type, q.ref_id, q.policy
      FROM unnest(p_keys, p_hashes, p_kinds, p_memos, p_actors, p_subjects, p_ref_types, p_ref_ids, p_policies)
           WITH ORDINALITY AS q(key, hash, kind, memo, actor, subject, ref_type, ref_id, policy, i);
    INSERT INTO ledger_batch_legs (t, o, account, amount)
    SELECT l.t, l.o, l.account, l.amount
      FROM unnest(p_leg_txn, p_leg_accounts, p_leg_amounts) WITH ORDINALITY AS l(t, account, amount, o);
    ANALYZE ledger_batch_txns;  -- temporary tables have no statistics; without them every join is a nested loop
    ANALYZE ledger_batch_legs;

    IF (SELECT count(DISTINCT t) FROM ledger_batch_legs) <> v_n
       OR EXISTS (SELECT 1 FROM ledger_batch_legs GROUP BY t HAVING count(*) < 2 OR sum(amount) <> 0
                  OR bool_or(amount = 0) OR count(DISTINCT account) <> count(*)) THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_unbalanced',
            DETAIL = 'every transaction needs two or more non-zero postings on distinct accounts summing to zero';
    END IF;
    IF 'reversal' = ANY(p_kinds) THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_unbalanced', DETAIL = 'reversals are posted one by one';
    END IF;

    PERFORM 1 FROM ledger_account WHERE id IN (SELECT DISTINCT account FROM ledger_batch_legs) ORDER BY id FOR UPDATE;
    UPDATE ledger_batch_legs l SET area = a.area FROM ledger_account a WHERE a.id = l.account;
    UPDATE ledger_batch_txns b SET area = coalesce(f.area, ''), id = nextval('ledger_transaction_id_seq')
      FROM (SELECT DISTINCT ON (t) t, area FROM ledger_batch_legs ORDER BY t, o) f WHERE f.t = b.i;

    PERFORM set_config('timebank.ledger_batch', 'on', true);
    BEGIN
        -- The usual case: every request is new.
        INSERT INTO ledger_transaction (id, kind, memo, actor_id, subject, ref_type, ref_id, policy_id, area,
                                        idempotency_key, request_hash, reverses_id, created_at)
        SELECT id, kind, memo, actor, subject, ref_type, ref_id, policy, area, key, hash, NULL, now()
          FROM ledger_batch_txns ORDER BY i;
    EXCEPTION WHEN unique_violation THEN
        -- Some were posted before under their key: the same request returns the first result, another is
        -- refused. (= ANY probes the unique index once per key instead of scanning the whole table.)
        UPDATE ledger_batch_txns b SET existing = t.id, existing_hash = t.request_hash
          FROM (SELECT id, idempotency_key, request_hash FROM ledger_transaction
                 WHERE idempotency_key = ANY(p_keys)) t
         WHERE t.idempotency_key = b.key;
        SELECT format('transaction=%s', existing) INTO v_detail
          FROM ledger_batch_txns WHERE existing IS NOT NULL AND existing_hash <> hash LIMIT 1;
        IF v_detail IS NOT NULL THEN
            RAISE EXCEPTION USING MESSAGE = 'ledger_idempotency_conflict', DETAIL = v_detail;
        END IF;
        SELECT count(*) INTO v_new FROM ledger_batch_txns WHERE existing IS NULL;
        INSERT INTO ledger_transaction (id, kind, memo, actor_id, subject, ref_type, ref_id, policy_id, area,
                                        idempotency_key, request_hash, reverses_id, created_at)
        SELECT id, kind, memo, actor, subject, ref_type, ref_id, policy, area, key, hash, NULL, now()
          FROM ledger_batch_txns WHERE existing IS NULL ORDER BY i
        ON CONFLICT (idempotency_key) DO NOTHING;
        GET DIAGNOSTICS v_inserted = ROW_COUNT;
        IF v_inserted <> v_new THEN  -- a concurrent request took one of these keys just now: try again
            RAISE EXCEPTION USING MESSAGE = 'ledger_retry', ERRCODE = 'serialization_failure',
                DETAIL = 'an idempotency key was posted concurrently';
        END IF;
        DELETE FROM ledger_batch_legs l USING ledger_batch_txns b WHERE b.i = l.t AND b.existing IS NOT NULL;
    END;

    SELECT CASE WHEN a.id IS NULL THEN 'ledger_account_not_found'
                WHEN a.status <> 'open' THEN 'ledger_account_closed'
                ELSE 'ledger_area_mismatch' END,
           format('account=%s', l.account)
      INTO v_problem, v_detail
      FROM ledger_batch_legs l
      JOIN ledger_batch_txns b ON b.i = l.t
      LEFT JOIN ledger_account a ON a.id = l.account
     WHERE a.id IS NULL OR a.status <> 'open' OR (l.area <> b.area AND b.kind <> 'clearing')
     LIMIT 1;
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = v_problem, DETAIL = v_detail;
    END IF;

    -- Every running balance of every account, in request order: none below its floor, none above its cap.
    UPDATE ledger_batch_legs l
       SET seq = r.seq, balance_after = r.balance_after,
           violation = CASE WHEN r.floor IS NOT NULL AND r.balance_after - r.held < r.floor
                                 THEN 'ledger_insufficient_funds'
                            WHEN r.cap IS NOT NULL AND r.balance_after > r.cap THEN 'ledger_over_cap' END
      FROM (
          SELECT x.t, x.account, a.floor, a.cap, a.held,
                 a.entries + row_number() OVER w AS seq, a.balance + sum(x.amount) OVER w AS balance_after
            FROM ledger_batch_legs x JOIN ledger_account a ON a.id = x.account
          WINDOW w AS (PARTITION BY x.account ORDER BY x.t ROWS UNBOUNDED PRECEDING)
      ) r
     WHERE r.t = l.t AND r.account = l.account;
    SELECT violation, format('account=%s', account) INTO v_problem, v_detail
      FROM ledger_batch_legs WHERE violation IS NOT NULL ORDER BY t, account LIMIT 1;
    IF v_problem IS NOT NULL THEN
        RAISE EXCEPTION USING MESSAGE = v_problem, DETAIL = v_detail;
    END IF;

    INSERT INTO ledger_posting (transaction_id, account_id, amount, account_seq, balance_after)
    SELECT b.id, l.account, l.amount, l.seq, l.balance_after
      FROM ledger_batch_legs l JOIN ledger_batch_txns b ON b.i = l.t
     ORDER BY l.t, l.account;
    UPDATE ledger_account a SET balance = f.balance_after, entries = f.seq
      FROM (SELECT DISTINCT ON (account) account, seq, balance_after FROM ledger_batch_legs
             ORDER BY account, seq DESC) f
     WHERE a.id = f.account;
    PERFORM set_config('timebank.ledger_batch', 'off', true);

    SELECT array_agg(coalesce(-existing, id) ORDER BY i) INTO v_ids FROM ledger_batch_txns;
    RETURN v_ids;
END $$;

CREATE OR REPLACE FUNCTION ledger_hold_place(
    p_key text, p_hash text, p_account bigint, p_amount bigint, p_memo text, p_ref_type text, p_ref_id text,
    p_expires timestamptz
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_id bigint;
    v_hash text;
BEGIN
    INSERT INTO ledger_hold (account_id, amount, status, memo, ref_type, ref_id, idempotency_key, request_hash,
                             created_at, expires_at)
    VALUES (p_account, p_amount, 'pending', p_memo, p_ref_type, p_ref_id, p_key, p_hash, now(), p_expires)
    ON CONFLICT (idempotency_key) DO NOTHING
    RETURNING id INTO v_id;
    IF v_id IS NULL THEN
        SELECT id, request_hash INTO v_id, v_hash FROM ledger_hold WHERE idempotency_key = p_key;
        IF v_hash <> p_hash THEN
            RAISE EXCEPTION USING MESSAGE = 'ledger_idempotency_conflict', DETAIL = format('hold=%s', v_id);
        END IF;
        RETURN -v_id;
    END IF;
    RETURN v_id;
END $$;

CREATE OR REPLACE FUNCTION ledger_hold_capture(
    p_hold bigint, p_key text, p_hash text, p_kind text, p_memo text, p_actor bigint, p_subject text,
    p_ref_type text, p_ref_id text, p_policy bigint, p_accounts bigint[], p_amounts bigint[]
) RETURNS bigint LANGUAGE plpgsql AS $$
DECLARE
    v_hold ledger_hold%ROWTYPE;
    v_id bigint;
    v_taken bigint;
BEGIN
    v_id := ledger_replay(p_key, p_hash);
    IF v_id IS NOT NULL THEN
        RETURN v_id;
    END IF;
    SELECT * INTO v_hold FROM ledger_hold WHERE id = p_hold FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_transaction_not_found', DETAIL = format('hold=%s', p_hold);
    END IF;
    -- A retry that waited for the lock behind its own first attempt finds that attempt's result now.
    v_id := ledger_replay(p_key, p_hash);
    IF v_id IS NOT NULL THEN
        RETURN v_id;
    END IF;
    IF v_hold.status <> 'pending' THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_hold_not_pending', DETAIL = format('hold=%s', p_hold);
    END IF;
    SELECT -t.m INTO v_taken FROM unnest(p_accounts, p_amounts) AS t(a, m) WHERE t.a = v_hold.account_id;
    IF v_taken IS NULL OR v_taken <= 0 OR v_taken > v_hold.amount THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_hold_exceeded',
            DETAIL = format('hold=%s reserved=%s taken=%s', p_hold, v_hold.amount, v_taken);
    END IF;
    PERFORM 1 FROM ledger_account WHERE id = ANY(p_accounts) ORDER BY id FOR UPDATE;
    UPDATE ledger_hold SET status = 'captured', closed_at = now() WHERE id = p_hold;
    v_id := ledger_post(p_key, p_hash, p_kind, p_memo, p_actor, p_subject, p_ref_type, p_ref_id, p_policy, NULL,
                        p_accounts, p_amounts);
    UPDATE ledger_hold SET capture_id = v_id WHERE id = p_hold;
    RETURN v_id;
END $$;

CREATE OR REPLACE FUNCTION ledger_hold_release(p_hold bigint) RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    v_status text;
BEGIN
    UPDATE ledger_hold SET status = 'released', closed_at = now() WHERE id = p_hold AND status = 'pending';
    IF FOUND THEN
        RETURN 'released';
    END IF;
    SELECT status INTO v_status FROM ledger_hold WHERE id = p_hold;
    IF v_status IS NULL THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_transaction_not_found', DETAIL = format('hold=%s', p_hold);
    END IF;
    IF v_status = 'captured' THEN
        RAISE EXCEPTION USING MESSAGE = 'ledger_hold_not_pending', DETAIL = format('hold=%s', p_hold);
    END IF;
    RETURN v_status;  -- released already: releasing again changes nothing
END $$;
"""

PG_APPEND_ONLY = """
CREATE TRIGGER {table}_append_only BEFORE UPDATE OR DELETE ON {table}
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER {table}_no_truncate BEFORE TRUNCATE ON {table}
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
"""

PG_DOWN = """
DROP FUNCTION IF EXISTS ledger_post_batch(text[], text[], text[], text[], bigint[], text[], text[], text[], bigint[],
                                          int[], bigint[], bigint[]);
DROP FUNCTION IF EXISTS ledger_hold_release(bigint);
DROP FUNCTION IF EXISTS ledger_hold_capture(bigint, text, text, text, text, bigint, text, text, text, bigint,
                                            bigint[], bigint[]);
DROP FUNCTION IF EXISTS ledger_hold_place(text, text, bigint, bigint, text, text, text, timestamptz);
DROP FUNCTION IF EXISTS ledger_post(text, text, text, text, bigint, text, text, text, bigint, bigint,
                                    bigint[], bigint[]);
DROP FUNCTION IF EXISTS ledger_replay(text, text);
DROP TRIGGER IF EXISTS ledger_hold_apply ON ledger_hold;
DROP TRIGGER IF EXISTS ledger_hold_check ON ledger_hold;
DROP FUNCTION IF EXISTS ledger_hold_apply();
DROP FUNCTION IF EXISTS ledger_hold_check();
DROP TRIGGER IF EXISTS ledger_posting_balanced ON ledger_posting;
DROP TRIGGER IF EXISTS ledger_transaction_balanced ON ledger_transaction;
DROP FUNCTION IF EXISTS ledger_check_balanced();
DROP TRIGGER IF EXISTS ledger_posting_apply ON ledger_posting;
DROP FUNCTION IF EXISTS ledger_posting_apply();
DROP TRIGGER IF EXISTS ledger_account_guard ON ledger_account;
DROP FUNCTION IF EXISTS ledger_account_guard();
DROP FUNCTION IF EXISTS ledger_in_batch();
"""

SQLITE_APPEND_ONLY = [
    "CREATE TRIGGER {table}_no_update BEFORE UPDATE ON {table} "
    "BEGIN SELECT RAISE(ABORT, 'ledger_append_only: UPDATE on {table} refused'); END;",
    "CREATE TRIGGER {table}_no_delete BEFORE DELETE ON {table} "
    "BEGIN SELECT RAISE(ABORT, 'ledger_append_only: DELETE on {table} refused'); END;",
]


def forwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        schema_editor.execute(PG_UP, params=None)
        for table in APPEND_ONLY_TABLES:
            schema_editor.execute(PG_APPEND_ONLY.format(table=table), params=None)
    elif vendor == "sqlite":
        for table in APPEND_ONLY_TABLES:
            for statement in SQLITE_APPEND_ONLY:
                schema_editor.execute(statement.format(table=table))


def backwards(apps, schema_editor):
    vendor = schema_editor.connection.vendor
    if vendor == "postgresql":
        for table in APPEND_ONLY_TABLES:
            schema_editor.execute(
                f"DROP TRIGGER IF EXISTS {table}_append_only ON {table};"
                f"DROP TRIGGER IF EXISTS {table}_no_truncate ON {table};",
                params=None,
            )
        schema_editor.execute(PG_DOWN + "DROP FUNCTION IF EXISTS ledger_refuse_change();", params=None)
    elif vendor == "sqlite":
        for table in APPEND_ONLY_TABLES:
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_update;")
            schema_editor.execute(f"DROP TRIGGER IF EXISTS {table}_no_delete;")


class Migration(migrations.Migration):
    dependencies = [("ledger", "0002_initial")]
    operations = [migrations.RunPython(forwards, backwards)]
