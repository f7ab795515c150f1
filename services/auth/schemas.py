"""Input and output schemas of the auth service (pydantic), kept apart
from the table models."""
