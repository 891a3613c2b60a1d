-- steward schema v3 changed only the SQLite schema (the uniqueness of identities'
-- (name, system) became a named index there, as it already is here:
-- identities_name_system_key). Versions stay the same on both backends.
SELECT 1;
