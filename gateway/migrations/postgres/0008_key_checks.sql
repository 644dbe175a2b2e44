-- Keep in step with ../sqlite.

-- One check value per key (purpose and version): the HMAC-SHA256 of a fixed
-- label under the key, recorded by the first process to use it. A process
-- whose key gives another value refuses to start: replicas must share their
-- keys, or tokens would not verify and sealed secrets would not open.
CREATE TABLE key_checks (
    purpose TEXT NOT NULL,
    version TEXT NOT NULL,
    check_value TEXT NOT NULL,
    PRIMARY KEY (purpose, version)
);
