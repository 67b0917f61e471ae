-- A database per service, each owned by its own login: a service cannot read another's tables.
-- One role (the service's package) and one database (its `database`) per service of system.toml;
-- tests/unit/test_system_manifest.py checks that none is missing.
CREATE ROLE users_service LOGIN PASSWORD 'users_service';
CREATE ROLE orders_service LOGIN PASSWORD 'orders_service';
CREATE ROLE notifications_service LOGIN PASSWORD 'notifications_service';
CREATE DATABASE users OWNER users_service;
CREATE DATABASE orders OWNER orders_service;
CREATE DATABASE notifications OWNER notifications_service;
REVOKE ALL ON DATABASE users, orders, notifications FROM PUBLIC;
