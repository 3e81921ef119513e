"""What every part of the vault works with: the database, the data keys, the sealer, the log and the policies.

:class:`VaultStore` holds them and reads subject and recording rows; it decides nothing and
opens nothing (deciding and opening is :mod:`vault.access`, the gate). Each read runs in its
own short transaction (see :mod:`vault.service` for why a vault operation never joins a
caller's transaction).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import Connection, Engine

from audit.service import AuditLog
from core.clock import Clock
from core.db import read_connection
from policies.authorizer import Authorizer, Resource
from vault import repository
from vault.blobs import BlobNotFoundError, BlobStore
from vault.datakeys import DataKeys
from vault.errors import KeyProviderError, SubjectNotFoundError
from vault.fields import FieldCatalogue
from vault.records import SubjectShreddedError
from vault.sealing import FieldSealer
from vault.tokens import RECORDING_PREFIX, SUBJECT_PREFIX, is_token


@dataclass
class VaultStore:
    """The vault's collaborators and its row lookups (no decision, no decryption)."""

    engine: Engine
    keys: DataKeys
    sealer: FieldSealer
    catalogue: FieldCatalogue
    audit: AuditLog
    authorizer: Authorizer
    clock: Clock
    blob_store: BlobStore | None
    resources_for: Callable[[Sequence[str]], list[Resource]]

    def subject(self, token: str, conn: Connection | None = None) -> repository.SubjectRow:
        """The subject's row (shredded or not); SubjectNotFoundError for a token no subject has."""
        if not is_token(token, SUBJECT_PREFIX):
            raise SubjectNotFoundError("no subject has this token")
        if conn is None:
            with read_connection(self.engine) as own:
                row = repository.get_subject(own, token)
        else:
            row = repository.get_subject(conn, token)
        if row is None:
            raise SubjectNotFoundError("no subject has this token")
        return row

    def active(self, token: str, conn: Connection | None = None) -> repository.SubjectRow:
        """The subject's row; SubjectShreddedError (410) once it was shredded."""
        row = self.subject(token, conn)
        if row.shredded:
            raise SubjectShreddedError("the subject was shredded; its data can no longer be read")
        return row

    def recording(self, token: str, recording_id: str) -> repository.RecordingRow:
        """The recording's row if it is the subject's and not deleted; BlobNotFoundError (404) otherwise."""
        recording = None
        if is_token(recording_id, RECORDING_PREFIX):
            with read_connection(self.engine) as conn:
                recording = repository.get_recording(conn, recording_id)
        if recording is None or recording.subject_token != token or recording.shredded:
            raise BlobNotFoundError("this subject has no such recording")
        return recording

    def blobs(self) -> BlobStore:
        if self.blob_store is None:
            raise KeyProviderError("this vault has no blob store for recordings")
        return self.blob_store

    def resource(self, token: str) -> Resource:
        """The subject as the policies see it (its cases, restriction, objection), or any subject for ``""``."""
        return self.resources_for([token])[0] if token else Resource("subject")
