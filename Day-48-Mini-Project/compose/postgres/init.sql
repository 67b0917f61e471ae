-- A database per service, each owned by its own login: a service cannot read another's tables.
CREATE ROLE users_service LOGIN PASSWORD 'users_service';
CREATE ROLE orders_service LOGIN PASSWORD 'orders_service';
CREATE ROLE notifications_service LOGIN PASSWORD 'notifications_service';
CREATE DATABASE users OWNER users_service;
CREATE DATABASE orders OWNER orders_service;
CREATE DATABASE notifications OWNER notifications_service;
REVOKE ALL ON DATABASE users, orders, notifications FROM PUBLIC;
