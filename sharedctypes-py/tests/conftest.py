"""Fixtures for the sharedctypes_rs tests: heaps, and the Rust peer program."""

import itertools
import multiprocessing
import os
import pathlib
import subprocess

import pytest

import sharedctypes_rs as sc

REPO = pathlib.Path(__file__).resolve().parents[2]
_names = itertools.count()


def unique_name(prefix="scpy"):
    return f"/{prefix}-{os.getpid()}-{next(_names)}"


@pytest.fixture
def heap():
    """An anonymous heap, shared with forked children."""
    return sc.Heap(1 << 22)


@pytest.fixture
def heap_name():
    """A fresh heap name, unlinked after the test if it still exists."""
    name = unique_name()
    yield name
    try:
        sc.Heap.unlink(name)
    except FileNotFoundError:
        pass


@pytest.fixture
def ctx():
    return multiprocessing.get_context("fork")


def _example(name):
    """The path of a Rust example of the workspace, built if needed (or given by
    SHAREDCTYPES_PY_<NAME>)."""
    env = os.environ.get(f"SHAREDCTYPES_PY_{name.upper()}")
    if env:
        return env
    subprocess.run(
        ["cargo", "build", "--quiet", "--example", name],
        cwd=REPO,
        check=True,
    )
    return str(REPO / "target" / "debug" / "examples" / name)


@pytest.fixture(scope="session")
def peer():
    """The Rust side of the cross-language tests (examples/py_peer.rs)."""
    return _example("py_peer")


@pytest.fixture(scope="session")
def py_writer():
    """The README's Rust writer (examples/py_writer.rs)."""
    return _example("py_writer")


class Rust:
    """A running Rust peer: started, read line by line, told to finish."""

    def __init__(self, *args):
        self.proc = subprocess.Popen(
            list(args),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )

    def expect(self, line):
        got = self.proc.stdout.readline().strip()
        if got != line:
            self.proc.kill()
            _, err = self.proc.communicate()
            raise AssertionError(f"expected {line!r} from the Rust peer, got {got!r}; stderr: {err}")

    def finish(self, timeout=60):
        out, err = self.proc.communicate("\n", timeout=timeout)
        assert self.proc.returncode == 0, err
        return out

    def kill(self):
        self.proc.kill()
        self.proc.wait()


@pytest.fixture
def rust():
    started = []

    def start(*args):
        r = Rust(*args)
        started.append(r)
        return r

    yield start
    for r in started:
        if r.proc.poll() is None:
            r.kill()


def run(*args, timeout=120):
    """Runs a Rust peer command to the end; its stdout."""
    done = subprocess.run(list(args), capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr
    return done.stdout
