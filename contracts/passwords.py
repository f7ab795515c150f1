"""The password policy (from the quick-start guide): at least 10 characters,
with digits, upper- and lower-case letters. The users service applies it
when a password is set; a client (the web console) can show the same
feedback while the user types."""
from __future__ import annotations

import secrets

MIN_LENGTH = 10
MAX_LENGTH = 256


def policy_problems(password: str) -> list[str]:
    """Every rule the password breaks, in words (empty when it is acceptable)."""
    problems = []
    if len(password) < MIN_LENGTH:
        problems.append(f"must be at least {MIN_LENGTH} characters long")
    if len(password) > MAX_LENGTH:
        problems.append(f"must be at most {MAX_LENGTH} characters long")
    if not any(c.isdigit() for c in password):
        problems.append("must contain a digit")
    if not any(c.isupper() for c in password):
        problems.append("must contain an upper-case letter")
    if not any(c.islower() for c in password):
        problems.append("must contain a lower-case letter")
    return problems


def check_new_password(password: str | None, confirm: str | None) -> dict[str, str]:
    """Field problems of a password being set: the policy, then the confirmation."""
    fields: dict[str, str] = {}
    if password is None:
        fields["password"] = "is required"
        return fields
    problems = policy_problems(password)
    if problems:
        fields["password"] = "; ".join(problems)
    if confirm is None:
        fields["password_confirm"] = "is required: repeat the password"
    elif not secrets.compare_digest(password.encode(), confirm.encode()):
        fields["password_confirm"] = "does not match password"
    return fields
