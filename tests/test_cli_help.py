"""Every command-line argument of every learnact command has a help text, and every
command's --help formats."""

import argparse

from learnact.cli import build_parser


def _parsers(parser: argparse.ArgumentParser, path: str):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, f"{path} {name}")


def test_every_argument_has_help() -> None:
    missing = []
    count = 0
    for path, parser in _parsers(build_parser(), "learnact"):
        parser.format_help()  # a bad %-placeholder in any help text raises here
        for action in parser._actions:
            if isinstance(action, (argparse._SubParsersAction, argparse._HelpAction)):
                continue
            count += 1
            if not action.help:
                missing.append(f"{path} {'/'.join(action.option_strings) or action.dest}")
    assert count > 100 and missing == []


def test_help_is_plain_text() -> None:
    """No reStructuredText markup (``literal``, :role:`x`) in any command's --help."""
    import re

    bad = []
    for path, parser in _parsers(build_parser(), "learnact"):
        text = parser.format_help()
        for hit in re.findall(r"``|:(?:class|func|mod|meth|attr):`", text):
            bad.append(f"{path}: {hit}")
    assert bad == []


def test_presets_are_described() -> None:
    from learnact.experiments.autoencoder import PRESETS

    parser = dict(_parsers(build_parser(), "learnact"))["learnact bench autoencoder"]
    text = " ".join(parser.format_help().split())
    for name in PRESETS:
        assert f"{name}: " in text, name
    assert "seconds, for tests and smoke runs" in text
