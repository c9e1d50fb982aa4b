"""Accounts: who may log in (SASL), which nick each one owns, and how they are kept.

``credentials`` hashes passwords (scrypt for PLAIN, SCRAM-SHA-256 keys for SCRAM);
``scram`` is the server side of a SCRAM exchange; ``book`` is the server's view of the
accounts (which names are owned, lookups and creation through the history worker,
hashing on background threads); ``throttle`` slows failed logins and registrations
per address; ``admin`` is ``chat-server account add|del|passwd|list``.
"""
