-- One database and one login role per service, for the docker-compose stack only.
-- Each service owns its database (the public schema of a database belongs to its owner since
-- PostgreSQL 15) and nobody else may connect to it: services share data only through Kafka.
-- The passwords are local-development values, repeated in docker-compose.yml's DATABASE_URLs;
-- production databases and credentials come from the platform, never from this file.
-- Runs once, on an empty data volume (/docker-entrypoint-initdb.d), as the superuser.

CREATE ROLE registry LOGIN PASSWORD 'registry-local-password';
CREATE DATABASE registry OWNER registry;
REVOKE ALL ON DATABASE registry FROM PUBLIC;

CREATE ROLE training LOGIN PASSWORD 'training-local-password';
CREATE DATABASE training OWNER training;
REVOKE ALL ON DATABASE training FROM PUBLIC;

CREATE ROLE certification LOGIN PASSWORD 'certification-local-password';
CREATE DATABASE certification OWNER certification;
REVOKE ALL ON DATABASE certification FROM PUBLIC;

CREATE ROLE reporting LOGIN PASSWORD 'reporting-local-password';
CREATE DATABASE reporting OWNER reporting;
REVOKE ALL ON DATABASE reporting FROM PUBLIC;
