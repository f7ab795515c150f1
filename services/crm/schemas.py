"""Input and output schemas of the crm service (pydantic), kept apart
from the table models."""
