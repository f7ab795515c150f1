"""The auth service: Tenants (product code, tariff), credentials check, sessions, access/refresh
tokens, login throttling and lockout, the per-tenant storage ledger."""
