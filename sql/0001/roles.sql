-- The read-only role TAP queries run as. Grants of SELECT follow TAP_SCHEMA: the migrations
-- grant exactly the tables and views it publishes (caomai_db/tapschema.py), nothing else.
-- @database@ is replaced by the current database name.
DO $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'caomai_reader') THEN
        CREATE ROLE caomai_reader LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION;
    END IF;
END
$$;

-- Every transaction of the role is read-only: INSERT/UPDATE/DELETE and every CREATE fail
-- even where a grant was given by mistake; statements are cut off after a minute.
ALTER ROLE caomai_reader IN DATABASE "@database@" SET default_transaction_read_only = on;
ALTER ROLE caomai_reader IN DATABASE "@database@" SET statement_timeout = '60s';
ALTER ROLE caomai_reader IN DATABASE "@database@" SET search_path = caomai, public;
-- A generic cached plan would ignore per-query choices of the vector index path.
ALTER ROLE caomai_reader IN DATABASE "@database@" SET plan_cache_mode = force_custom_plan;

REVOKE CREATE ON SCHEMA public FROM caomai_reader;
