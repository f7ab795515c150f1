"""Input and output schemas of the users service (pydantic), kept apart
from the table models."""
