"""The crm service: Counterparties, contacts, products, invoices, payments and communications, with
rights enforced inside every query."""
