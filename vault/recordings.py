"""Storing recordings: encrypted segment by segment as they stream in, then logged, then indexed.

Playing one back opens it, so that is the gate's (:meth:`vault.access.Gate.play`); this module
only seals, and lists what is stored (ids, sizes, dates: nothing decrypted).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import BinaryIO, Final

from audit.events import RecordingPayload
from core.db import read_connection, write_connection
from core.errors import InvalidInputError
from identity.principal import Principal
from vault import repository
from vault.access import Gate
from vault.blobs import WAV_MEDIA_TYPES, StreamMeter, encrypt_stream, wav_duration_ms
from vault.records import Action, RecordingInfo
from vault.store import VaultStore
from vault.tokens import RECORDING_PREFIX, new_token

__all__ = ["RecordingWriter"]

_MEDIA_TYPE: Final = re.compile(r"[a-z]+/[a-z0-9][a-z0-9.+-]{0,80}")


class RecordingWriter:
    """Seals recordings into the blob store and lists them."""

    def __init__(self, store: VaultStore, gate: Gate) -> None:
        self.store = store
        self.gate = gate

    def store_recording(self, principal: Principal, token: str, stream: BinaryIO | Iterable[bytes],
                        media_type: str, *, max_bytes: int | None = None, duration_ms: int | None = None,
                        announced: bool | None = None, contact_event_id: str | None = None) -> RecordingInfo:
        """Encrypt a recording of the subject into the blob store, segment by segment.

        ``max_bytes`` bounds the plaintext (RecordingTooLargeError, and no blob is left);
        ``duration_ms`` is the caller's, or read from the header of a WAV recording;
        ``announced`` says the debtor was told the conversation is recorded. All of them,
        with the SHA-256 and size of the plaintext, go into the ``recording.stored`` entry.
        """
        store = self.store
        blobs = store.blobs()
        if not _MEDIA_TYPE.fullmatch(media_type):
            raise InvalidInputError("media type must look like type/subtype, e.g. audio/ogg")
        subject = store.active(token)
        self.gate.require(principal, Action.STORE_RECORDING, token, purpose=None, fields=[])
        with read_connection(store.engine) as conn:
            data_key = store.keys.get(conn, token, subject.dek_version)
        meter = StreamMeter(stream, max_bytes)
        info = encrypt_stream(data_key, meter, blobs, subject=token, blob_id=new_token(RECORDING_PREFIX),
                              key_version=subject.dek_version)
        if duration_ms is None and media_type in WAV_MEDIA_TYPES:
            duration_ms = wav_duration_ms(meter.head)
        try:
            store.audit.record("recording.stored", actor=principal.actor, subject=token, payload=RecordingPayload(
                recording_id=info.blob_id, sha256=info.sha256, size=info.size, media_type=media_type,
                duration_ms=duration_ms, announced=announced, contact_event_id=contact_event_id))
            with write_connection(store.engine) as conn:
                store.active(token, conn)
                repository.insert_recording(conn, {
                    "id": info.blob_id, "subject_token": token, "media_type": media_type, "size": info.size,
                    "sha256": info.sha256, "dek_version": subject.dek_version, "created_at": store.clock.now(),
                    "shredded_at": None})
        except BaseException:
            blobs.delete(info.blob_id)
            raise
        return RecordingInfo(info.blob_id, token, info.sha256, info.size, media_type, duration_ms)

    def recordings_of(self, first: str, last: str | None = None) -> dict[str, list[repository.RecordingRow]]:
        """The recordings not yet deleted of the subjects ``first``..``last`` in token order (ids, sizes,
        dates; nothing decrypted), by token; of ``first`` alone without ``last``."""
        with read_connection(self.store.engine) as conn:
            return repository.recordings_in_range(conn, first, last if last is not None else first)
