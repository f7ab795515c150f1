"""The telephony service: Per-user SIP accounts, the SIP engine, active calls, the call log and the
Mango Office PBX adapter."""
