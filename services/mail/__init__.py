"""The mail service: Per-user mail accounts (presets, IMAP/SMTP settings), connection checks, folders,
the poller, stored messages and sending."""
