"""The README's quick start, as a new user follows it: `make run` in one terminal, the marked
shell blocks, verbatim, in a second one with nothing exported.

Both run in a copy of the checkout (tests/project_copy.py), so a developer's own .env and
db.sqlite3 are never touched. The dev server listens on a spare port; curl's own config file
(~/.curlrc) sends the README's 127.0.0.1:8000 there, so the commands stay as written.
"""

import json
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
from pathlib import Path
from unittest.mock import ANY

import pexpect
import pytest

from tests.ports import free_port
from tests.project_copy import PROJECT_ROOT, bare_environment, copy_project

MARKER = "<!-- tested: tests/test_readme_quickstart.py runs this block as written -->"
MARKED_BLOCK = re.compile(re.escape(MARKER) + r"\s*```sh\n(.*?)```", re.DOTALL)
README_ADDRESS = "127.0.0.1:8000"
PASSWORD = "quick-start-Pa55word"


def marked_blocks(readme: str) -> list[str]:
    return MARKED_BLOCK.findall(readme)


def json_documents(text: str) -> list:
    """The JSON documents curl printed one after another, in order."""
    decoder, documents, position = json.JSONDecoder(), [], 0
    text = text.replace("\r\n", "\n")
    while (position := _skip_space(text, position)) < len(text):
        document, position = decoder.raw_decode(text, position)
        documents.append(document)
    return documents


def _skip_space(text: str, position: int) -> int:
    while position < len(text) and text[position].isspace():
        position += 1
    return position


@pytest.fixture(scope="module")
def project(tmp_path_factory) -> Path:
    return copy_project(tmp_path_factory.mktemp("quickstart") / "items-api")


@pytest.fixture(scope="module")
def terminal(tmp_path_factory) -> dict[str, str]:
    """A terminal's environment whose curl reaches the dev server at the README's address."""
    home = tmp_path_factory.mktemp("home")
    return bare_environment(home)


@pytest.fixture(scope="module")
def make_run(project, terminal):
    """`make run` in the first terminal, on a spare port; its .venv is this test run's."""
    port = free_port()
    log = (project / "make-run.log").open("w")
    process = subprocess.Popen(
        ["make", "-o", "install", "run", f"RUN_ADDRESS=127.0.0.1:{port}"],
        cwd=project,
        env=terminal,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,  # runserver's reloader runs the server in a child process
    )
    try:
        wait_until_serving(f"http://127.0.0.1:{port}/api/items/", process, project)
        (Path(terminal["HOME"]) / ".curlrc").write_text(
            f"connect-to = {README_ADDRESS}:127.0.0.1:{port}\n"
        )
        yield port
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=20)
        log.close()


def wait_until_serving(url: str, process: subprocess.Popen, project: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"make run exited:\n{(project / 'make-run.log').read_text()}")
        try:
            urllib.request.urlopen(url, timeout=2)
            return
        except (urllib.error.URLError, ConnectionError):
            time.sleep(0.3)
    pytest.fail(f"make run did not serve within 60 s:\n{(project / 'make-run.log').read_text()}")


def run_in_second_terminal(script: str, project: Path, terminal: dict) -> str:
    """Run the script in bash on a terminal, answering createsuperuser's two password prompts."""
    (project / "second-terminal.sh").write_text(script)
    shell = pexpect.spawn(
        "bash",
        ["-e", "second-terminal.sh"],
        cwd=str(project),
        env=terminal,
        encoding="utf-8",
        timeout=60,
    )
    shell.expect("Password: ")
    shell.sendline(PASSWORD)
    shell.expect(r"Password \(again\): ")
    shell.sendline(PASSWORD)
    shell.expect("Superuser created successfully.")
    shell.expect(pexpect.EOF)
    after_superuser = shell.before
    shell.close()
    assert shell.exitstatus == 0, after_superuser
    return after_superuser


def test_the_readme_marks_the_token_steps_and_the_curl_session():
    blocks = marked_blocks((PROJECT_ROOT / "README.md").read_text())

    assert len(blocks) == 2
    assert blocks[0].startswith(".venv/bin/python manage.py createsuperuser ")
    assert "manage.py drf_create_token admin" in blocks[0]
    assert blocks[1].startswith("# create\ncurl ")


def test_the_quick_start_works_as_written_in_a_second_terminal(project, terminal, make_run):
    script = "\n".join(marked_blocks((project / "README.md").read_text()))

    output = run_in_second_terminal(script, project, terminal)

    item = {
        "id": 1,
        "name": "Lamp",
        "description": "Desk lamp",
        "price": "19.99",
        "quantity": 3,
        "version": 1,
        "created_at": ANY,
        "updated_at": ANY,
    }
    replaced = {**item, "description": "", "price": "24.00", "quantity": 5, "version": 2}
    assert json_documents(output) == [
        item,  # create
        {"count": 1, "next": None, "previous": None, "results": [item]},  # list
        item,  # read
        replaced,  # replace
        {**replaced, "quantity": 4, "version": 3},  # update one field
    ]  # delete answers 204 with no body
    with pytest.raises(urllib.error.HTTPError) as gone:
        urllib.request.urlopen(f"http://127.0.0.1:{make_run}/api/items/1/", timeout=5)
    assert gone.value.code == 404


def test_make_run_wrote_a_development_env_file_that_git_and_the_image_leave_out(project, make_run):
    lines = (project / ".env").read_text().splitlines()
    settings = dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))

    assert settings.keys() == {"DJANGO_DEBUG", "DJANGO_SECRET_KEY"}
    assert settings["DJANGO_DEBUG"] == "1"
    assert len(settings["DJANGO_SECRET_KEY"]) >= 50
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=PROJECT_ROOT, check=False)
    assert ignored.returncode == 0  # 0: ignored
