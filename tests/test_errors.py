"""run_main: which errors end as one line and which keep their traceback."""

import errno

import pytest

from topoxai.errors import DataError, UserError, run_main


def _raise(err: BaseException):
    def main() -> None:
        raise err

    return main


@pytest.mark.parametrize(
    ("err", "line"),
    [
        pytest.param(
            UserError("data.target: no such column"), "data.target: no such column", id="user"
        ),
        pytest.param(
            DataError("column Age, line 3: 'x' is not a number"),
            "column Age, line 3: 'x' is not a number",
            id="data",
        ),
        pytest.param(
            FileNotFoundError(2, "No such file", "x.csv"),
            "[Errno 2] No such file: 'x.csv'",
            id="file-not-found",
        ),
        pytest.param(
            OSError(errno.ENOSPC, "No space left on device"),
            "[Errno 28] No space left on device",
            id="disk-full",
        ),
    ],
)
def test_user_errors_are_one_line_and_exit_1(capsys, err, line):
    with pytest.raises(SystemExit) as exit:
        run_main(_raise(err))
    assert exit.value.code == 1
    captured = capsys.readouterr()
    assert captured.err == f"error: {line}\n"
    assert captured.out == ""


@pytest.mark.parametrize(
    "err",
    [
        pytest.param(OSError("libfoo.so: cannot open shared object file"), id="shared-library"),
        pytest.param(ConnectionResetError(errno.ECONNRESET, "reset"), id="no-filename"),
        pytest.param(KeyError("bug"), id="bug"),
    ],
)
def test_other_errors_keep_their_traceback(capsys, err):
    with pytest.raises(type(err)) as raised:
        run_main(_raise(err))
    assert raised.value is err
    assert capsys.readouterr().err == ""


def test_success_prints_nothing(capsys):
    run_main(lambda: None)
    assert capsys.readouterr() == ("", "")
