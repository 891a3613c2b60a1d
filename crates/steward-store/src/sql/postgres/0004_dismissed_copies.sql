-- steward schema v4 (PostgreSQL): a copy of a secret can be dismissed (`credential locate
-- --dismiss`): it is still where it was (a revoked secret in git history, which rewriting
-- would cost more than it is worth), the risk is accepted, and it no longer counts, nor do
-- scans that find it again bring it back. A dismissed copy is also removed (removed_at).
ALTER TABLE locations ADD COLUMN dismissed BOOLEAN NOT NULL DEFAULT false;
