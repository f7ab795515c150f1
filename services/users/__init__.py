"""The users service: users, departments (a tree), positions, roles and their
rights with scopes, the principal of a user, the audit journal."""
