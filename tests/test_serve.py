"""`topoxai serve`: the real server on a loopback port, against `topoxai predict`'s output."""

import csv
import io
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import pytest

from topoxai.artifacts import load_model
from topoxai.predict import LINE_BREAKS, csv_text, reference_probability

# topoxai serve needs the serve extra (FastAPI, uvicorn): without it, these tests skip.
INLINE_BYTES = pytest.importorskip("topoxai.serve").INLINE_BYTES

LIMIT = 200_000  # the test servers' --max-body
TOKEN = "s3cret-token"
COLUMNS = ["Age", "Sex", "ChestPainType", "RestingBP", "Cholesterol", "FastingBS",
           "RestingECG", "MaxHR", "ExerciseAngina", "Oldpeak", "ST_Slope"]  # fmt: skip


@dataclass
class Server:
    url: str
    process: subprocess.Popen[str]
    log: list[str] = field(default_factory=list)

    def call(
        self,
        path: str,
        body: bytes | None = None,
        *,
        kind: str | None = "application/json",
        headers: dict[str, str] | None = None,
        method: str | None = None,
    ) -> tuple[int, dict[str, str], bytes]:
        request = urllib.request.Request(self.url + path, data=body, method=method)
        if kind and body is not None:
            request.add_header("Content-Type", kind)
        for key, value in (headers or {}).items():
            request.add_header(key, value)
        # No proxy: the server is on this machine's loopback.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=60) as response:
                return response.status, dict(response.headers), response.read()
        except urllib.error.HTTPError as err:
            return err.code, dict(err.headers), err.read()

    def score(self, records: list[dict], query: str = "", **kw) -> tuple[int, dict]:
        status, _, body = self.call(f"/predict{query}", json.dumps(records).encode(), **kw)
        return status, json.loads(body)


def start(model: Path, *args: str, env: dict[str, str] | None = None) -> Iterator[Server]:
    cmd = [sys.executable, "-m", "topoxai.cli", "serve", "--model", str(model), "--port", "0"]
    environ = {k: v for k, v in os.environ.items() if k != "TOPOXAI_TOKEN"} | (env or {})
    process = subprocess.Popen(
        [*cmd, *args], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=environ
    )
    assert process.stdout is not None
    log: list[str] = []  # uvicorn logs to stderr, its access log to stdout: both
    for line in process.stdout:  # until uvicorn says where it listens (port 0: a free one)
        log.append(line)
        if found := re.search(r"on (http://127\.0\.0\.1:\d+)", line):
            break
    else:
        raise AssertionError("the server did not start:\n" + "".join(log))
    drain = threading.Thread(target=lambda: log.extend(process.stdout or ()), daemon=True)
    drain.start()
    yield Server(found.group(1), process, log)
    process.terminate()
    process.wait(timeout=30)
    drain.join(timeout=5)


@pytest.fixture(scope="module")
def server(small_run: Path) -> Iterator[Server]:
    yield from start(small_run / "models", "--max-body", str(LIMIT))


@pytest.fixture(scope="module")
def guarded(small_run: Path) -> Iterator[Server]:
    yield from start(small_run / "models", env={"TOPOXAI_TOKEN": TOKEN})


@pytest.fixture(scope="module")
def rows(small_run: Path) -> pd.DataFrame:
    """120 raw rows of the test split, the model's columns only, the last with a value not
    measured: as JSON over serve.INLINE_BYTES (scored in a worker thread), as CSV under."""
    expected = pd.read_csv(small_run / "reports/train/test_predictions.csv")
    raw = pd.read_csv(small_run / "data/raw/heart.csv").iloc[expected["row"]][COLUMNS]
    unmeasured = raw[raw["Cholesterol"] == 0].head(1)
    return pd.concat([raw.head(119), unmeasured], ignore_index=True)


def cli(model: Path, csv: Path, *args: str) -> tuple[str, list[str]]:
    """`topoxai predict`'s output and notes."""
    cmd = [sys.executable, "-m", "topoxai.cli", "predict", "--model", str(model), "--input"]
    result = subprocess.run([*cmd, str(csv), *args], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return result.stdout, result.stderr.splitlines()


def records(frame: pd.DataFrame) -> list[dict]:
    return json.loads(frame.to_json(orient="records"))


@pytest.mark.parametrize(
    ("args", "query"),
    [([], ""), (["--explain", "--top", "4"], "?explain=true&top=4"), (["--digits", "all"], "?digits=all")],
    ids=["plain", "explain", "digits"],
)  # fmt: skip
def test_predictions_are_the_commands_byte_for_byte(server, small_run, rows, tmp_path, args, query):
    """JSON records and a CSV body give `topoxai predict`'s columns and numbers: the JSON
    answer written as the command writes CSV, and the CSV answer, are its output exactly."""
    rows.to_csv(tmp_path / "in.csv", index=False)
    assert len(json.dumps(records(rows))) > INLINE_BYTES > (tmp_path / "in.csv").stat().st_size
    expected, notes = cli(small_run / "models", tmp_path / "in.csv", *args)
    status, answer = server.score(records(rows), query)
    assert status == 200, answer
    if "explain" in query:  # said once, not in every row
        reference = reference_probability(load_model(small_run / "models"))
        assert answer["reference_probability"] == round(reference, 4)
    else:
        assert "reference_probability" not in answer
    table = pd.DataFrame(answer["predictions"])
    assert csv_text(table) == expected
    assert answer["notes"] == notes  # the command's notes too
    assert any("a value not measured" in note for note in notes)
    body = (tmp_path / "in.csv").read_bytes()
    status, headers, text = server.call(
        f"/predict{query}", body, kind="text/csv", headers={"Accept": "text/csv"}
    )
    assert (status, headers["content-type"].split(";")[0]) == (200, "text/csv")
    assert text.decode() == expected


def test_health_ready_and_the_models_card(server, small_run):
    assert server.call("/health")[0] == 200
    status, _, body = server.call("/ready")
    card = json.loads((small_run / "models/model.json").read_text())
    weights = card["files"]["model.safetensors"]["sha256"]
    assert (status, json.loads(body)) == (200, {"status": "ready", "weights_sha256": weights})
    status, _, body = server.call("/model")
    served = json.loads(body)
    assert status == 200
    assert {k: served[k] for k in card} == card  # the card as written, plus what follows
    assert served["positive_class"] == 1 and served["conformal"]["level"] == 0.95
    assert served["class_names"] == ["no heart disease", "heart disease"]
    model = load_model(small_run / "models")
    assert served["reference_probability"] == reference_probability(model)
    assert served["intended_use"].startswith("research and teaching only: not a medical device")
    assert [i["name"] for i in served["inputs"]] == [
        "Age", "RestingBP", "Cholesterol", "MaxHR", "Oldpeak",
        "Sex", "ChestPainType", "FastingBS", "RestingECG", "ExerciseAngina", "ST_Slope",
    ]  # fmt: skip
    assert json.loads(server.call("/openapi.json")[2])["paths"].keys() >= {"/predict", "/model"}


def test_the_token_guards_every_scoring_route(guarded, rows):
    one = records(rows.head(1))
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": TOKEN}):
        status, response, body = guarded.call("/predict", json.dumps(one).encode(), headers=headers)
        assert status == 401 and response["www-authenticate"] == "Bearer"
        assert "Authorization: Bearer" in json.loads(body)["error"]
        assert guarded.call("/model", headers=headers)[0] == 401
    good = {"Authorization": f"Bearer {TOKEN}"}
    assert guarded.score(one, headers=good)[0] == 200
    assert guarded.call("/model", headers=good)[0] == 200
    assert guarded.call("/health")[0] == guarded.call("/ready")[0] == 200  # for a supervisor


ROW = {"Age": 49, "Sex": "F", "ChestPainType": "NAP", "RestingBP": 160, "Cholesterol": 180,
       "FastingBS": 0, "RestingECG": "Normal", "MaxHR": 156, "ExerciseAngina": "N",
       "Oldpeak": 1.0, "ST_Slope": "Flat"}  # fmt: skip
BAD = {
    "malformed JSON": (b'[{"Age": 49,', None, 400, "the body is not JSON"),
    "empty body": (b"", None, 400, "the request has no body"),
    "no rows": (b"[]", None, 422, "the input has no rows"),
    "not an array": (json.dumps(ROW).encode(), None, 422, "send a JSON array of records"),
    "not a record": (b"[1, 2]", None, 422, "row 1: not an object"),
    "a boolean": ([ROW, ROW | {"FastingBS": True}], None, 422,
                  "row 2, column FastingBS: true is not a number, text or null"),
    "a nested value": ([ROW | {"Age": {"years": 49}}], None, 422,
                       'row 1, column Age: {"years": 49} is not a number'),
    "text for a number": ([ROW | {"Age": "forty"}], None, 422,
                          "column Age, row 1: 'forty' is not a number"),
    "NaN": (json.dumps([ROW]).replace("49", "NaN").encode(), None, 422,
            "NaN is not a value JSON allows: send null if not measured"),
    "Infinity": (json.dumps([ROW]).replace("49", "-Infinity").encode(), None, 422,
                 "-Infinity is not a value JSON allows"),
    "a number past float range": (json.dumps([ROW]).replace("49", "1e999").encode(), None,
                                  422, "row 1, column Age: Infinity is not a number"),
    "a missing column": ([{k: v for k, v in ROW.items() if k != "MaxHR"}], None, 422,
                         "row 1: missing column MaxHR (the model reads Age, RestingBP"),
    "an extra column": ([ROW, ROW | {"age": 49}], None, 422,
                        "row 2: unknown column age (the model reads"),
    "an extra CSV column": (b"x," + ",".join(ROW).encode() + b"\n1," + b",".join(
        str(v).encode() for v in ROW.values()) + b"\n", "text/csv", 422,
        "the CSV header: unknown column x"),
    "a bad CSV cell": (",".join(ROW).encode() + b"\n" + b",".join(
        str(v).encode() for v in ROW.values()).replace(b"49", b"4o9") + b"\n", "text/csv",
        422, "column Age, row 1: '4o9' is not a number"),
    "deeply nested JSON": (b"[" * 100_000 + b"]" * 100_000, None, 400, "nested too deeply"),
    "the wrong content type": (json.dumps([ROW]).encode(), "text/plain", 415,
                               "send application/json (an array of records) or text/csv"),
    "a bad query parameter": ([ROW], "?top=0", 422,
                              "query parameter top: Input should be greater than or equal to 1"),
    "bad digits": ([ROW], "?digits=5.5", 422,
                   "query parameter digits must be a whole number from 0 to 17, or all (got '5.5')"),
}  # fmt: skip


@pytest.mark.parametrize("name", BAD)
def test_a_bad_request_gets_one_clear_line_and_hurts_no_one(server, name):
    body, kind, status, message = BAD[name]
    query = ""
    if kind and kind.startswith("?"):
        query, kind = kind, None
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    got, _, answer = server.call(f"/predict{query}", data, kind=kind or "application/json")
    assert got == status, answer
    error = json.loads(answer)["error"]
    assert message in error and "\n" not in error and "Traceback" not in error
    assert server.score([ROW])[0] == 200  # still serving


def raw_request(server: Server, head: bytes, chunks: Iterator[bytes]) -> tuple[bytes, int]:
    """Send a request's head, then its body a piece at a time, until the server answers (a
    server that closes with bytes unread resets the connection: so wait for each piece to be
    read). Returns the answer and how many pieces went out."""
    host, port = server.url.removeprefix("http://").split(":")
    with socket.create_connection((host, int(port)), timeout=10) as s:
        s.sendall(head)
        sent, answer = 0, b""
        for chunk in chunks:
            s.settimeout(0.2)
            try:
                answer = s.recv(65536)
                break
            except TimeoutError:
                s.sendall(chunk)
                sent += 1
        s.settimeout(10)
        while b"\r\n\r\n" not in answer or not answer.endswith(b"}"):
            if not (more := s.recv(65536)):
                break
            answer += more
    return answer, sent


def test_a_body_over_the_limit_is_refused_before_it_is_read(server):
    """Declared too long: 413 at once. Sent in chunks with no length: 413 once the bytes
    that arrived are over the limit, not after the rest."""
    head = b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
    answer, sent = raw_request(server, head + b"Content-Length: 1000000000\r\n\r\n", iter([]))
    assert answer.startswith(b"HTTP/1.1 413 ") and f"over {LIMIT:,} bytes".encode() in answer
    piece = b"[" + b" " * 50_000
    chunks = (b"%x\r\n%s\r\n" % (len(piece), piece) for _ in range(40))
    answer, sent = raw_request(server, head + b"Transfer-Encoding: chunked\r\n\r\n", chunks)
    assert answer.startswith(b"HTTP/1.1 413 ") and f"over {LIMIT:,} bytes".encode() in answer
    assert sent * len(piece) <= LIMIT + 2 * len(piece)  # it did not wait for all 2 MB
    assert server.score([ROW])[0] == 200


def test_an_unknown_category_is_flagged_and_scored_as_predict_does(server):
    status, answer = server.score([ROW | {"ChestPainType": "=cmd()"}, ROW])
    assert status == 200
    first, second = answer["predictions"]
    assert "ChestPainType='=cmd()': a category training never saw" in first["domain_flags"]
    assert second["domain_flags"] == ""


def test_a_value_not_measured_is_null_or_empty(server):
    status, answer = server.score([ROW | {"Cholesterol": None}, ROW | {"Sex": ""}])
    assert status == 200, answer
    first, second = (row["domain_flags"] for row in answer["predictions"])
    assert first.startswith("Cholesterol empty: not measured, scored as")
    assert second.startswith("Sex empty: not measured, scored as 'M'")


def test_a_line_break_in_an_id_keeps_each_patient_one_csv_row(server):
    """The CSV answer quotes a cell holding any line break, as the command does."""
    ids = [f"=p{i}{b}x" for i, b in enumerate([*LINE_BREAKS, "\r\n"])]
    headers = {"Accept": "text/csv"}
    body = json.dumps([ROW | {"mrn": i} for i in ids]).encode()
    status, _, answer = server.call("/predict?id=mrn", body, headers=headers)
    assert status == 200
    read = list(csv.reader(io.StringIO(answer.decode(), newline="")))
    assert [row[0] for row in read[1:]] == ["'" + i for i in ids]


def test_ids_and_strict_as_the_command_takes_them(server):
    status, answer = server.score([ROW | {"mrn": "A-1"}], "?id=mrn")
    assert status == 200 and answer["predictions"][0]["mrn"] == "A-1"
    assert "row" not in answer["predictions"][0]
    status, answer = server.score([ROW, ROW | {"RestingBP": 400}], "?strict=true")
    assert status == 422
    assert answer["error"].startswith("row 2: RestingBP=400: outside the training range")


def test_bad_requests_amid_good_ones_change_no_answer(server, rows):
    """Many clients at once, half of them sending garbage: every good answer is the same."""
    good = records(rows.head(5))
    expected = server.score(good)[1]

    def one(i: int) -> bool:
        if i % 2:
            name = list(BAD)[i % len(BAD)]
            body = BAD[name][0]
            data = body if isinstance(body, bytes) else json.dumps(body).encode()
            return server.call("/predict", data)[0] < 500
        return server.score(good) == (200, expected)

    with ThreadPoolExecutor(8) as pool:
        assert all(pool.map(one, range(80)))


def test_the_log_holds_no_patient_value(server):
    marker = "Q7-patient-9931"
    assert server.score([ROW | {"mrn": marker, "Age": 61.25}], "?id=mrn")[0] == 200
    server.score([ROW | {"Age": marker}])  # a 422 that names the value, to the client only
    for _ in range(50):  # the log is read by a thread: wait for the access log's line
        if "POST /predict?id=mrn HTTP/1.1" in (log := "".join(server.log)):
            break
        time.sleep(0.1)
    assert "POST /predict?id=mrn HTTP/1.1" in log  # the access log is on
    assert marker not in log and "61.25" not in log


def test_a_bad_model_folder_stops_the_server_before_it_listens(tmp_path):
    (tmp_path / "models").mkdir()
    cmd = [sys.executable, "-m", "topoxai.cli", "serve", "--model", str(tmp_path / "models")]
    result = subprocess.run([*cmd, "--port", "0"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        f"error: {tmp_path / 'models/model.json'}: not found; is {tmp_path / 'models'} a model "
        "folder from the train stage?"
    ]


def test_a_port_in_use_stops_the_server_with_one_line(server, small_run):
    port = server.url.rsplit(":", 1)[1]
    cmd = [sys.executable, "-m", "topoxai.cli", "serve", "--model", str(small_run / "models")]
    result = subprocess.run([*cmd, "--port", port], capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout) == (1, "")
    assert result.stderr == (
        f"error: 127.0.0.1:{port}: cannot listen there (Address already in use); "
        "try another --port\n"
    )


def test_the_page_is_a_labelled_form_of_the_models_inputs(server, small_run):
    spec = json.loads((small_run / "models/preprocess.json").read_text())
    status, headers, body = server.call("/")
    page = body.decode()
    assert status == 200 and "script-src" not in headers["content-security-policy"]
    assert "default-src 'self'" in headers["content-security-policy"]
    for column in COLUMNS:  # each field has a label and a hint that a screen reader reads
        assert f'<label for="f-{column}">{column}</label>' in page
        assert f'aria-describedby="h-{column}"' in page
    age = spec["numeric"].index("Age")
    hint = f"training range {spec['lows'][age]:g} to {spec['highs'][age]:g}"
    assert f'<small id="h-Age">{hint}</small>' in page
    assert '<option value="">not measured</option><option>ASY</option>' in page
    status, headers, script = server.call("/page.js")
    assert status == 200 and headers["content-type"].startswith("text/javascript")
    assert b"textContent" in script and b"innerHTML" not in script  # values shown as text


def chrome() -> tuple[str, str] | None:
    browser, driver = shutil.which("chromium"), shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


@pytest.mark.skipif(chrome() is None, reason="needs Debian's chromium and chromium-driver")
def test_the_page_scores_a_patient_in_headless_chromium(server, small_run, tmp_path):
    """Fill the form as a person would, press Score, read what the page shows."""
    webdriver = pytest.importorskip("selenium.webdriver")
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser, driver = chrome() or ("", "")
    options = webdriver.ChromeOptions()
    options.binary_location = browser
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                 f"--user-data-dir={tmp_path / 'chromium'}"):  # fmt: skip
        options.add_argument(flag)
    page = webdriver.Chrome(service=Service(driver), options=options)
    try:
        page.get(server.url + "/")
        for column, value in ROW.items():
            field = page.find_element(By.ID, f"f-{column}")
            if field.tag_name == "select":
                Select(field).select_by_visible_text(str(value))
            else:
                field.send_keys(str(value))
        page.find_element(By.ID, "f-Cholesterol").clear()  # not measured: left empty
        Select(page.find_element(By.ID, "f-RestingECG")).select_by_visible_text("not measured")
        page.find_element(By.CSS_SELECTOR, "button[type=submit]").click()
        WebDriverWait(page, 30).until(lambda p: p.find_element(By.ID, "result").is_displayed())
        shown = {
            i: page.find_element(By.ID, i).text
            for i in ("probability", "prediction", "set", "ood", "reference")
        }
        flags = page.find_element(By.ID, "flags").text
        contributions = page.find_element(By.ID, "contributions").text
    finally:
        page.quit()
    expected = server.score([ROW | {"Cholesterol": None, "RestingECG": None}], "?explain=true")
    row = expected[1]["predictions"][0]
    assert shown["probability"] == f"{100 * row['P(HeartDisease=1)']:.1f}%"
    assert shown["ood"].startswith(f"{row['ood_p_value']:.3f}")
    names = {0: "no heart disease", 1: "heart disease"}
    assert shown["prediction"] == names[row["prediction"]]
    words = {f"{{{names[0]}}}": f"{names[0]} only", f"{{{names[1]}}}": f"{names[1]} only",
             f"{{{names[0]}, {names[1]}}}": "either class"}  # fmt: skip
    assert shown["set"].startswith(words.get(row["set"], "neither class"))
    assert shown["reference"] == f"{100 * expected[1]['reference_probability']:.1f}%"
    assert flags.splitlines() == row["domain_flags"].split("; ")
    assert "Cholesterol empty: not measured" in flags and "RestingECG empty" in flags
    assert contributions.splitlines()[0].startswith(row["top1_feature"])


def test_a_csv_body_answers_json_unless_csv_is_accepted(server, rows):
    text = rows.head(3).to_csv(index=False).encode()
    status, headers, body = server.call("/predict", text, kind="text/csv; charset=utf-8")
    assert (status, headers["content-type"]) == (200, "application/json")
    assert json.loads(body) == server.score(records(rows.head(3)))[1]
