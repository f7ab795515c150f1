"""Input and output schemas of the telephony service (pydantic), kept apart
from the table models."""
