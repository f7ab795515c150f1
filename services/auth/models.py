"""Table models of the auth service. Every tenant-owned table leads its
primary key and indexes with ``tenant_id``."""
from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    pass
