"""The API contracts: pydantic request and response models of every area,
and the input rules they apply (ИНН check digits, phone shape, login pattern,
password policy), each written once.

The gateway validates and documents HTTP requests with these classes; the
owning service validates its RPC input with the same classes. This package
imports no service, database or nameko code, so the gateway can ship
without any service package (``tests/gateway/test_contracts_layout.py``).

One module per area (``auth``, ``tenants``, ``users``, ``crm``, ``ops``),
plus the shared pieces in ``base`` and the rules (``phones``, ``inn``,
``passwords``). See docs/architecture.md, "Adding a contract"."""
