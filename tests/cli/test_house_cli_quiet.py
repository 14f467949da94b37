"""The global -q and the demo/eval --quiet option (a share of the stream's time) are two settings."""

import logging

import pytest

from avgn_edge.cli import main as cli_main


def test_global_q_and_demo_quiet_do_not_share_a_destination():
    parser = cli_main.build_parser()
    a = parser.parse_args(["-q", "demo"])
    assert a.log_quiet is True and a.quiet is None
    b = parser.parse_args(["demo", "--quiet", "0.5"])
    assert b.log_quiet is False and b.quiet == 0.5
    c = parser.parse_args(["-q", "eval", "--stream", "--quiet", "0.7"])
    assert c.log_quiet is True and c.quiet == 0.7


@pytest.mark.parametrize("argv, level", [(["-q", "demo"], logging.WARNING),
                                          (["demo", "--quiet", "0.5"], logging.INFO),
                                          (["-q", "demo", "--quiet", "0.5"], logging.WARNING)])
def test_quiet_logging_follows_only_the_global_flag(monkeypatch, argv, level):
    seen = {}
    monkeypatch.setattr(cli_main.logging, "basicConfig", lambda **kw: seen.update(kw))
    mod = cli_main._module("demo")
    monkeypatch.setattr(mod, "run", lambda args: seen.update(quiet=args.quiet))
    assert cli_main.main(argv) == 0
    assert seen["level"] == level
