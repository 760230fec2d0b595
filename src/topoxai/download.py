"""Fetch the raw CSV from a package, a URL or a path, atomically and verified.

Only the standard library and tqdm: this stage must start in well under a second.
"""

import csv
import http.client
import importlib.util
import io
import os
import shutil
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import BinaryIO

from topoxai import hospitals
from topoxai.errors import UserError, describe_bad_answer
from topoxai.files import sha256_file, temp_sibling

CHUNK = 1 << 16
PROGRESS_MIN_BYTES = 1 << 20


class DownloadError(UserError):
    pass


class _Transient(Exception):
    """A failure worth retrying: timeout, connection reset, 5xx, truncated body."""


def fetch(
    source: str,
    dest: Path,
    *,
    sha256: str | None,
    target: str,
    site: str | None = None,
    timeout: float = 30.0,
    retries: int = 3,
    backoff: float = 1.0,
    deadline: float = 120.0,
) -> str:
    """Copy `source` to `dest` if it verifies; return its sha256. `dest` is untouched on error.

    `site` names the column of each row's site (data.site): the table must have it, except
    the bundled seed table, which lacks its hospital column: that is recovered from the UCI
    table shipped beside it and appended (topoxai.hospitals).

    Over HTTP, each attempt waits at most `timeout` seconds for any one answer from the
    server, and the whole download, retries and their pauses included, ends by `deadline`.
    """
    dest.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = temp_sibling(dest)
    try:
        with os.fdopen(fd, "wb") as out:
            if source.startswith(("http://", "https://")):
                _fetch_http(
                    source,
                    out,
                    timeout=timeout,
                    retries=retries,
                    backoff=backoff,
                    deadline=deadline,
                )
            else:
                with resolve_local(source).open("rb") as src:
                    shutil.copyfileobj(src, out, CHUNK)
        digest = sha256_file(tmp)
        if sha256 is not None and digest != sha256:
            raise DownloadError(
                f"{source}: sha256 is {digest}, expected {sha256} (data.sha256); "
                "set data.sha256 to the new value if this data is intended, or null to skip the check"
            )
        header = check_csv(tmp.read_bytes(), target, source)
        if site is not None and site not in header:
            if digest != hospitals.SEED_SHA256:
                raise DownloadError(
                    f"{source}: no column {site!r} (data.site); columns are "
                    f"{', '.join(header)}: name the column of each row's site, or set data.site "
                    "to null"
                )
            hospitals.with_hospital(tmp, resolve_local(hospitals.UCI_SOURCE), tmp, site)
            print(f"download: column {site} recovered from {hospitals.UCI_SOURCE} (docs/data.md)")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return digest


def resolve_local(source: str) -> Path:
    """Map pkg://dist/path, file:// URLs and plain paths to a readable file."""
    if source.startswith("pkg://"):
        package, _, inner = source.removeprefix("pkg://").partition("/")
        # find_spec locates a top-level package without running its __init__ (which may
        # import pandas and cost this stage its fast start).
        spec = importlib.util.find_spec(package) if package.isidentifier() else None
        if spec is None or not spec.submodule_search_locations:
            raise DownloadError(
                f"{source}: package {package!r} is not installed (pip install {package})"
            )
        path = Path(next(iter(spec.submodule_search_locations))) / inner
    elif source.startswith("file://"):
        parsed = urllib.parse.urlparse(source)
        path = Path(urllib.request.url2pathname(parsed.path))
    else:
        path = Path(source)
    if not path.is_file():
        raise DownloadError(f"{source}: no such file ({path})")
    return path


def _fetch_http(
    url: str, out: BinaryIO, *, timeout: float, retries: int, backoff: float, deadline: float
) -> None:
    # Without a deadline a hung server costs (retries + 1) x timeout plus the pauses: over
    # two minutes by default, in silence. Each attempt's timeout is clipped to the time left,
    # no pause runs past the deadline, and each retry is announced.
    end = time.monotonic() + deadline
    for attempt in range(1, retries + 2):
        out.seek(0)
        out.truncate()
        try:
            _get_once(url, out, min(timeout, end - time.monotonic()), end)
            return
        except _Transient as err:
            tried = f"{attempt} attempt" + ("s" if attempt > 1 else "")
            if attempt > retries:
                raise DownloadError(f"{url}: {err} (after {tried})") from None
            pause = backoff * 2 ** (attempt - 1)
            if time.monotonic() + pause >= end:
                raise DownloadError(
                    f"{url}: {err} (after {tried}; a retry would pass the "
                    f"{_seconds(deadline)} s deadline)"
                ) from None
            print(
                f"download: {url}: {err}; retry {attempt} of {retries} in {_seconds(pause)} s",
                file=sys.stderr,
            )
            time.sleep(pause)


def _get_once(url: str, out: BinaryIO, timeout: float, end: float) -> None:
    if timeout <= 0:  # a pause overslept the deadline
        raise _Transient("no time left")
    try:
        request = urllib.request.Request(url, headers={"User-Agent": "topoxai-download"})
        with urllib.request.urlopen(request, timeout=timeout) as resp:
            ctype = resp.headers.get("Content-Type", "")
            if "html" in ctype.lower():
                raise DownloadError(
                    f"{url}: the server sent an HTML page ({ctype}), not a CSV; check the URL"
                )
            length = resp.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() else None
            received = _copy_with_progress(resp, out, total, end)
    except urllib.error.HTTPError as err:
        if err.code >= 500 or err.code == 429:
            raise _Transient(f"HTTP {err.code} {err.reason}") from None
        raise DownloadError(f"{url}: HTTP {err.code} {err.reason}") from None
    except (TimeoutError, ConnectionError, http.client.IncompleteRead) as err:
        raise _Transient(_describe_network_error(err, timeout)) from None
    except urllib.error.URLError as err:
        if isinstance(err.reason, TimeoutError | ConnectionError):
            raise _Transient(_describe_network_error(err.reason, timeout)) from None
        raise DownloadError(f"{url}: cannot connect ({err.reason})") from None
    except (ValueError, http.client.InvalidURL) as err:  # a bad port, a space, a broken [IPv6]
        raise DownloadError(f"{url}: not a valid URL ({err})") from None
    except http.client.HTTPException as err:
        # A garbled status line or an over-long header line: the server (or whatever listens
        # on that port) does not speak HTTP, or not well enough, and asking again gets the
        # same answer, so it is not retried. The transient ones are caught above: a body cut
        # short (IncompleteRead), a connection closed before any answer (RemoteDisconnected,
        # a ConnectionResetError).
        raise DownloadError(f"{url}: {describe_bad_answer(err)}; check the URL") from None
    if total is not None and received != total:
        raise _Transient(f"truncated body: got {received} of {total} bytes")


def _copy_with_progress(
    resp: http.client.HTTPResponse, out: BinaryIO, total: int | None, end: float
) -> int:
    from tqdm import tqdm

    quiet = total is not None and total < PROGRESS_MIN_BYTES
    received = 0
    with tqdm(total=total, unit="B", unit_scale=True, disable=quiet, leave=False) as bar:
        # read1: one socket read per call, so a server trickling bytes is caught by the
        # deadline check (read(CHUNK) would wait for a whole chunk, `timeout` per byte).
        while True:
            if time.monotonic() > end:
                raise _Transient(f"too slow: got {received} bytes by the deadline")
            chunk = resp.read1(CHUNK)
            if not chunk:
                return received
            out.write(chunk)
            received += len(chunk)
            bar.update(len(chunk))


def _describe_network_error(err: BaseException, timeout: float) -> str:
    if isinstance(err, TimeoutError):
        return f"timed out after {_seconds(timeout)} s"
    if isinstance(err, http.client.IncompleteRead):
        return f"truncated body: got {len(err.partial)} bytes, more expected"
    return f"connection failed ({err})"


def _seconds(value: float) -> str:
    return f"{round(value, 2):g}"


def check_csv(content: bytes, target: str, source: str) -> list[str]:
    """Raise DownloadError unless `content` is a rectangular CSV with the target column;
    return its header."""
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise DownloadError(f"{source}: not a UTF-8 text file; expected a CSV") from None
    if not text.strip():  # after decoding: a lone byte-order mark is empty too
        raise DownloadError(f"{source}: the file is empty")
    head = text.lstrip()[:512].lower()
    if head.startswith("<") or "<html" in head:
        raise DownloadError(f"{source}: this is an HTML page, not a CSV; check the URL")
    rows = csv.reader(io.StringIO(text))
    header: list[str] | None = None
    count = 0
    try:
        header = next(rows)  # non-blank text always has a first row
        if target not in header:
            raise DownloadError(
                f"{source}: no target column {target!r} in the header (data.target); "
                f"columns are {', '.join(header)}"
            )
        for number, row in enumerate(rows, start=1):
            if not row:
                continue  # blank lines are not rows, for the csv module nor for pandas
            if len(row) != len(header):
                raise DownloadError(
                    f"{source}: row {number} has {len(row)} fields, the header has {len(header)} "
                    "(truncated or malformed CSV)"
                )
            count += 1
    except csv.Error as err:  # an unbalanced quote swallowing the file, a field over the limit
        where = "in the header" if header is None else f"after row {count}"
        raise DownloadError(f"{source}: malformed CSV {where} ({err})") from None
    if count == 0:
        raise DownloadError(f"{source}: the CSV has a header but no rows")
    return header
