-- sessions: signed-in browsers of the console and the privacy center, and
-- the privacy center's one-time sign-in links, so that every node serves
-- a session started on another and a sign-out on one ends it on all. A
-- session is named by the SHA-256 of its token (the token is never
-- stored); sealed is opened only with a key derived from the token.
-- Times are nanoseconds since 1970, judged by the caller's clock; the
-- expiry sweep reads sessions_expiry.
CREATE TABLE sessions (
	tenant_id  bytea  NOT NULL,
	kind       text   COLLATE "C" NOT NULL,
	hash       bytea  NOT NULL,
	holder     text   COLLATE "C" NOT NULL,
	user_name  text   NOT NULL,
	how        text   NOT NULL,
	ip         text   NOT NULL,
	agent      text   NOT NULL,
	created_at bigint NOT NULL,
	expires_at bigint NOT NULL,
	sealed     bytea,
	PRIMARY KEY (tenant_id, kind, hash)
);
CREATE INDEX sessions_holder ON sessions (tenant_id, kind, holder);
CREATE INDEX sessions_expiry ON sessions (expires_at);

-- totp_steps: the last TOTP step each console user signed in with, so
-- that a code works once on any node.
CREATE TABLE totp_steps (
	tenant_id bytea  NOT NULL,
	user_name text   COLLATE "C" NOT NULL,
	step      bigint NOT NULL,
	PRIMARY KEY (tenant_id, user_name)
);
