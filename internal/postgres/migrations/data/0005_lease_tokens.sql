-- Fencing tokens: each lease counts its holders. A take-over, or an
-- acquisition after a release, increments token; a renewal keeps it. A
-- release keeps the row (no holder, expired), so the next holder's token
-- is still greater than every earlier one. Writes made under a lease
-- carry its token and are refused once the row's token has moved on.
ALTER TABLE leases ADD COLUMN token bigint NOT NULL DEFAULT 1;
