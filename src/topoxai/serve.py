"""`topoxai serve`: a model folder over HTTP, scoring as `topoxai predict` does.

FastAPI on uvicorn (docs/serve.md says why). The folder is loaded and checked once, before
the port opens: a bad one stops the server with one line, not its first request. Requests
are read in full under a size limit, parsed strictly (the columns the model reads and the
id columns asked for, and only those; numbers, text or null), and scored by
`table_columns`, the code the command runs: the same columns, the same numbers. Every error
is one line of JSON, `{"error": ...}`; a traceback goes to the server's log, never into a
response, and no log line holds a patient's values.
"""

import hmac
import io
import json
import math
import os
import socket
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException

from topoxai import page, version
from topoxai.artifacts import Model, load_model
from topoxai.cli import DIGITS, MAX_BODY, TOKEN_ENV
from topoxai.data import read_table
from topoxai.errors import UserError
from topoxai.predict import csv_text, digits_of, reference_probability, table_columns

HOST, PORT = "127.0.0.1", 8000
# Bodies of at most this many bytes (a few dozen rows) are scored on the event loop (see
# `predict`).
INLINE_BYTES = 16_384
JSON_TYPE, CSV_TYPE = "application/json", "text/csv"


class RequestError(HTTPException):
    """A request the server refuses: its status and the one line that says why."""


def create_app(model: Model, *, token: str | None = None, max_body: int = MAX_BODY) -> FastAPI:
    """The app serving `model` (loaded and checked by `load_model`)."""
    app = FastAPI(
        title="topoxai",
        version=version(),
        description=f"Scores patients with a model of {model.spec.target}, as `topoxai predict` does.",
    )
    inputs = model.spec.raw_columns
    # What GET / and GET /model answer depends on the model alone: built once, here.
    reference = reference_probability(model)
    described = {
        "topoxai": version(),
        **model.card,
        "inputs": page.inputs(model.spec),
        "reference_probability": reference,
    }
    form_html = page.html(model, token_wanted=token is not None)

    def authorized(request: Request) -> None:
        if token is None:
            return
        given = request.headers.get("authorization", "")
        if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
            raise RequestError(
                401,
                f"this server wants Authorization: Bearer <${TOKEN_ENV}>",
                headers={"WWW-Authenticate": "Bearer"},
            )

    scoring = [Depends(authorized)]

    @app.get("/health")
    def health() -> dict[str, str]:
        """The process is up."""
        return {"status": "ok"}

    @app.get("/ready")
    def ready() -> dict[str, Any]:
        """The model is loaded and its files matched its card (checked before the port opened)."""
        return {"status": "ready", "weights_sha256": _weights_sha256(model)}

    @app.get("/model", dependencies=scoring)
    def card() -> dict[str, Any]:
        """The model's card: what it predicts, its data and weights, metrics, conformal level."""
        return described

    @app.post("/predict", dependencies=scoring)
    async def predict(
        request: Request,
        explain: Annotated[bool, Query(description="add the top contributions")] = False,
        top: Annotated[int, Query(ge=1, description="features per row with explain")] = 3,
        threshold: Annotated[float, Query(ge=0, le=1)] = 0.5,
        strict: Annotated[
            bool, Query(description="refuse the request if a row has a domain flag")
        ] = False,
        id: Annotated[list[str] | None, Query(description="input columns to copy")] = None,
        digits: Annotated[
            str, Query(description="decimals of probabilities and p-values, 0-17, or all")
        ] = str(DIGITS),
    ) -> Response:
        """Score rows: a JSON array of records, or a CSV body (Content-Type: text/csv).

        The answer has `predict`'s columns: as JSON, `{"predictions": [...], "notes": [...]}`;
        with `Accept: text/csv`, the CSV that `topoxai predict` writes, byte for byte.
        """
        kind = _content_type(request)
        decimals = digits_of(digits, "query parameter digits")  # a UserError: 422
        body = await _body(request, max_body)
        notes: list[str] = []

        def score() -> dict[str, Any]:
            ids = id or []
            frame = _rows(body, kind, inputs, ids, model)
            return table_columns(
                model,
                frame,
                threshold=threshold,
                id_columns=ids or None,
                explain=top if explain else None,
                strict=strict,
                notes=notes,
                digits=decimals,
            )

        # A row or a few take a millisecond or two: scored on the event loop, as a hop to a
        # worker thread and back would cost about as much again. More go to a thread, so that
        # other clients are answered meanwhile.
        table = score() if len(body) <= INLINE_BYTES else await run_in_threadpool(score)
        if CSV_TYPE in request.headers.get("accept", ""):
            text = csv_text(pd.DataFrame(table))
            return Response(text, media_type=CSV_TYPE)
        answer: dict[str, Any] = {"predictions": _records(table), "notes": notes}
        if explain:  # what the contributions are measured from, once, not in every row
            answer["reference_probability"] = round(reference, 17 if decimals is None else decimals)
        return Response(json.dumps(answer, allow_nan=False), media_type=JSON_TYPE)

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def form() -> HTMLResponse:
        return HTMLResponse(form_html, headers=page.HEADERS)

    @app.get("/favicon.ico", include_in_schema=False)
    def icon() -> Response:
        return Response(status_code=204)  # none: a browser asks all the same

    @app.get("/page.js", include_in_schema=False)
    def script() -> Response:
        return Response(page.SCRIPT, media_type="text/javascript", headers=page.HEADERS)

    @app.exception_handler(HTTPException)
    async def refused(request: Request, err: HTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail), err.headers)

    @app.exception_handler(UserError)
    async def unusable(request: Request, err: UserError) -> JSONResponse:
        return _error(422, str(err))  # DataError, ModelError: what to fix in the rows

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "query")
        return _error(422, f"query parameter {where}: {first.get('msg', 'invalid')}")

    @app.exception_handler(Exception)
    async def crashed(request: Request, err: Exception) -> JSONResponse:
        # Starlette raises it again after this answer, so the traceback reaches uvicorn's
        # log; the client gets none.
        return _error(500, "internal error; the server's log has the details")

    return app


def _error(status: int, message: str, headers: Mapping[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=dict(headers or {}))


def _records(columns: dict[str, Any]) -> list[dict[str, Any]]:
    """Columns of values as JSON objects of Python values, one per row."""
    names = list(columns)
    values = [np.asarray(column).tolist() for column in columns.values()]
    return [dict(zip(names, row)) for row in zip(*values)]


def _content_type(request: Request) -> str:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind not in (JSON_TYPE, CSV_TYPE):
        raise RequestError(415, f"send {JSON_TYPE} (an array of records) or {CSV_TYPE}")
    return kind


async def _body(request: Request, limit: int) -> bytes:
    """The whole body, or 413 as soon as it is longer than `limit` (declared or sent)."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise RequestError(413, f"the body is over {limit:,} bytes: send fewer rows at a time")
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise RequestError(413, f"the body is over {limit:,} bytes: send fewer rows at a time")
        chunks.append(chunk)
    if not size:
        raise RequestError(400, "the request has no body: send the rows to score")
    return b"".join(chunks)


def _rows(body: bytes, kind: str, inputs: list[str], ids: list[str], model: Model) -> pd.DataFrame:
    """The request's rows as the frame `table_columns` reads, or 400/422 naming what to fix."""
    if kind == CSV_TYPE:
        frame = read_table(io.BytesIO(body), categorical=model.spec.categorical, name="the body")
        _check_columns([str(c) for c in frame.columns], inputs, ids, "the CSV header")
        return frame
    records = _json(body)
    if not isinstance(records, list):
        raise RequestError(422, "send a JSON array of records, one object per patient")
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise RequestError(422, f"row {i + 1}: not an object of column: value")
        _check_columns(list(record), inputs, ids, f"row {i + 1}")
        for column, value in record.items():
            if not _cell(value):
                raise RequestError(
                    422,
                    f"row {i + 1}, column {column}: {json.dumps(value)[:40]} is not a number, "
                    "text or null (null: not measured)",
                )
    columns = [*inputs, *(c for c in ids if c not in inputs)]
    return pd.DataFrame({c: [record[c] for record in records] for c in columns})


def _json(body: bytes) -> Any:
    def no_constant(word: str) -> None:
        raise RequestError(422, f"{word} is not a value JSON allows: send null if not measured")

    try:
        return json.loads(body, parse_constant=no_constant)
    except RecursionError:
        raise RequestError(
            400, "the JSON is nested too deeply: send an array of flat records"
        ) from None
    except UnicodeDecodeError:
        raise RequestError(400, "the body is not UTF-8 text") from None
    except ValueError as err:  # json.JSONDecodeError
        raise RequestError(400, f"the body is not JSON ({err})") from None


def _cell(value: object) -> bool:
    if isinstance(value, bool):  # true/false: a category is sent as its text
        return False
    if isinstance(value, float):
        return math.isfinite(value)  # 1e999 reads as infinity
    return value is None or isinstance(value, int | str)


def _check_columns(given: list[str], inputs: list[str], ids: list[str], where: str) -> None:
    """Exactly the model's columns and the requested id columns: a misspelled column is an
    error here, not a value silently filled in as not measured."""
    if missing := [c for c in inputs if c not in given]:
        raise RequestError(
            422, f"{where}: missing column {missing[0]} (the model reads {', '.join(inputs)})"
        )
    if absent := [c for c in ids if c not in given]:
        raise RequestError(422, f"{where}: id column {absent[0]} is not there")
    if extra := [c for c in given if c not in inputs and c not in ids]:
        raise RequestError(
            422, f"{where}: unknown column {extra[0]} (the model reads {', '.join(inputs)}; "
            f"to copy a column to the answer, add ?id={extra[0]})"
        )  # fmt: skip


def _weights_sha256(model: Model) -> str:
    return str(model.card["files"]["model.safetensors"]["sha256"])


def serve(folder: Path, *, host: str = HOST, port: int = PORT, max_body: int = MAX_BODY) -> None:
    """Load and check the model folder, then serve it until interrupted."""
    import uvicorn

    model = load_model(folder)  # a bad folder stops here, with one line
    token = os.environ.get(TOKEN_ENV) or None
    app = create_app(model, token=token, max_body=max_body)
    listening = _bound(host, port)  # a port in use stops here too, not inside uvicorn
    if host not in ("127.0.0.1", "::1", "localhost"):
        print(
            f"note: serving on {host}, not only this machine"
            + ("" if token else f": set {TOKEN_ENV} so that only its holders can score"),
            flush=True,
        )
    # Already listening (connections wait in the backlog until uvicorn accepts them), so a
    # client that reads this line may connect at once. Port 0: the port the system chose.
    where = f"[{host}]" if ":" in host else host
    print(
        f"topoxai serve: {folder} on http://{where}:{listening.getsockname()[1]} "
        "(a page at /; Ctrl-C stops it)",
        flush=True,
    )
    # uvicorn's access log has the method, path and status: never a body, so never a patient.
    config = uvicorn.Config(app, log_level="info", timeout_graceful_shutdown=5)
    uvicorn.Server(config).run(sockets=[listening])


def _bound(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    listening = socket.socket(family, socket.SOCK_STREAM)
    listening.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listening.bind((host, port))
        listening.listen(2048)  # uvicorn's default backlog
    except OSError as err:
        listening.close()
        reason = err.strerror or str(err)
        raise UserError(
            f"{host}:{port}: cannot listen there ({reason}); try another --port"
        ) from None
    return listening
