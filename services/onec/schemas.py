"""Input and output schemas of the onec service (pydantic), kept apart
from the table models."""
