"""DependencyProviders for the crm service's own I/O (beyond the shared
database, outbox and metrics providers in ``crm_shared``)."""
