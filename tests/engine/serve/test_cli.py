"""`tryon serve` arguments: defaults, and a non-loopback bind without a token is refused;
the cluster options, and ``--cluster`` without ray."""

import argparse
import sys

import pytest

from engine.errors import InputError
from engine.serve.cli import add_serve_parser, check_bind, run_serve


def _parse(argv):
    parser = argparse.ArgumentParser()
    add_serve_parser(parser.add_subparsers(dest="verb"))
    return parser.parse_args(["serve", *argv])


def test_defaults():
    args = _parse([])
    assert (args.host, args.port, args.model, args.backend) == ("127.0.0.1", 8765, "demo", "auto")
    assert args.token is None and args.max_sessions == 2 and args.func is run_serve


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "::1", "127.0.0.2"])
def test_loopback_needs_no_token(host):
    check_bind(host, 8765, None, 2)


@pytest.mark.parametrize("host", ["0.0.0.0", "192.168.1.10", "::", "example.com"])
def test_other_hosts_need_a_token(host, capsys):
    with pytest.raises(InputError, match="--token"):
        check_bind(host, 8765, None, 2)
    check_bind(host, 8765, "long-enough-token", 2)
    assert run_serve(_parse(["--host", host])) == 2
    assert "--token" in capsys.readouterr().err


def test_bad_values_are_refused(capsys):
    assert run_serve(_parse(["--max-sessions", "0"])) == 2
    assert run_serve(_parse(["--port", "70000"])) == 2
    assert run_serve(_parse(["--host", "0.0.0.0", "--token", "short"])) == 2
    assert capsys.readouterr().err.count("tryon serve:") == 3


def test_cluster_options():
    args = _parse([])
    assert args.cluster is None and args.workers is None and args.streams_per_worker is None
    assert args.reopen is False
    assert _parse(["--cluster"]).cluster == "local"
    args = _parse(["--cluster", "ray://head:10001", "--workers", "3", "--streams-per-worker", "2"])
    assert (args.cluster, args.workers, args.streams_per_worker) == ("ray://head:10001", 3, 2)
    assert _parse(["--cluster", "--workers", "2"]).cluster == "local"


@pytest.mark.parametrize(
    "argv, flag",
    [
        (["--workers", "2"], "--workers"),
        (["--reopen"], "--reopen"),
        (["--cluster", "--workers", "0"], "--workers"),
        (["--cluster", "--streams-per-worker", "0"], "--streams-per-worker"),
        (["--cluster", "--backend", "onnxruntime"], "--backend"),
    ],
)
def test_bad_cluster_options_are_refused_before_anything_starts(argv, flag, capsys):
    assert run_serve(_parse(argv)) == 2
    assert flag in capsys.readouterr().err


def test_cluster_without_ray_names_the_install(monkeypatch, capsys):
    from engine.cli.main import main

    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    assert main(["serve", "--cluster", "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert "ray" in err and 'pip install -e ".[cluster]"' in err
