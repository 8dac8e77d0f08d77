"""Executing code in a session: state kept between calls, output captured as printed, errors
reported like Jupyter without losing the session, the last expression displayed, matplotlib
figures returned as PNGs."""

from __future__ import annotations

import time
import venv as venv_module
from pathlib import Path

from assistants_server.app import create_app
from assistants_server.sandbox import LocalSandbox
from tests.conftest import make_settings

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


async def test_cold_start_takes_well_under_a_second(sandbox: LocalSandbox) -> None:
    await sandbox.execute("warmup", "1")  # the one-time inspection of the sandbox's Python
    started = time.perf_counter()
    result = await sandbox.execute("thread_cold", "1 + 1")
    assert result.logs == "2"
    assert time.perf_counter() - started < 1.0


async def test_variables_survive_between_executions(sandbox: LocalSandbox) -> None:
    await sandbox.execute("thread_a", "x = 41")
    result = await sandbox.execute("thread_a", "x + 1")
    assert result.logs == "42"
    assert result.error is None and not result.restarted


async def test_sessions_of_different_threads_are_separate(sandbox: LocalSandbox) -> None:
    await sandbox.execute("thread_a", "x = 1")
    result = await sandbox.execute("thread_b", "x")
    assert result.error is not None and "NameError" in result.error


async def test_stdout_and_stderr_are_interleaved_as_printed(sandbox: LocalSandbox) -> None:
    code = "import sys\nprint('one')\nprint('two', file=sys.stderr)\nprint('three')"
    result = await sandbox.execute("thread_a", code)
    assert result.logs == "one\ntwo\nthree\n"


async def test_output_of_child_processes_is_captured(sandbox: LocalSandbox) -> None:
    result = await sandbox.execute("thread_a", "import os\nprint('py')\nos.system('echo shell')")
    assert result.logs.startswith("py\nshell\n")


async def test_exception_is_reported_and_the_session_survives(sandbox: LocalSandbox) -> None:
    await sandbox.execute("thread_a", "kept = 'yes'")
    result = await sandbox.execute("thread_a", "def f():\n    return 1 / 0\nf()")
    assert result.error is not None
    assert result.error.startswith("Traceback (most recent call last):")
    assert result.error.endswith("ZeroDivisionError: division by zero")
    assert "return 1 / 0" in result.error  # the cell's source line is shown
    assert "worker" not in result.error  # and none of the sandbox's own frames
    assert not result.restarted
    assert (await sandbox.execute("thread_a", "kept")).logs == "'yes'"


async def test_output_printed_before_an_exception_is_kept(sandbox: LocalSandbox) -> None:
    result = await sandbox.execute("thread_a", "print('before')\nraise ValueError('bad')")
    assert result.logs == "before\n"
    assert result.error is not None and result.error.endswith("ValueError: bad")


async def test_syntax_error_is_reported(sandbox: LocalSandbox) -> None:
    result = await sandbox.execute("thread_a", "x = (1,")
    assert result.error is not None and "SyntaxError" in result.error
    assert not result.restarted


async def test_system_exit_does_not_end_the_session(sandbox: LocalSandbox) -> None:
    result = await sandbox.execute("thread_a", "import sys\nsys.exit(2)")
    assert result.error is not None and result.error.endswith("SystemExit: 2")
    assert (await sandbox.execute("thread_a", "'alive'")).logs == "'alive'"


async def test_last_expression_is_displayed_like_jupyter(sandbox: LocalSandbox) -> None:
    code = ("first_20_fibonacci = [0, 1]\nwhile len(first_20_fibonacci) < 20:\n"
            "    first_20_fibonacci.append(sum(first_20_fibonacci[-2:]))\nprint('done')\n"
            "first_20_fibonacci")
    result = await sandbox.execute("thread_a", code)
    assert result.logs == "done\n" + repr([0, 1, 1, 2, 3, 5, 8, 13, 21, 34, 55, 89, 144, 233,
                                           377, 610, 987, 1597, 2584, 4181])


async def test_none_and_a_trailing_semicolon_display_nothing(sandbox: LocalSandbox) -> None:
    assert (await sandbox.execute("thread_a", "None")).logs == ""
    assert (await sandbox.execute("thread_a", "print('x')")).logs == "x\n"
    assert (await sandbox.execute("thread_a", "1 + 1;")).logs == ""


async def test_huge_output_is_truncated_with_a_note(sandbox: LocalSandbox) -> None:
    result = await sandbox.execute("thread_a", "for i in range(200_000):\n    print('line', i)")
    assert len(result.logs) < 20_000 + 200
    assert result.logs.startswith("line 0\nline 1\n")
    assert "output truncated" in result.logs
    assert result.logs.endswith("line 199999\n")


async def test_matplotlib_figure_becomes_one_png_and_is_closed(sandbox: LocalSandbox) -> None:
    code = ("import matplotlib.pyplot as plt\nplt.plot([1, 4, 9])\n"
            "plt.title('squares')\nplt.show()")
    result = await sandbox.execute("thread_a", code)
    assert result.error is None
    assert len(result.images) == 1 and result.images[0].startswith(PNG_SIGNATURE)
    assert result.files == []  # captured in memory, not left in /mnt/data
    assert (await sandbox.execute("thread_a", "plt.get_fignums()")).logs == "[]"


async def test_each_show_and_each_open_figure_is_an_image(sandbox: LocalSandbox) -> None:
    code = ("import matplotlib.pyplot as plt\nplt.plot([1]); plt.show()\n"
            "plt.plot([2]); plt.show()\nplt.figure(); plt.plot([3])")
    result = await sandbox.execute("thread_a", code)
    assert len(result.images) == 3
    assert all(image.startswith(PNG_SIGNATURE) for image in result.images)


async def test_a_cell_replacing_stdout_does_not_silence_the_next(sandbox: LocalSandbox) -> None:
    await sandbox.execute("thread_a", "import io, os, sys\nsys.stdout = io.StringIO()\nos.close(2)")
    result = await sandbox.execute("thread_a", "print('out')\nprint('err', file=sys.stderr)")
    assert result.logs == "out\nerr\n"


async def test_multiprocessing_works_inside_the_session(sandbox: LocalSandbox) -> None:
    code = ("import multiprocessing\ndef square(x):\n    return x * x\n"
            "with multiprocessing.Pool(2) as pool:\n    print(pool.map(square, range(5)))")
    result = await sandbox.execute("thread_a", code)
    assert result.error is None and result.logs == "[0, 1, 4, 9, 16]\n"


async def test_input_is_empty_and_oversized_code_is_refused(sandbox: LocalSandbox) -> None:
    result = await sandbox.execute("thread_a", "input()")
    assert result.error is not None and result.error.endswith("EOFError: EOF when reading a line")
    result = await sandbox.execute("thread_a", "x = 1\n" * 200_000)
    assert result.error == "The code is longer than 1,000,000 characters and was not run."


async def test_a_spreadsheet_analysis_runs_with_the_hosted_tools_libraries(
    sandbox: LocalSandbox,
) -> None:
    """pandas, openpyxl (xlsx), scipy and numpy import as on the hosted code_interpreter: the
    cookbook's first cell works."""
    code = (
        "import numpy as np, pandas as pd\nfrom scipy import stats\n"
        "df = pd.DataFrame({'month': range(1, 7), 'sales': [10, 12, 15, 15, 18, 21]})\n"
        "df.to_csv('/mnt/data/sales.csv', index=False)\n"
        "df.to_excel('/mnt/data/sales.xlsx', index=False)\n"
        "back = pd.read_excel('/mnt/data/sales.xlsx')\n"
        "fit = stats.linregress(back['month'], pd.read_csv('/mnt/data/sales.csv')['sales'])\n"
        "print(len(back), round(fit.slope, 2), int(np.sum(back['sales'])))")
    result = await sandbox.execute("thread_a", code)
    assert result.error is None, result.error
    assert result.logs.strip() == "6 2.09 91"
    assert sorted(f.rsplit("/", 1)[-1] for f in result.files) == ["sales.csv", "sales.xlsx"]


async def test_cells_import_the_packages_of_the_python_the_operator_chose(
    tmp_path: Path,
) -> None:
    """ASSISTANTS_CODE_INTERPRETER_PYTHON: a virtualenv with a package of the operator's."""
    venv = tmp_path / "cells"
    venv_module.EnvBuilder(with_pip=False).create(venv)
    [site] = list(venv.glob("lib/python3*/site-packages"))
    (site / "house_rules.py").write_text("DISCOUNT = 0.15\n")
    [settings] = make_settings("sqlite", tmp_path / "data",
                               code_interpreter_python=str(venv / "bin" / "python"))
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        box: LocalSandbox = app.state.executor.services.sandbox
        result = await box.execute("thread_a", "import house_rules\nhouse_rules.DISCOUNT")
    assert result.error is None, result.error
    assert result.logs == "0.15"
