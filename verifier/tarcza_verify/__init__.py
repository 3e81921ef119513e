"""tarcza-verify: the standalone verifier of Tarcza's audit-log exports and GDPR subject archives.

Standard library and ``cryptography`` only, so that an auditor can install it on a machine of
their own and check what a firm hands over without any of the firm's code or data. The server
verifies uploads with this same package (ADR 0019).

Modules: :mod:`~tarcza_verify.merkle` (RFC 9162 hashing and proofs), :mod:`~tarcza_verify.note`
(C2SP signed notes, checkpoints, verifier keys), :mod:`~tarcza_verify.cosignature` (witnesses'
C2SP cosignatures), :mod:`~tarcza_verify.events` (canonical JSON of
an event), :mod:`~tarcza_verify.audit_export` and :mod:`~tarcza_verify.subject_archive` (the two
formats, with :mod:`~tarcza_verify.saved_checkpoint` and :mod:`~tarcza_verify.archive_log`),
:mod:`~tarcza_verify.trust` (which key: given, pinned, or first use),
:mod:`~tarcza_verify.unpack` (bounded unpacking), :mod:`~tarcza_verify.run` and
:mod:`~tarcza_verify.cli` (the command).
"""

__version__ = "1.0.0"
