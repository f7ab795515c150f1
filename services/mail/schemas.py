"""Input and output schemas of the mail service (pydantic), kept apart
from the table models."""
