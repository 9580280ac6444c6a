"""The loggers' stores, checked before the run directory is touched: a damaged MLflow store (a file that is not
SQLite), a tracking server that does not answer, a store or artifact folder that cannot be written. Each is one line
naming the store and the fix (MLflow would fail later, inside Lightning, with a traceback)."""

import socket
from pathlib import Path
from urllib.parse import urlparse

from omegaconf import DictConfig, OmegaConf

from vae.core.errors import Refused
from vae.files.writing import check_writable

SQLITE, SQLITE_HEADER = "sqlite:///", b"SQLite format 3\x00"
CONNECT_SECONDS = 3.0


def check_stores(cfg: DictConfig) -> None:
    for name, node in (cfg.get("logger") or {}).items():
        if not OmegaConf.is_dict(node):
            continue
        key = f"logger.{name}"
        if node.get("tracking_uri"):
            check_tracking_uri(str(node.tracking_uri), f"{key}.tracking_uri")
        location = node.get("artifact_location")
        if location and "://" not in str(location):
            check_writable(
                Path(str(location)), f"{key}.artifact_location", f"choose another with {key}.artifact_location"
            )


def check_tracking_uri(uri: str, key: str) -> None:
    if uri.startswith(SQLITE):
        check_sqlite(Path(uri[len(SQLITE) :]), key)
    elif uri.startswith(("http://", "https://")):
        check_server(uri, key)
    elif "://" not in uri or uri.startswith("file:"):  # a folder of files
        check_writable(Path(urlparse(uri).path if uri.startswith("file:") else uri), key, f"choose another with {key}")


def check_sqlite(database: Path, key: str) -> None:
    advice = f"choose another store with {key}=sqlite:///<file>"
    if database.is_file():
        with open(database, "rb") as f:
            header = f.read(len(SQLITE_HEADER))
        if header and header != SQLITE_HEADER:
            raise Refused(
                f"{key}: the MLflow store {database} is not an SQLite database (damaged, or another file): move it "
                f"away and MLflow makes a new store there, or {advice}"
            )
    elif database.exists():
        raise Refused(f"{key}: the MLflow store {database} is not a file; {advice}")
    check_writable(database.parent, f"the MLflow store {database} into", advice)  # SQLite writes its journal there


def check_server(uri: str, key: str) -> None:
    address = urlparse(uri)
    port = address.port or (443 if address.scheme == "https" else 80)
    try:
        socket.create_connection((address.hostname, port), timeout=CONNECT_SECONDS).close()
    except OSError as error:
        raise Refused(
            f"{key}={uri}: no MLflow server answers there ({error.strerror or error}); start it (uv run mlflow "
            f"server --host {address.hostname} --port {port}) or use a local store ({key}=sqlite:///<file>)"
        ) from None
