"""A transparency-log witness speaking the C2SP tlog-witness protocol (``tarcza witness serve``).

It keeps, per log it is configured for (origin and log verifier key), the latest checkpoint it
cosigned, in its own SQLite file; it cosigns (C2SP tlog-cosignature, timestamped Ed25519) only a
checkpoint signed by that log and consistent with, and at least as large as, that one.

Modules: ``errors`` (the protocol's answers as errors), ``protocol`` (parsing the request and
the pure consistency decision), ``storage`` (the SQLite file, compare-and-swap), ``service``
(the witness: checks, cosigns, stores), ``home`` (its directory and key), ``app`` (HTTP).
"""
