"""Files: the embedded default destination. One file per digest, written atomically.

The name is fixed by (profile, digest date, format), so writing the same digest
again replaces the file with the same content: a retry never duplicates anything.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from digestbot.errors import DeliveryError


class FileDeliverer:
    def write(self, directory: Path, name: str, content: str) -> Path:
        """Write ``directory/name`` via a temporary file and an atomic rename."""
        target = directory / name
        try:
            directory.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8", newline="") as handle:
                    handle.write(content)
                    handle.flush()
                    os.fsync(handle.fileno())
                os.replace(tmp, target)
            except BaseException:
                Path(tmp).unlink(missing_ok=True)
                raise
        except OSError as exc:
            raise DeliveryError(
                f"cannot write {target}: {exc.strerror or exc}", destination=f"file:{directory}"
            ) from exc
        return target
