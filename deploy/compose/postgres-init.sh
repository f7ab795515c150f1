#!/bin/sh
# First start of the compose PostgreSQL volume (docker-entrypoint-initdb.d):
# creates the application role and one database per service, owned by it.
# Runs once, when the data volume is empty; see docs/operations.md to add a
# database to an existing volume.
set -eu
: "${CRM_DB_USER:=crm}"
: "${CRM_DB_PASSWORD:?CRM_DB_PASSWORD must be set}"
psql -v ON_ERROR_STOP=1 --username "${POSTGRES_USER:-postgres}" --dbname "${POSTGRES_DB:-postgres}" \
     -v crm_user="$CRM_DB_USER" -v crm_password="$CRM_DB_PASSWORD" <<'EOSQL'
SELECT format('CREATE ROLE %I LOGIN PASSWORD %L', :'crm_user', :'crm_password')
 WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = :'crm_user') \gexec
SELECT format('CREATE DATABASE %I OWNER %I', d, :'crm_user')
  FROM unnest(ARRAY['crm_auth', 'crm_users', 'crm_crm', 'crm_telephony', 'crm_mail', 'crm_onec']) AS d
 WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = d) \gexec
EOSQL
